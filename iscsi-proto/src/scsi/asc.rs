//! Descriptions of the common additional sense codes (SPC-4 Annex F / T10 asc-num.txt).
//!
//! Only the codes an iSCSI disk initiator is likely to meet are listed; the rest
//! print as hex. The table is sorted by (ASC, ASCQ) for binary search.

use std::fmt;

/// (ASC, ASCQ, description), sorted.
const TABLE: &[(u8, u8, &str)] = &[
    (0x00, 0x00, "no additional sense information"),
    (0x00, 0x06, "I/O process terminated"),
    (0x00, 0x16, "operation in progress"),
    (0x00, 0x17, "cleaning requested"),
    (0x00, 0x1d, "ATA pass through information available"),
    (0x02, 0x00, "no seek complete"),
    (0x03, 0x00, "peripheral device write fault"),
    (0x04, 0x00, "logical unit not ready, cause not reportable"),
    (0x04, 0x01, "logical unit is in process of becoming ready"),
    (
        0x04,
        0x02,
        "logical unit not ready, initializing command required",
    ),
    (
        0x04,
        0x03,
        "logical unit not ready, manual intervention required",
    ),
    (0x04, 0x04, "logical unit not ready, format in progress"),
    (0x04, 0x05, "logical unit not ready, rebuild in progress"),
    (
        0x04,
        0x06,
        "logical unit not ready, recalculation in progress",
    ),
    (0x04, 0x07, "logical unit not ready, operation in progress"),
    (0x04, 0x08, "logical unit not ready, long write in progress"),
    (0x04, 0x09, "logical unit not ready, self-test in progress"),
    (
        0x04,
        0x0a,
        "logical unit not accessible, asymmetric access state transition",
    ),
    (
        0x04,
        0x0b,
        "logical unit not accessible, target port in standby state",
    ),
    (
        0x04,
        0x0c,
        "logical unit not accessible, target port in unavailable state",
    ),
    (
        0x04,
        0x0d,
        "logical unit not ready, structure check required",
    ),
    (
        0x04,
        0x10,
        "logical unit not ready, auxiliary memory not accessible",
    ),
    (
        0x04,
        0x11,
        "logical unit not ready, notify (enable spinup) required",
    ),
    (0x04, 0x12, "logical unit not ready, offline"),
    (
        0x04,
        0x13,
        "logical unit not ready, SA creation in progress",
    ),
    (
        0x04,
        0x14,
        "logical unit not ready, space allocation in progress",
    ),
    (
        0x04,
        0x1a,
        "logical unit not ready, start stop unit command in progress",
    ),
    (0x04, 0x1b, "logical unit not ready, sanitize in progress"),
    (
        0x04,
        0x1c,
        "logical unit not ready, additional power use not yet granted",
    ),
    (
        0x04,
        0x1d,
        "logical unit not ready, configuration in progress",
    ),
    (0x05, 0x00, "logical unit does not respond to selection"),
    (0x08, 0x00, "logical unit communication failure"),
    (0x08, 0x01, "logical unit communication time-out"),
    (0x08, 0x02, "logical unit communication parity error"),
    (0x0c, 0x00, "write error"),
    (0x0c, 0x02, "write error - auto reallocation failed"),
    (0x0c, 0x03, "write error - recommend reassignment"),
    (0x0e, 0x01, "information unit too short"),
    (0x0e, 0x02, "information unit too long"),
    (0x0e, 0x03, "invalid field in command information unit"),
    (0x10, 0x01, "logical block guard check failed"),
    (0x10, 0x02, "logical block application tag check failed"),
    (0x10, 0x03, "logical block reference tag check failed"),
    (0x11, 0x00, "unrecovered read error"),
    (
        0x11,
        0x04,
        "unrecovered read error - auto reallocate failed",
    ),
    (0x13, 0x00, "address mark not found for data field"),
    (0x14, 0x01, "record not found"),
    (0x1a, 0x00, "parameter list length error"),
    (0x1d, 0x00, "miscompare during verify operation"),
    (0x20, 0x00, "invalid command operation code"),
    (0x20, 0x02, "access denied - no access rights"),
    (0x20, 0x09, "access denied - invalid LU identifier"),
    (0x21, 0x00, "logical block address out of range"),
    (0x21, 0x01, "invalid element address"),
    (0x24, 0x00, "invalid field in CDB"),
    (0x25, 0x00, "logical unit not supported"),
    (0x26, 0x00, "invalid field in parameter list"),
    (0x26, 0x01, "parameter not supported"),
    (0x26, 0x02, "parameter value invalid"),
    (0x27, 0x00, "write protected"),
    (0x27, 0x07, "space allocation failed write protect"),
    (
        0x28,
        0x00,
        "not ready to ready change, medium may have changed",
    ),
    (0x29, 0x00, "power on, reset, or bus device reset occurred"),
    (0x29, 0x01, "power on occurred"),
    (0x29, 0x02, "SCSI bus reset occurred"),
    (0x29, 0x03, "bus device reset function occurred"),
    (0x29, 0x04, "device internal reset"),
    (0x29, 0x07, "I_T nexus loss occurred"),
    (0x2a, 0x01, "mode parameters changed"),
    (0x2a, 0x02, "log parameters changed"),
    (0x2a, 0x03, "reservations preempted"),
    (0x2a, 0x04, "reservations released"),
    (0x2a, 0x05, "registrations preempted"),
    (0x2a, 0x06, "asymmetric access state changed"),
    (
        0x2a,
        0x07,
        "implicit asymmetric access state transition failed",
    ),
    (0x2a, 0x09, "capacity data has changed"),
    (0x2c, 0x00, "command sequence error"),
    (0x2f, 0x00, "commands cleared by another initiator"),
    (0x31, 0x00, "medium format corrupted"),
    (0x38, 0x07, "thin provisioning soft threshold reached"),
    (0x3a, 0x00, "medium not present"),
    (0x3e, 0x01, "logical unit failure"),
    (0x3e, 0x02, "timeout on logical unit"),
    (0x3e, 0x03, "logical unit failed self-test"),
    (0x3f, 0x00, "target operating conditions have changed"),
    (0x3f, 0x01, "microcode has been changed"),
    (0x3f, 0x03, "inquiry data has changed"),
    (0x3f, 0x0e, "reported luns data has changed"),
    (0x44, 0x00, "internal target failure"),
    (0x47, 0x00, "SCSI parity error"),
    (0x47, 0x03, "information unit iuCRC error detected"),
    (0x4b, 0x00, "data phase error"),
    (0x4e, 0x00, "overlapped commands attempted"),
    (0x55, 0x03, "insufficient resources"),
    (0x55, 0x04, "insufficient registration resources"),
    (0x5d, 0x00, "failure prediction threshold exceeded"),
];

/// Description of an ASC/ASCQ pair, `None` when it is not in the table.
pub fn asc_ascq_description(asc: u8, ascq: u8) -> Option<&'static str> {
    TABLE
        .binary_search_by(|&(a, q, _)| (a, q).cmp(&(asc, ascq)))
        .ok()
        .map(|i| TABLE[i].2)
}

/// An ASC/ASCQ pair; `Display` gives `04/0a (description)`, or just the hex when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AscAscq {
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

/// The pair `asc`/`ascq`, ready to print.
pub fn asc_ascq(asc: u8, ascq: u8) -> AscAscq {
    AscAscq { asc, ascq }
}

impl AscAscq {
    /// Table description, if known.
    pub fn description(self) -> Option<&'static str> {
        asc_ascq_description(self.asc, self.ascq)
    }
}

impl fmt::Display for AscAscq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}/{:02x}", self.asc, self.ascq)?;
        match self.description() {
            Some(text) => write!(f, " ({text})"),
            // SPC reserves ASC 80h..FFh and ASCQ 80h..FFh for vendors.
            None if self.asc >= 0x80 || self.ascq >= 0x80 => f.write_str(" (vendor specific)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_without_duplicates() {
        for pair in TABLE.windows(2) {
            assert!((pair[0].0, pair[0].1) < (pair[1].0, pair[1].1), "{pair:?}");
        }
        assert!(TABLE.len() >= 60);
    }

    #[test]
    fn every_entry_is_found() {
        for &(asc, ascq, text) in TABLE {
            assert_eq!(asc_ascq_description(asc, ascq), Some(text));
        }
    }

    #[test]
    fn known_and_unknown_rendering() {
        assert_eq!(
            asc_ascq(0x04, 0x0a).to_string(),
            "04/0a (logical unit not accessible, asymmetric access state transition)"
        );
        assert_eq!(
            asc_ascq(0x29, 0x00).description(),
            Some("power on, reset, or bus device reset occurred")
        );
        assert_eq!(asc_ascq(0x5d, 0x42).to_string(), "5d/42");
        assert_eq!(asc_ascq(0x80, 0x01).to_string(), "80/01 (vendor specific)");
        assert_eq!(asc_ascq_description(0x04, 0x0e), None);
    }
}
