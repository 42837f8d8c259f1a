//! SCSI status codes (SAM-5 table 42), as carried in the iSCSI SCSI Response PDU.

use std::fmt;

/// Status of a completed SCSI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScsiStatus {
    /// 00h.
    Good,
    /// 02h: sense data describes the failure.
    CheckCondition,
    /// 04h: PRE-FETCH found the blocks could be cached.
    ConditionMet,
    /// 08h: the logical unit is busy.
    Busy,
    /// 18h: another I_T nexus holds a reservation.
    ReservationConflict,
    /// 28h: the task set is full.
    TaskSetFull,
    /// 30h: an ACA condition exists.
    AcaActive,
    /// 40h: the command was aborted by another I_T nexus or a task management function.
    TaskAborted,
    /// Any other (reserved or obsolete) code.
    Unknown(u8),
}

impl ScsiStatus {
    /// Decodes the STATUS byte.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x00 => ScsiStatus::Good,
            0x02 => ScsiStatus::CheckCondition,
            0x04 => ScsiStatus::ConditionMet,
            0x08 => ScsiStatus::Busy,
            0x18 => ScsiStatus::ReservationConflict,
            0x28 => ScsiStatus::TaskSetFull,
            0x30 => ScsiStatus::AcaActive,
            0x40 => ScsiStatus::TaskAborted,
            other => ScsiStatus::Unknown(other),
        }
    }

    /// The STATUS byte.
    pub fn code(self) -> u8 {
        match self {
            ScsiStatus::Good => 0x00,
            ScsiStatus::CheckCondition => 0x02,
            ScsiStatus::ConditionMet => 0x04,
            ScsiStatus::Busy => 0x08,
            ScsiStatus::ReservationConflict => 0x18,
            ScsiStatus::TaskSetFull => 0x28,
            ScsiStatus::AcaActive => 0x30,
            ScsiStatus::TaskAborted => 0x40,
            ScsiStatus::Unknown(code) => code,
        }
    }

    /// True for GOOD and CONDITION MET: the command did what was asked.
    pub fn is_success(self) -> bool {
        matches!(self, ScsiStatus::Good | ScsiStatus::ConditionMet)
    }
}

impl From<u8> for ScsiStatus {
    fn from(code: u8) -> Self {
        ScsiStatus::from_code(code)
    }
}

impl From<ScsiStatus> for u8 {
    fn from(status: ScsiStatus) -> Self {
        status.code()
    }
}

impl fmt::Display for ScsiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScsiStatus::Good => f.write_str("GOOD"),
            ScsiStatus::CheckCondition => f.write_str("CHECK CONDITION"),
            ScsiStatus::ConditionMet => f.write_str("CONDITION MET"),
            ScsiStatus::Busy => f.write_str("BUSY"),
            ScsiStatus::ReservationConflict => f.write_str("RESERVATION CONFLICT"),
            ScsiStatus::TaskSetFull => f.write_str("TASK SET FULL"),
            ScsiStatus::AcaActive => f.write_str("ACA ACTIVE"),
            ScsiStatus::TaskAborted => f.write_str("TASK ABORTED"),
            ScsiStatus::Unknown(code) => write!(f, "status {code:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_sam() {
        let table = [
            (0x00, ScsiStatus::Good),
            (0x02, ScsiStatus::CheckCondition),
            (0x04, ScsiStatus::ConditionMet),
            (0x08, ScsiStatus::Busy),
            (0x18, ScsiStatus::ReservationConflict),
            (0x28, ScsiStatus::TaskSetFull),
            (0x30, ScsiStatus::AcaActive),
            (0x40, ScsiStatus::TaskAborted),
        ];
        for (code, status) in table {
            assert_eq!(ScsiStatus::from_code(code), status);
            assert_eq!(status.code(), code);
        }
    }

    #[test]
    fn every_byte_round_trips() {
        for code in 0..=u8::MAX {
            assert_eq!(u8::from(ScsiStatus::from(code)), code);
        }
        assert_eq!(ScsiStatus::from_code(0x22), ScsiStatus::Unknown(0x22));
    }

    #[test]
    fn display_and_success() {
        assert_eq!(ScsiStatus::CheckCondition.to_string(), "CHECK CONDITION");
        assert_eq!(ScsiStatus::Unknown(0x22).to_string(), "status 0x22");
        assert!(ScsiStatus::Good.is_success());
        assert!(ScsiStatus::ConditionMet.is_success());
        assert!(!ScsiStatus::Busy.is_success());
    }
}
