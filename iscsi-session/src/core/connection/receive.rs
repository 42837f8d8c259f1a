//! Where received bytes go: short PDUs into one shared buffer, each long data
//! segment into a buffer of its own, of its exact size.
//!
//! Data segments reach the caller without a copy either way: a short one is
//! a slice of the shared buffer, a long one its own buffer, read into by the
//! driver once its header is decoded. So a 4 KiB result kept by a caller pins
//! at most one shared buffer ([`RECEIVE_ALLOCATION`]), a 1 MiB one only
//! itself, and the shared buffer never holds more than one short PDU's worth
//! of a partial PDU when it is replaced. A long segment's buffer is read
//! into again once its caller has dropped it (`segment_pool`).

use bytes::buf::Limit;
use bytes::{Buf, BufMut, BytesMut};

use super::segment_pool::SegmentPool;
use iscsi_proto::codec::{DecodeError, Decoded, PduDecoder, PduHead};
use iscsi_proto::digest::DIGEST_LEN;
use iscsi_proto::pdu::{BHS_LEN, Pdu, bhs};

/// Data segments of at least this many bytes are read into a buffer of their
/// own. It costs a read for the header and one for the segment (a 64 KiB
/// copy costs more than the extra syscall) and an allocation of the
/// segment's size; results below it, many per read at 4 KiB, stay slices of
/// the shared buffer, which therefore only ever has to hold a PDU shorter
/// than this.
pub(super) const OWN_BUFFER_MIN: usize = 64 * 1024;

/// Size of a fresh shared receive buffer. Short data segments are handed out
/// as slices of it, so a buffer is replaced (not reused) once it has less
/// room than one short PDU, and the partial PDU at its end is copied into the
/// next. 256 KiB takes a whole burst of 32 4 KiB responses in one read, and
/// is what a short result kept by a caller pins at most.
pub(super) const RECEIVE_ALLOCATION: usize = 256 * 1024;

/// After a long segment, reads into the shared buffer stop at the end of the
/// next header for this many PDUs: the next is likely another long one (or a
/// status without data, then one), whose segment should go into its own
/// buffer rather than partly into the shared one and then be copied out.
const HEADER_READS_AFTER_LONG: u8 = 2;

/// The receive side of one connection's byte stream.
#[derive(Debug, Default)]
pub(super) struct Receiver {
    shared: BytesMut,
    /// A long data segment being read into its own buffer, and its header.
    long: Option<Long>,
    /// PDUs for which reads into `shared` stop at the end of the header.
    header_reads: u8,
    /// Where long segments' buffers come from.
    pool: SegmentPool,
}

#[derive(Debug)]
struct Long {
    head: PduHead,
    /// Allocated with the segment's exact size.
    data: BytesMut,
}

/// A PDU taken off the stream.
#[derive(Debug)]
pub(super) struct Received {
    pub pdu: Pdu,
    /// Its bytes on the wire, digests and padding included.
    pub wire_len: usize,
}

impl Receiver {
    /// See [`SegmentPool::forget`].
    #[cfg(test)]
    pub fn forget_lent(&mut self) {
        self.pool.forget();
    }

    /// Bytes waiting in the shared buffer (what the peer sent that is not
    /// yet a PDU, when it is not inside a long segment).
    pub fn shared(&self) -> &[u8] {
        &self.shared
    }

    /// Where the next bytes from the socket go, limited to how many are
    /// wanted there: the rest of a long segment, the bytes up to the end of
    /// the next header, or as much as the shared buffer holds. Never empty.
    pub fn buffer(&mut self, decoder: &PduDecoder) -> Limit<&mut BytesMut> {
        let missing = self
            .long
            .as_ref()
            .map_or(0, |l| l.head.data_len().saturating_sub(l.data.len()));
        if missing > 0 {
            let long = self.long.as_mut().expect("a long segment is missing bytes");
            return (&mut long.data).limit(missing);
        }
        let room = decoder.max_buffered_len(OWN_BUFFER_MIN);
        if self.shared.capacity() - self.shared.len() < room {
            // A fresh buffer, carrying over only the partial PDU at the end of
            // the old one. `BytesMut::reserve` would instead grow the old
            // allocation in place once its slices are gone, and realloc then
            // copies all of it, consumed bytes included.
            let mut fresh = BytesMut::with_capacity(RECEIVE_ALLOCATION.max(2 * room));
            fresh.extend_from_slice(&self.shared);
            self.shared = fresh;
        }
        let spare = self.shared.capacity() - self.shared.len();
        let wanted = self.header_wanted(decoder).map_or(spare, |n| n.min(spare));
        (&mut self.shared).limit(wanted)
    }

    /// When reads stop at the end of the next header: the bytes still
    /// missing to it (a long segment's trailer first), at least one.
    fn header_wanted(&self, decoder: &PduDecoder) -> Option<usize> {
        let trailer = match &self.long {
            Some(long) => long.head.trailer_len(),
            None if self.header_reads > 0 => 0,
            None => return None,
        };
        let digest = if decoder.digests().header {
            DIGEST_LEN
        } else {
            0
        };
        let header = match self.shared.get(trailer..trailer + BHS_LEN) {
            Some(b) => {
                let b: &[u8; BHS_LEN] = b.try_into().expect("slice of BHS_LEN");
                BHS_LEN + bhs::total_ahs_len(b) + digest
            }
            None => BHS_LEN + digest,
        };
        // With the header in, its PDU is short (a long one would have been
        // split off): read its segment, and what follows, freely.
        (trailer + header)
            .checked_sub(self.shared.len())
            .filter(|&n| n > 0)
    }

    /// The next whole PDU, once its bytes are in.
    pub fn next(&mut self, decoder: &mut PduDecoder) -> Result<Option<Received>, DecodeError> {
        loop {
            if self.long.is_some() {
                return self.finish_long();
            }
            let before = self.shared.len();
            match decoder.decode_split(&mut self.shared, OWN_BUFFER_MIN)? {
                None => return Ok(None),
                Some(Decoded::Pdu(pdu)) => {
                    let len = pdu.data().len();
                    self.header_reads = if len >= OWN_BUFFER_MIN {
                        // A long segment that came in whole.
                        HEADER_READS_AFTER_LONG
                    } else if len > 0 {
                        0
                    } else {
                        self.header_reads.saturating_sub(1)
                    };
                    let wire_len = before - self.shared.len();
                    return Ok(Some(Received { pdu, wire_len }));
                }
                Some(Decoded::Head(head)) => {
                    let len = head.data_len();
                    let have = self.shared.len().min(len);
                    let data = if have == len {
                        // Only the trailer is missing: keep the slice.
                        self.shared.split_to(len)
                    } else {
                        // What came with the header is copied once; the rest
                        // is read straight into place.
                        let mut data = self.pool.take(len);
                        data.put_slice(&self.shared[..have]);
                        self.shared.advance(have);
                        data
                    };
                    self.long = Some(Long { head, data });
                }
            }
        }
    }

    /// The long PDU under way, once its segment and trailer are in.
    fn finish_long(&mut self) -> Result<Option<Received>, DecodeError> {
        let long = self.long.as_mut().expect("a long segment under way");
        let len = long.head.data_len();
        if long.data.len() > len {
            // Written past the limit `buffer` gave: what follows the segment
            // belongs to the shared stream.
            let mut after = long.data.split_off(len);
            after.extend_from_slice(&self.shared);
            self.shared = after;
        }
        let trailer_len = long.head.trailer_len();
        if long.data.len() < len || self.shared.len() < trailer_len {
            return Ok(None);
        }
        let Long { head, data } = self.long.take().expect("a long segment under way");
        let mut trailer = [0u8; 8];
        trailer[..trailer_len].copy_from_slice(&self.shared[..trailer_len]);
        self.shared.advance(trailer_len);
        self.header_reads = HEADER_READS_AFTER_LONG;
        let wire_len = head.wire_len();
        let data = data.freeze();
        self.pool.lend(&data);
        let pdu = head.finish(data, &trailer[..trailer_len])?;
        Ok(Some(Received { pdu, wire_len }))
    }
}
