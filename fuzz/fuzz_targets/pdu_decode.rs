//! Feeds arbitrary bytes to the streaming PDU decoder in arbitrary pieces.
//!
//! Input layout (see `Setup::parse`): a 4-byte configuration (digests, buffer
//! mode, MaxRecvDataSegmentLength), up to 15 chunk sizes, then the byte stream.
//!
//! Asserted, beyond "no panic, no hang":
//! - `Ok(None)` consumes nothing; `Ok(Some)` consumes at least a BHS.
//! - Every decoded PDU re-encodes under the same configuration, and that
//!   encoding decodes to the same PDU.
//! - Memory: the decoder only grows the buffer to hold one frame within the
//!   negotiated limits (`max_frame_len()`), never for a length read from the
//!   wire that exceeds them. `capacity <= max_frame_len + chunk` cannot be
//!   asserted literally: `BytesMut` grows like `Vec`, to
//!   `max(required, 2 * current allocation)`. So:
//!   * in "exact" mode the harness rebuilds the buffer with capacity == len
//!     before each decode call; any growth is then the decoder's own reserve,
//!     and must stay within `max(max_frame_len, 2 * len, 8)` (8: Vec's
//!     smallest non-zero capacity for bytes);
//!   * in "organic" mode the buffer lives as a real driver's would (shared
//!     after `split_to`, reclaimed, doubled). Every request then needs at most
//!     B = max_frame_len + largest chunk bytes, and doubling an allocation
//!     that was itself needed keeps every allocation below 4 * B.

#![no_main]

use bytes::BytesMut;
use iscsi_proto::codec::{Digests, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{BHS_LEN, Pdu};
use libfuzzer_sys::fuzz_target;

/// Smallest non-zero capacity `Vec<u8>` allocates.
const VEC_MIN_CAP: usize = 8;

struct Setup<'a> {
    digests: Digests,
    exact_buffer: bool,
    limit: u32,
    chunk_sizes: Vec<usize>,
    stream: &'a [u8],
}

impl<'a> Setup<'a> {
    /// Byte 0: bit 0 header digest, bit 1 data digest, bit 2 exact-buffer mode.
    /// Bytes 1-2: MaxRecvDataSegmentLength (big-endian u16; 0 is allowed: the
    /// decoder must cope with any limit). Byte 3: number of chunk sizes K (low
    /// 4 bits; 0 = the whole stream at once). Then K bytes, each a chunk size
    /// minus one, used in a cycle. The rest is the stream.
    fn parse(data: &'a [u8]) -> Option<Self> {
        let (head, rest) = data.split_at_checked(4)?;
        let k = usize::from(head[3] & 0x0f);
        let (sizes, stream) = rest.split_at_checked(k)?;
        Some(Setup {
            digests: Digests {
                header: head[0] & 1 != 0,
                data: head[0] & 2 != 0,
            },
            exact_buffer: head[0] & 4 != 0,
            limit: u32::from(u16::from_be_bytes([head[1], head[2]])),
            chunk_sizes: sizes.iter().map(|&s| usize::from(s) + 1).collect(),
            stream,
        })
    }

    fn largest_chunk(&self) -> usize {
        if self.chunk_sizes.is_empty() {
            self.stream.len()
        } else {
            self.chunk_sizes.iter().copied().max().unwrap_or(1)
        }
    }

    fn chunks(&self) -> Vec<&'a [u8]> {
        if self.chunk_sizes.is_empty() {
            return vec![self.stream];
        }
        let mut out = Vec::new();
        let mut rest = self.stream;
        for &size in self.chunk_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            out.push(chunk);
            rest = tail;
        }
        out
    }
}

/// A decoded PDU must be encodable under the limits it was accepted with, and
/// its encoding must decode to the same value.
fn check_reencodes(pdu: &Pdu, digests: Digests, limit: u32) {
    let mut wire = BytesMut::new();
    if let Err(e) = PduEncoder::new(digests, limit).encode(pdu, &mut wire) {
        panic!("decoded PDU does not re-encode: {e}: {pdu:?}");
    }
    let again = PduDecoder::new(digests, limit)
        .decode(&mut wire)
        .unwrap_or_else(|e| panic!("re-encoded PDU refused: {e}: {pdu:?}"))
        .expect("a whole re-encoded PDU");
    assert_eq!(&again, pdu, "decode(encode(pdu)) differs");
    assert!(wire.is_empty(), "re-encoded PDU left {} bytes", wire.len());
}

fuzz_target!(|data: &[u8]| {
    let Some(setup) = Setup::parse(data) else {
        return;
    };
    let mut decoder = PduDecoder::new(setup.digests, setup.limit);
    let max_frame = decoder.max_frame_len();
    let organic_bound = 4 * (max_frame + setup.largest_chunk());
    let mut buf = BytesMut::new();

    for chunk in setup.chunks() {
        buf.extend_from_slice(chunk);
        loop {
            if setup.exact_buffer {
                buf = BytesMut::from(&buf[..]);
            }
            let (len_before, cap_before) = (buf.len(), buf.capacity());
            let result = decoder.decode(&mut buf);
            let cap_after = buf.capacity();
            if setup.exact_buffer && cap_after > cap_before {
                let bound = max_frame.max(2 * len_before).max(VEC_MIN_CAP);
                assert!(
                    cap_after <= bound,
                    "decoder grew a {len_before}-byte buffer to {cap_after} (max frame {max_frame})"
                );
            }
            assert!(
                cap_after <= organic_bound,
                "buffer capacity {cap_after} above 4 * (max frame {max_frame} + chunk)"
            );
            match result {
                Ok(Some(pdu)) => {
                    assert!(len_before - buf.len() >= BHS_LEN);
                    check_reencodes(&pdu, setup.digests, setup.limit);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), len_before, "Ok(None) consumed bytes");
                    break;
                }
                // The stream is unusable after an error: a connection drops here.
                Err(_) => return,
            }
        }
    }
});
