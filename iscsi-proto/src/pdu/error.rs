//! Errors found while turning a header and its segments into a typed PDU.

use super::Opcode;

/// A PDU whose fields contradict RFC 7143. Each carries the opcode and the
/// Initiator Task Tag so that a log line names the exchange it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("reserved or vendor-specific opcode {code:#04x} (ITT {itt:#010x})")]
    ReservedOpcode { code: u8, itt: u32 },
    #[error("{opcode} carries a {len}-byte data segment but this PDU has none (ITT {itt:#010x})")]
    UnexpectedData {
        opcode: Opcode,
        itt: u32,
        len: usize,
    },
    #[error("{opcode} carries {len} bytes of AHS but only SCSI Command may (ITT {itt:#010x})")]
    UnexpectedAhs {
        opcode: Opcode,
        itt: u32,
        len: usize,
    },
    #[error("{opcode}: malformed AHS: {reason} (ITT {itt:#010x})")]
    MalformedAhs {
        opcode: Opcode,
        itt: u32,
        reason: &'static str,
    },
    #[error("{opcode}: invalid {field} {value:#x} (ITT {itt:#010x})")]
    InvalidField {
        opcode: Opcode,
        itt: u32,
        field: &'static str,
        value: u32,
    },
    #[error("{opcode}: data segment of {len} bytes exceeds the 24-bit length field")]
    DataTooLong { opcode: Opcode, len: usize },
    #[error("SCSI Command: CDB of {len} bytes is outside 1..={max}")]
    CdbLength { len: usize, max: usize },
}
