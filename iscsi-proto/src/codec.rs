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

    /// Decodes one PDU from the front of `buf`, consuming its bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Pdu>, DecodeError> {
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
                    opcode,
                    itt,
                    received,
                    computed,
                });
            }
        }
        let ahs = &whole[BHS_LEN..BHS_LEN + frame.ahs_len];
        let data = whole.slice(data_start..data_start + frame.data_len);
        Ok(Some(Pdu::decode_parts(&b, ahs, data)?))
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
