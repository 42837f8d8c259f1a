//! Errors found while turning a header and its segments into a typed PDU.

use super::Opcode;

/// A PDU whose fields contradict RFC 7143. Each carries the opcode and the
/// Initiator Task Tag so that a log line names the exchange it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// An opcode RFC 7143 reserves or leaves to vendors (§11.2.1.2).
    #[error("reserved or vendor-specific opcode {code:#04x} (ITT {itt:#010x})")]
    ReservedOpcode {
        /// The 6-bit opcode received.
        code: u8,
        /// The Initiator Task Tag of the PDU.
        itt: u32,
    },
    /// A data segment on a PDU type that has none (e.g. R2T, Logout).
    #[error("{opcode} carries a {len}-byte data segment but this PDU has none (ITT {itt:#010x})")]
    UnexpectedData {
        /// The PDU's opcode.
        opcode: Opcode,
        /// The Initiator Task Tag of the PDU.
        itt: u32,
        /// DataSegmentLength.
        len: usize,
    },
    /// Additional header segments on a PDU other than SCSI Command.
    #[error("{opcode} carries {len} bytes of AHS but only SCSI Command may (ITT {itt:#010x})")]
    UnexpectedAhs {
        /// The PDU's opcode.
        opcode: Opcode,
        /// The Initiator Task Tag of the PDU.
        itt: u32,
        /// TotalAHSLength in bytes.
        len: usize,
    },
    /// An AHS whose length or type is inconsistent (§11.2.2).
    #[error("{opcode}: malformed AHS: {reason} (ITT {itt:#010x})")]
    MalformedAhs {
        /// The PDU's opcode.
        opcode: Opcode,
        /// The Initiator Task Tag of the PDU.
        itt: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header field holds a value RFC 7143 does not allow.
    #[error("{opcode}: invalid {field} {value:#x} (ITT {itt:#010x})")]
    InvalidField {
        /// The PDU's opcode.
        opcode: Opcode,
        /// The Initiator Task Tag of the PDU.
        itt: u32,
        /// The field's name as RFC 7143 spells it.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A data segment too long for the 24-bit DataSegmentLength (encoding).
    #[error("{opcode}: data segment of {len} bytes exceeds the 24-bit length field")]
    DataTooLong {
        /// The PDU's opcode.
        opcode: Opcode,
        /// The data segment's length.
        len: usize,
    },
    /// A CDB that is empty or longer than an extended-CDB AHS can carry.
    #[error("SCSI Command: CDB of {len} bytes is outside 1..={max}")]
    CdbLength {
        /// The CDB's length.
        len: usize,
        /// The longest CDB allowed ([`super::MAX_CDB_LEN`]).
        max: usize,
    },
}
