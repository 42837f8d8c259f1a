//! Framing: the streaming PDU decoder and the encoder, with digests and limits.
//!
//! [`PduDecoder::decode`] follows tokio-util's `Decoder` contract without
//! depending on it: `Ok(Some(pdu))` when a whole PDU is buffered, `Ok(None)` when
//! more bytes are needed, `Err` when the stream is unusable. Lengths are checked
//! against the negotiated limits before any buffer is grown for them, so a peer
//! can never make us reserve more than one maximal PDU.

use bytes::{BufMut, Bytes, BytesMut};

use crate::digest::{self, DIGEST_LEN};
use crate::pdu::{BHS_LEN, Opcode, Pdu, PduError, bhs};

/// MaxRecvDataSegmentLength while logging in and its default (§13.12): 8 KiB.
pub const LOGIN_MAX_DATA_SEGMENT_LEN: u32 = 8192;

/// Largest AHS area: TotalAHSLength is one byte of 4-byte words.
pub const MAX_AHS_LEN: usize = 255 * 4;

/// Which digests a connection uses. Both are off during login (§13.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// HeaderDigest=CRC32C: a digest follows the BHS and AHS of every PDU.
    pub header: bool,
    /// DataDigest=CRC32C: a digest follows every non-empty data segment
    /// (computed over the data and its padding).
    pub data: bool,
}

/// Why a byte stream could not be decoded. After any of these the connection's
/// framing can no longer be trusted at ErrorRecoveryLevel 0: drop it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// DataSegmentLength is above the MaxRecvDataSegmentLength we declared
    /// (§13.12): the peer ignored the negotiated limit.
    #[error(
        "{opcode:?} PDU (ITT {itt:#010x}) announces a {length}-byte data segment, above the negotiated limit of {limit}"
    )]
    DataSegmentTooLong {
        /// The PDU's opcode (`None` for one RFC 7143 does not define).
        opcode: Option<Opcode>,
        /// Its Initiator Task Tag as received, to name the exchange.
        itt: u32,
        /// The announced DataSegmentLength.
        length: u32,
        /// Our MaxRecvDataSegmentLength.
        limit: u32,
    },
    /// The header digest does not match the BHS and AHS received.
    #[error("header digest mismatch: received {received:#010x}, computed {computed:#010x}")]
    HeaderDigest {
        /// The CRC32C that followed the header.
        received: u32,
        /// The CRC32C of the header bytes received.
        computed: u32,
    },
    /// The data digest does not match the data segment received.
    #[error(
        "data digest mismatch on {opcode:?} (ITT {itt:#010x}): received {received:#010x}, computed {computed:#010x}"
    )]
    DataDigest {
        /// The PDU's opcode.
        opcode: Option<Opcode>,
        /// Its Initiator Task Tag.
        itt: u32,
        /// The CRC32C that followed the data segment.
        received: u32,
        /// The CRC32C of the data and padding received.
        computed: u32,
    },
    /// The frame is complete but its fields break RFC 7143.
    #[error(transparent)]
    Pdu(#[from] PduError),
}

/// Streaming decoder for one direction of one connection.
#[derive(Debug, Clone)]
pub struct PduDecoder {
    digests: Digests,
    max_data_segment_len: u32,
}

impl Default for PduDecoder {
    fn default() -> Self {
        PduDecoder::new(Digests::default(), LOGIN_MAX_DATA_SEGMENT_LEN)
    }
}

/// Frame geometry read from a BHS.
struct Frame {
    ahs_len: usize,
    data_len: usize,
    header_len: usize,
    total_len: usize,
}

impl PduDecoder {
    /// `max_data_segment_len` is the MaxRecvDataSegmentLength we declared: the
    /// largest data segment the peer may send us.
    pub fn new(digests: Digests, max_data_segment_len: u32) -> Self {
        PduDecoder {
            digests,
            max_data_segment_len,
        }
    }

    /// Applies the outcome of login negotiation (digests start with the first
    /// full-feature PDU).
    pub fn configure(&mut self, digests: Digests, max_data_segment_len: u32) {
        self.digests = digests;
        self.max_data_segment_len = max_data_segment_len;
    }

    /// The digests expected on received PDUs.
    pub fn digests(&self) -> Digests {
        self.digests
    }

    /// The largest data segment accepted (our MaxRecvDataSegmentLength).
    pub fn max_data_segment_len(&self) -> u32 {
        self.max_data_segment_len
    }

    /// The most bytes a single PDU can occupy under the current limits.
    pub fn max_frame_len(&self) -> usize {
        self.frame_len(MAX_AHS_LEN, self.max_data_segment_len as usize)
    }

    fn frame_len(&self, ahs_len: usize, data_len: usize) -> usize {
        let header = BHS_LEN + ahs_len + if self.digests.header { DIGEST_LEN } else { 0 };
        let data_digest = if self.digests.data && data_len > 0 {
            DIGEST_LEN
        } else {
            0
        };
        header + bhs::padded_len(data_len) + data_digest
    }

    fn frame(&self, b: &[u8; BHS_LEN]) -> Frame {
        let ahs_len = bhs::total_ahs_len(b);
        let data_len = bhs::data_segment_len(b) as usize;
        let header_len = BHS_LEN + ahs_len + if self.digests.header { DIGEST_LEN } else { 0 };
        Frame {
            ahs_len,
            data_len,
            header_len,
            total_len: self.frame_len(ahs_len, data_len),
        }
    }

    /// The most bytes [`PduDecoder::decode_split`] with this `split` needs
    /// buffered to make progress: a whole PDU whose data segment is shorter
    /// than `split`, or the header of a longer one. A receive buffer with this
    /// much room never has to grow.
    pub fn max_buffered_len(&self, split: usize) -> usize {
        let data = (self.max_data_segment_len as usize).min(split.saturating_sub(1));
        self.frame_len(MAX_AHS_LEN, data)
    }

    /// Decodes one PDU from the front of `buf`, consuming its bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Pdu>, DecodeError> {
        let Some((b, frame)) = self.checked_header(buf)? else {
            return Ok(None);
        };
        self.decode_whole(buf, &b, &frame)
    }

    /// As [`PduDecoder::decode`], except that a PDU whose data segment is at
    /// least `split` bytes long (and not entirely buffered yet) comes back as
    /// its [`PduHead`]: its header is consumed and checked (header digest,
    /// opcode, the negotiated length limit), and the caller gathers the data
    /// segment in a buffer of its own, then the padding and data digest, and
    /// hands both to [`PduHead::finish`]. A PDU already wholly in `buf` is
    /// decoded as by `decode`, its data a slice of `buf`.
    pub fn decode_split(
        &mut self,
        buf: &mut BytesMut,
        split: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        let Some((b, frame)) = self.checked_header(buf)? else {
            return Ok(None);
        };
        // Short segments, and PDUs already whole, take the whole-PDU path.
        if frame.data_len == 0 || frame.data_len < split || buf.len() >= frame.total_len {
            return Ok(self.decode_whole(buf, &b, &frame)?.map(Decoded::Pdu));
        }
        // A long one whose header (without a header digest, the AHS) is not
        // all there yet: wait for it, reserving nothing. Reserving the whole
        // frame, as the whole-PDU path does, would grow the shared buffer to
        // hold the segment that is to get a buffer of its own.
        if buf.len() < frame.header_len {
            return Ok(None);
        }
        let opcode = Opcode::from_code(b[0]).expect("checked_header refuses reserved opcodes");
        if !opcode.may_carry_data() {
            // Refused before anyone buffers the segment for it.
            return Err(PduError::UnexpectedData {
                opcode,
                itt: bhs::itt_field(&b),
                len: frame.data_len,
            }
            .into());
        }
        let header = buf.split_to(frame.header_len).freeze();
        Ok(Some(Decoded::Head(PduHead {
            bhs: b,
            ahs: header.slice(BHS_LEN..BHS_LEN + frame.ahs_len),
            data_len: frame.data_len,
            header_len: frame.header_len,
            data_digest: self.digests.data,
        })))
    }

    /// The BHS at the front of `buf` once its header (AHS and digest
    /// included) is buffered and checks out; `None` until then.
    fn checked_header(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<([u8; BHS_LEN], Frame)>, DecodeError> {
        let Some(head) = buf.get(..BHS_LEN) else {
            return Ok(None);
        };
        let b: [u8; BHS_LEN] = head.try_into().expect("slice of BHS_LEN");
        let frame = self.frame(&b);
        if self.digests.header {
            // Trust nothing in a header before its digest checks out.
            if buf.len() < frame.header_len {
                buf.reserve(frame.header_len - buf.len());
                return Ok(None);
            }
            let covered = BHS_LEN + frame.ahs_len;
            let received = read_digest(&buf[covered..covered + DIGEST_LEN]);
            let computed = digest::crc32c(&buf[..covered]);
            if received != computed {
                return Err(DecodeError::HeaderDigest { received, computed });
            }
        }
        let opcode = Opcode::from_code(b[0]);
        let itt = bhs::itt_field(&b);
        let Some(opcode_known) = opcode else {
            return Err(PduError::ReservedOpcode {
                code: b[0] & 0x3f,
                itt,
            }
            .into());
        };
        if frame.data_len > self.max_data_segment_len as usize {
            return Err(DecodeError::DataSegmentTooLong {
                opcode,
                itt,
                length: frame.data_len as u32,
                limit: self.max_data_segment_len,
            });
        }
        if frame.ahs_len > 0 && opcode_known != Opcode::ScsiCommand {
            return Err(PduError::UnexpectedAhs {
                opcode: opcode_known,
                itt,
                len: frame.ahs_len,
            }
            .into());
        }
        Ok(Some((b, frame)))
    }

    /// The whole PDU whose checked header is at the front of `buf`, once
    /// all of it is buffered.
    fn decode_whole(
        &self,
        buf: &mut BytesMut,
        b: &[u8; BHS_LEN],
        frame: &Frame,
    ) -> Result<Option<Pdu>, DecodeError> {
        if buf.len() < frame.total_len {
            buf.reserve(frame.total_len - buf.len());
            return Ok(None);
        }
        let whole = buf.split_to(frame.total_len).freeze();
        let data_start = frame.header_len;
        let padded = bhs::padded_len(frame.data_len);
        if self.digests.data && frame.data_len > 0 {
            let at = data_start + padded;
            let received = read_digest(&whole[at..at + DIGEST_LEN]);
            let computed = digest::crc32c(&whole[data_start..at]);
            if received != computed {
                return Err(DecodeError::DataDigest {
                    opcode: Opcode::from_code(b[0]),
                    itt: bhs::itt_field(b),
                    received,
                    computed,
                });
            }
        }
        let ahs = &whole[BHS_LEN..BHS_LEN + frame.ahs_len];
        let data = whole.slice(data_start..data_start + frame.data_len);
        Ok(Some(Pdu::decode_parts(b, ahs, data)?))
    }
}

/// What [`PduDecoder::decode_split`] found at the front of the buffer.
#[derive(Debug)]
pub enum Decoded {
    /// A whole PDU.
    Pdu(Pdu),
    /// The header of a PDU whose long data segment is still to come.
    Head(PduHead),
}

/// The checked header of a PDU whose data segment the caller gathers itself
/// (see [`PduDecoder::decode_split`]): the segment is `data_len` bytes, then
/// come `trailer_len` bytes of padding and data digest.
#[derive(Debug, Clone)]
pub struct PduHead {
    bhs: [u8; BHS_LEN],
    ahs: Bytes,
    data_len: usize,
    header_len: usize,
    data_digest: bool,
}

impl PduHead {
    /// The PDU's opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from_code(self.bhs[0]).expect("a head is only made for a known opcode")
    }

    /// Its Initiator Task Tag as received.
    pub fn itt(&self) -> u32 {
        bhs::itt_field(&self.bhs)
    }

    /// Bytes of the data segment (never above the negotiated limit).
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Bytes of padding and data digest after the segment.
    pub fn trailer_len(&self) -> usize {
        let digest = if self.data_digest { DIGEST_LEN } else { 0 };
        bhs::padded_len(self.data_len) - self.data_len + digest
    }

    /// Bytes of the whole PDU on the wire, header included.
    pub fn wire_len(&self) -> usize {
        self.header_len + self.data_len + self.trailer_len()
    }

    /// The PDU, from its data segment and the trailer that followed it: the
    /// data digest (over data and padding) is checked, the padding otherwise
    /// ignored, as [`PduDecoder::decode`] does.
    ///
    /// # Panics
    ///
    /// If `data` or `trailer` is not of the length this head announced: the
    /// caller reads exactly that many bytes of each.
    pub fn finish(self, data: Bytes, trailer: &[u8]) -> Result<Pdu, DecodeError> {
        assert_eq!(
            data.len(),
            self.data_len,
            "data segment of the announced length"
        );
        assert_eq!(trailer.len(), self.trailer_len(), "padding and digest");
        let pad = bhs::padded_len(self.data_len) - self.data_len;
        if self.data_digest {
            let received = read_digest(&trailer[pad..]);
            let computed = digest::crc32c_append(digest::crc32c(&data), &trailer[..pad]);
            if received != computed {
                return Err(DecodeError::DataDigest {
                    opcode: Some(self.opcode()),
                    itt: self.itt(),
                    received,
                    computed,
                });
            }
        }
        Ok(Pdu::decode_parts(&self.bhs, &self.ahs, data)?)
    }
}

fn read_digest(bytes: &[u8]) -> u32 {
    digest::from_wire([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Why a PDU could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The data segment is above the peer's MaxRecvDataSegmentLength: sending
    /// it would break the peer's framing (§13.12).
    #[error(
        "{opcode} (ITT {itt:#010x}) data segment of {length} bytes exceeds the peer's MaxRecvDataSegmentLength {limit}"
    )]
    DataSegmentTooLong {
        /// The PDU's opcode.
        opcode: Opcode,
        /// Its Initiator Task Tag.
        itt: u32,
        /// The data segment's length.
        length: usize,
        /// The peer's MaxRecvDataSegmentLength.
        limit: u32,
    },
    /// The PDU's fields cannot be put on the wire (e.g. a CDB too long).
    #[error(transparent)]
    Pdu(#[from] PduError),
}

/// What follows a header [`PduEncoder::encode_header_into`] wrote into the
/// caller's buffer: the data segment, padding and data digest.
pub struct EncodedTail {
    /// Bytes the header took in the buffer.
    pub header_len: usize,
    /// The data segment as given.
    pub data: Bytes,
    trailer: [u8; 8],
    trailer_len: u8,
}

impl std::fmt::Debug for EncodedTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedTail")
            .field("header_len", &self.header_len)
            .field("data_len", &self.data.len())
            .field("trailer_len", &self.trailer_len)
            .finish()
    }
}

impl EncodedTail {
    /// Padding and data digest that follow the data segment.
    pub fn trailer(&self) -> &[u8] {
        &self.trailer[..usize::from(self.trailer_len)]
    }

    /// Total bytes on the wire, header included.
    pub fn len(&self) -> usize {
        self.header_len + self.data.len() + usize::from(self.trailer_len)
    }

    /// Never true for a real PDU, whose BHS alone is 48 bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A PDU ready for a vectored write: the payload is the caller's `Bytes`,
/// never copied. `Debug` shows lengths only (login text carries CHAP values).
#[derive(Clone)]
pub struct EncodedPdu {
    /// BHS, AHS and header digest.
    pub header: Bytes,
    /// The data segment as given.
    pub data: Bytes,
    trailer: [u8; 8],
    trailer_len: u8,
}

impl std::fmt::Debug for EncodedPdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedPdu")
            .field("header_len", &self.header.len())
            .field("data_len", &self.data.len())
            .field("trailer_len", &self.trailer_len)
            .finish()
    }
}

impl EncodedPdu {
    /// Padding and data digest that follow the data segment.
    pub fn trailer(&self) -> &[u8] {
        &self.trailer[..usize::from(self.trailer_len)]
    }

    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.data.len() + usize::from(self.trailer_len)
    }

    /// True when there is nothing to write; never for a real PDU, whose BHS
    /// alone is 48 bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The three pieces in wire order.
    pub fn chunks(&self) -> [&[u8]; 3] {
        [&self.header, &self.data, self.trailer()]
    }

    /// Copies the whole PDU into `dst`.
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        for chunk in self.chunks() {
            dst.put_slice(chunk);
        }
    }
}

/// Encoder for one direction of one connection.
#[derive(Debug, Clone)]
pub struct PduEncoder {
    digests: Digests,
    max_data_segment_len: u32,
}

impl Default for PduEncoder {
    fn default() -> Self {
        PduEncoder::new(Digests::default(), LOGIN_MAX_DATA_SEGMENT_LEN)
    }
}

impl PduEncoder {
    /// `max_data_segment_len` is the peer's declared MaxRecvDataSegmentLength: a
    /// larger data segment is refused rather than sent.
    pub fn new(digests: Digests, max_data_segment_len: u32) -> Self {
        PduEncoder {
            digests,
            max_data_segment_len,
        }
    }

    /// Applies the outcome of login negotiation: the digests, and the peer's
    /// MaxRecvDataSegmentLength.
    pub fn configure(&mut self, digests: Digests, max_data_segment_len: u32) {
        self.digests = digests;
        self.max_data_segment_len = max_data_segment_len;
    }

    /// The digests added to sent PDUs.
    pub fn digests(&self) -> Digests {
        self.digests
    }

    /// The largest data segment sent (the peer's MaxRecvDataSegmentLength).
    pub fn max_data_segment_len(&self) -> u32 {
        self.max_data_segment_len
    }

    /// Encodes header and trailer; the data segment stays the caller's `Bytes`.
    pub fn encode_vectored(&self, pdu: &Pdu) -> Result<EncodedPdu, EncodeError> {
        let mut header = BytesMut::with_capacity(BHS_LEN + DIGEST_LEN);
        let tail = self.encode_header_into(pdu, &mut header)?;
        Ok(EncodedPdu {
            header: header.freeze(),
            data: tail.data,
            trailer: tail.trailer,
            trailer_len: tail.trailer_len,
        })
    }

    /// Appends the header (BHS, AHS, header digest) to `dst`, a send buffer,
    /// and returns what follows it on the wire: no buffer of its own for the
    /// header, and no copy of it. On error `dst` is left as it was.
    pub fn encode_header_into(
        &self,
        pdu: &Pdu,
        dst: &mut BytesMut,
    ) -> Result<EncodedTail, EncodeError> {
        let data = pdu.data().clone();
        if data.len() > self.max_data_segment_len as usize {
            return Err(EncodeError::DataSegmentTooLong {
                opcode: pdu.opcode(),
                itt: pdu.itt().0,
                length: data.len(),
                limit: self.max_data_segment_len,
            });
        }
        let start = dst.len();
        if let Err(e) = pdu.encode_header(dst) {
            dst.truncate(start);
            return Err(e.into());
        }
        if self.digests.header {
            let crc = digest::crc32c(&dst[start..]);
            dst.put_slice(&digest::to_wire(crc));
        }
        let mut trailer = [0u8; 8];
        let pad = bhs::padded_len(data.len()) - data.len();
        let mut trailer_len = pad;
        if self.digests.data && !data.is_empty() {
            let crc = digest::crc32c_append(digest::crc32c(&data), &trailer[..pad]);
            trailer[pad..pad + DIGEST_LEN].copy_from_slice(&digest::to_wire(crc));
            trailer_len += DIGEST_LEN;
        }
        Ok(EncodedTail {
            header_len: dst.len() - start,
            data,
            trailer,
            trailer_len: trailer_len as u8,
        })
    }

    /// Encodes the whole PDU contiguously into `dst`.
    pub fn encode(&self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_vectored(pdu)?.write_to(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{DataIn, DataInStatus, Itt, Lun, NopOut, Residual, Ttt};

    fn nop_out(data: &'static [u8]) -> Pdu {
        Pdu::NopOut(NopOut {
            immediate: true,
            lun: Lun::from_number(0).unwrap(),
            itt: Itt(7),
            ttt: Ttt::RESERVED,
            cmd_sn: 1,
            exp_stat_sn: 2,
            data: Bytes::from_static(data),
        })
    }

    fn data_in(len: usize) -> Pdu {
        Pdu::DataIn(DataIn {
            final_: true,
            acknowledge: false,
            status: Some(DataInStatus {
                status: 0,
                stat_sn: 9,
                residual: Residual::None,
            }),
            lun: Lun::from_number(1).unwrap(),
            itt: Itt(3),
            ttt: Ttt::RESERVED,
            exp_cmd_sn: 1,
            max_cmd_sn: 32,
            data_sn: 0,
            buffer_offset: 0,
            data: Bytes::from(vec![0xa5; len]),
        })
    }

    #[test]
    fn byte_at_a_time_decoding_with_digests() {
        let digests = Digests {
            header: true,
            data: true,
        };
        let enc = PduEncoder::new(digests, 1 << 20);
        let mut wire = BytesMut::new();
        let pdus = [nop_out(b"hello"), data_in(4097), nop_out(b"")];
        for p in &pdus {
            enc.encode(p, &mut wire).unwrap();
        }
        let mut dec = PduDecoder::new(digests, 1 << 20);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(p) = dec.decode(&mut buf).unwrap() {
                out.push(p);
            }
        }
        assert_eq!(out, pdus);
        assert!(buf.is_empty());
    }

    #[test]
    fn padding_is_on_the_wire() {
        let enc = PduEncoder::default();
        let mut wire = BytesMut::new();
        enc.encode(&nop_out(b"abcde"), &mut wire).unwrap();
        assert_eq!(wire.len(), 48 + 8);
        assert_eq!(&wire[48 + 5..], &[0, 0, 0]);
    }

    #[test]
    fn oversized_segment_refused_before_buffering() {
        let mut wire = BytesMut::new();
        PduEncoder::new(Digests::default(), 1 << 20)
            .encode(&data_in(9000), &mut wire)
            .unwrap();
        let mut dec = PduDecoder::default();
        let mut buf = BytesMut::from(&wire[..BHS_LEN]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::DataSegmentTooLong {
                length: 9000,
                limit: 8192,
                ..
            }
        ));
        assert!(buf.capacity() < 9000);
    }

    #[test]
    fn encoder_refuses_what_the_peer_cannot_take() {
        let err = PduEncoder::default()
            .encode_vectored(&data_in(8193))
            .unwrap_err();
        assert!(matches!(
            err,
            EncodeError::DataSegmentTooLong { length: 8193, .. }
        ));
    }

    #[test]
    fn a_header_encoded_into_a_send_buffer_matches_the_vectored_encoding() {
        let digests = Digests {
            header: true,
            data: true,
        };
        let enc = PduEncoder::new(digests, 1 << 20);
        let pdu = data_in(101);
        let whole = enc.encode_vectored(&pdu).unwrap();
        let mut dst = BytesMut::from(&b"earlier"[..]);
        let tail = enc.encode_header_into(&pdu, &mut dst).unwrap();
        assert_eq!(&dst[..7], b"earlier", "appended, not overwritten");
        assert_eq!(&dst[7..], &whole.header[..]);
        assert_eq!(tail.header_len, whole.header.len());
        assert_eq!(tail.data, whole.data);
        assert_eq!(tail.trailer(), whole.trailer());
        assert_eq!(tail.len(), whole.len());
    }

    #[test]
    fn a_refused_header_leaves_the_send_buffer_as_it_was() {
        let mut dst = BytesMut::from(&b"earlier"[..]);
        let err = PduEncoder::default()
            .encode_header_into(&data_in(8193), &mut dst)
            .unwrap_err();
        assert!(matches!(err, EncodeError::DataSegmentTooLong { .. }));
        assert_eq!(&dst[..], b"earlier");
    }

    #[test]
    fn digest_mismatches_are_reported() {
        let digests = Digests {
            header: true,
            data: true,
        };
        let enc = PduEncoder::new(digests, 1 << 20);
        let mut wire = BytesMut::new();
        enc.encode(&data_in(100), &mut wire).unwrap();

        let mut bad_header = wire.clone();
        bad_header[20] ^= 1;
        let err = PduDecoder::new(digests, 1 << 20)
            .decode(&mut bad_header)
            .unwrap_err();
        assert!(matches!(err, DecodeError::HeaderDigest { .. }));

        let mut bad_data = wire.clone();
        bad_data[60] ^= 1;
        let err = PduDecoder::new(digests, 1 << 20)
            .decode(&mut bad_data)
            .unwrap_err();
        assert!(matches!(err, DecodeError::DataDigest { itt: 3, .. }));
    }

    #[test]
    fn reserved_opcode_refused() {
        let mut buf = BytesMut::from(&[0x1cu8; 48][..]);
        buf[4] = 0;
        buf[5..8].copy_from_slice(&[0, 0, 0]);
        let err = PduDecoder::default().decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Pdu(PduError::ReservedOpcode { code: 0x1c, .. })
        ));
    }

    #[test]
    fn ahs_on_a_data_in_refused() {
        let mut wire = BytesMut::new();
        PduEncoder::default()
            .encode(&data_in(0), &mut wire)
            .unwrap();
        wire[4] = 1;
        let err = PduDecoder::default().decode(&mut wire).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Pdu(PduError::UnexpectedAhs { .. })
        ));
    }

    const BOTH: Digests = Digests {
        header: true,
        data: true,
    };

    /// Decodes `wire` as a receiver splitting long segments would: the
    /// stream fed `step` bytes at a time, each long segment gathered in a
    /// buffer of its own sized from its head, then its trailer.
    /// Returns the PDUs and how many came through a head.
    fn decode_gathering(
        digests: Digests,
        wire: &[u8],
        step: usize,
        split: usize,
    ) -> (Vec<Pdu>, usize) {
        let mut dec = PduDecoder::new(digests, 1 << 20);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut head: Option<(PduHead, BytesMut)> = None;
        let mut heads = 0;
        let mut rest = wire;
        loop {
            let n = step.min(rest.len());
            match &mut head {
                Some((h, data)) if data.len() < h.data_len() => {
                    let n = n.min(h.data_len() - data.len());
                    data.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                }
                _ => {
                    buf.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                }
            }
            loop {
                if let Some((h, data)) = &head {
                    if data.len() < h.data_len() || buf.len() < h.trailer_len() {
                        break;
                    }
                    let (h, data) = head.take().unwrap();
                    let trailer = buf.split_to(h.trailer_len());
                    out.push(h.finish(data.freeze(), &trailer).unwrap());
                    continue;
                }
                match dec.decode_split(&mut buf, split).unwrap() {
                    Some(Decoded::Pdu(p)) => out.push(p),
                    Some(Decoded::Head(h)) => {
                        heads += 1;
                        let mut data = BytesMut::with_capacity(h.data_len());
                        let have = buf.len().min(h.data_len());
                        data.extend_from_slice(&buf.split_to(have));
                        head = Some((h, data));
                    }
                    None => break,
                }
            }
            if n == 0 {
                break;
            }
        }
        assert!(buf.is_empty(), "nothing left over");
        (out, heads)
    }

    #[test]
    fn long_segments_split_off_whatever_the_chunking() {
        let pdus = [
            nop_out(b"hello"),
            data_in(70_001),
            data_in(4097),
            data_in(65_536),
            nop_out(b""),
            data_in(65_535),
        ];
        for digests in [Digests::default(), BOTH] {
            let enc = PduEncoder::new(digests, 1 << 20);
            let mut wire = BytesMut::new();
            for p in &pdus {
                enc.encode(p, &mut wire).unwrap();
            }
            for step in [1, 3, 47, 48, 53, 4096, 65_537, wire.len()] {
                let (out, heads) = decode_gathering(digests, &wire, step, 65_536);
                assert_eq!(out, pdus, "{digests:?}, {step} bytes at a time");
                // The two long segments, unless they came in whole.
                let expected = if step == wire.len() { 0 } else { 2 };
                assert_eq!(heads, expected, "{digests:?}, {step} bytes at a time");
            }
        }
    }

    #[test]
    fn a_long_pdu_waiting_for_its_ahs_reserves_nothing() {
        // A SCSI Command BHS (the one opcode allowed an AHS) announcing 4
        // bytes of AHS and a 70001-byte segment; only the BHS is in.
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = 0x01;
        bhs[4] = 1;
        bhs[5..8].copy_from_slice(&70_001u32.to_be_bytes()[1..]);
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(&bhs);
        let mut dec = PduDecoder::new(Digests::default(), 1 << 20);
        assert!(dec.decode_split(&mut buf, 65_536).unwrap().is_none());
        assert_eq!(buf.len(), BHS_LEN, "nothing consumed");
        assert!(
            buf.capacity() <= 1024,
            "the shared buffer grew to {} for a segment that gets its own",
            buf.capacity()
        );
    }

    #[test]
    fn a_head_is_returned_only_for_a_long_segment_not_yet_buffered() {
        let mut wire = BytesMut::new();
        let enc = PduEncoder::new(BOTH, 1 << 20);
        enc.encode(&data_in(70_001), &mut wire).unwrap();
        let mut dec = PduDecoder::new(BOTH, 1 << 20);

        // A whole PDU is decoded whole, whatever its length.
        let mut whole = wire.clone();
        assert!(matches!(
            dec.decode_split(&mut whole, 65_536).unwrap(),
            Some(Decoded::Pdu(_))
        ));
        // Above the split, once the header is in: its head.
        let mut partial = BytesMut::from(&wire[..BHS_LEN + DIGEST_LEN + 10]);
        let Some(Decoded::Head(head)) = dec.decode_split(&mut partial, 65_536).unwrap() else {
            panic!("a head");
        };
        assert_eq!(
            &partial[..],
            &wire[BHS_LEN + DIGEST_LEN..][..10],
            "header consumed"
        );
        assert_eq!(head.opcode(), Opcode::DataIn);
        assert_eq!(head.itt(), 3);
        assert_eq!(head.data_len(), 70_001);
        assert_eq!(head.trailer_len(), 3 + DIGEST_LEN);
        assert_eq!(head.wire_len(), wire.len());
        // Not before the header digest is in.
        let mut short = BytesMut::from(&wire[..BHS_LEN + 2]);
        assert!(dec.decode_split(&mut short, 65_536).unwrap().is_none());
        assert_eq!(short.len(), BHS_LEN + 2);
        // At or below the split it waits for the whole PDU.
        let mut partial = BytesMut::from(&wire[..BHS_LEN + DIGEST_LEN + 10]);
        assert!(dec.decode_split(&mut partial, 70_002).unwrap().is_none());
        assert_eq!(partial.len(), BHS_LEN + DIGEST_LEN + 10);
    }

    #[test]
    fn a_finished_head_checks_the_data_digest() {
        let enc = PduEncoder::new(BOTH, 1 << 20);
        let pdu = data_in(70_001);
        let mut wire = BytesMut::new();
        enc.encode(&pdu, &mut wire).unwrap();
        let header = BHS_LEN + DIGEST_LEN;
        let head = || {
            let mut buf = BytesMut::from(&wire[..header]);
            match PduDecoder::new(BOTH, 1 << 20).decode_split(&mut buf, 1) {
                Ok(Some(Decoded::Head(h))) => h,
                other => panic!("{other:?}"),
            }
        };
        let data = Bytes::copy_from_slice(&wire[header..header + 70_001]);
        let trailer = &wire[header + 70_001..];
        assert_eq!(head().finish(data.clone(), trailer).unwrap(), pdu);

        let mut bad = data.to_vec();
        bad[69_999] ^= 1;
        let err = head().finish(Bytes::from(bad), trailer).unwrap_err();
        assert!(matches!(err, DecodeError::DataDigest { itt: 3, .. }));
        // The padding is covered by the digest too.
        let mut bad_pad = trailer.to_vec();
        bad_pad[0] ^= 1;
        let err = head().finish(data, &bad_pad).unwrap_err();
        assert!(matches!(err, DecodeError::DataDigest { .. }));
    }

    #[test]
    fn hostile_heads_are_refused_before_their_segment_is_buffered() {
        let enc = PduEncoder::new(BOTH, 1 << 24);
        let mut wire = BytesMut::new();
        enc.encode(&data_in(70_001), &mut wire).unwrap();
        let header = BHS_LEN + DIGEST_LEN;

        // Above our MaxRecvDataSegmentLength.
        let mut buf = BytesMut::from(&wire[..header]);
        let err = PduDecoder::new(BOTH, 65_536)
            .decode_split(&mut buf, 1)
            .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::DataSegmentTooLong { length: 70_001, .. }
        ));
        assert!(buf.capacity() < 70_001);

        // A header digest that does not match.
        let mut buf = BytesMut::from(&wire[..header]);
        buf[30] ^= 1;
        let err = PduDecoder::new(BOTH, 1 << 20)
            .decode_split(&mut buf, 1)
            .unwrap_err();
        assert!(matches!(err, DecodeError::HeaderDigest { .. }));

        // A PDU kind that never carries data announcing a long segment (an
        // R2T: opcode 0x31), its header digest recomputed.
        let mut buf = BytesMut::from(&wire[..header]);
        buf[0] = 0x31;
        let crc = digest::crc32c(&buf[..BHS_LEN]);
        buf[BHS_LEN..].copy_from_slice(&digest::to_wire(crc));
        let err = PduDecoder::new(BOTH, 1 << 20)
            .decode_split(&mut buf, 1)
            .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Pdu(PduError::UnexpectedData { len: 70_001, .. })
        ));
    }

    #[test]
    fn max_buffered_len_covers_a_whole_short_pdu_or_a_header() {
        let dec = PduDecoder::new(BOTH, 1 << 20);
        assert_eq!(
            dec.max_buffered_len(65_536),
            BHS_LEN + MAX_AHS_LEN + DIGEST_LEN + 65_536 + DIGEST_LEN
        );
        assert_eq!(dec.max_buffered_len(usize::MAX), dec.max_frame_len());
        let small = PduDecoder::new(Digests::default(), 8192);
        assert_eq!(small.max_buffered_len(65_536), small.max_frame_len());
        assert_eq!(small.max_buffered_len(0), BHS_LEN + MAX_AHS_LEN);
    }

    #[test]
    fn payload_is_not_copied() {
        let mut wire = BytesMut::new();
        PduEncoder::new(Digests::default(), 1 << 20)
            .encode(&data_in(4096), &mut wire)
            .unwrap();
        let base = wire.as_ptr() as usize;
        let pdu = PduDecoder::new(Digests::default(), 1 << 20)
            .decode(&mut wire)
            .unwrap()
            .unwrap();
        assert_eq!(pdu.data().as_ptr() as usize, base + BHS_LEN);
    }
}
