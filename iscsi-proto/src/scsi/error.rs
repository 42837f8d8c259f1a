//! Errors of CDB building and SCSI response parsing.

use thiserror::Error;

/// Why a CDB could not be built or a SCSI response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScsiError {
    /// A response ended before a field the caller needs.
    #[error("{what}: need {needed} bytes, got {available}")]
    Truncated {
        /// Which structure or field was cut short.
        what: &'static str,
        /// Bytes required to reach the end of the missing field.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// A VPD page answered with another page code than the one asked for.
    #[error("expected VPD page {expected:#04x}, got {actual:#04x}")]
    UnexpectedPage {
        /// Page code that was requested.
        expected: u8,
        /// Page code found in the response header.
        actual: u8,
    },
    /// Sense data whose response code is neither fixed (70h/71h) nor descriptor (72h/73h).
    #[error("unsupported sense data response code {0:#04x}")]
    UnsupportedSenseFormat(u8),
    /// An iSCSI data segment that carries no sense data (SenseLength 0 or no segment).
    #[error("no sense data in the iSCSI data segment")]
    NoSenseData,
    /// A field value that is structurally impossible (e.g. a last LBA of 2^64-1).
    #[error("{what}: invalid value {value:#x}")]
    InvalidField {
        /// Which field.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A CDB argument does not fit the field of the chosen command form.
    #[error("{command}: {field} {value:#x} exceeds the maximum {max:#x}")]
    ArgumentTooLarge {
        /// Command being built, e.g. "READ(10)".
        command: &'static str,
        /// Argument name, e.g. "lba".
        field: &'static str,
        /// Value given.
        value: u64,
        /// Largest value the field can carry.
        max: u64,
    },
    /// An UNMAP parameter list with more block descriptors than allowed.
    #[error("UNMAP: {count} block descriptors exceed the limit {max}")]
    TooManyUnmapDescriptors {
        /// Descriptors given.
        count: usize,
        /// Effective limit (target limit and what the 16-bit length fields can carry).
        max: usize,
    },
    /// A CDB whose length is outside what iSCSI can carry.
    #[error("CDB length {0} outside 1..={max}", max = crate::scsi::cdb::MAX_CDB_LEN)]
    InvalidCdbLength(usize),
}
