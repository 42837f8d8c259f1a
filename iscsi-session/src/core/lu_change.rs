//! Changes of a logical unit that its users must act on, read from the
//! additional sense code of a UNIT ATTENTION (SPC-5 §4.6, Annex D).

use iscsi_proto::scsi::{Sense, SenseKey};

/// A UNIT ATTENTION condition, by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LuChange {
    /// 2Ah/09h CAPACITY DATA HAS CHANGED: read the capacity again.
    CapacityChanged,
    /// 2Ah/06h ASYMMETRIC ACCESS STATE CHANGED: the ALUA state of a port
    /// group moved (e.g. active/optimized to standby).
    AluaStateChanged,
    /// 2Ah/07h IMPLICIT ASYMMETRIC ACCESS STATE TRANSITION FAILED.
    AluaTransitionFailed,
    /// 3Fh/0Eh REPORTED LUNS DATA HAS CHANGED.
    ReportedLunsChanged,
    /// 3Fh/03h INQUIRY DATA HAS CHANGED (identity may differ now).
    InquiryDataChanged,
    /// 29h/xx POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
    Reset,
    /// Any other UNIT ATTENTION.
    Other {
        /// Additional sense code.
        asc: u8,
        /// Additional sense code qualifier.
        ascq: u8,
    },
}

impl LuChange {
    /// The change a sense block announces, when it is a current UNIT ATTENTION.
    pub fn from_sense(sense: &Sense) -> Option<LuChange> {
        if sense.key != SenseKey::UnitAttention {
            return None;
        }
        Some(match (sense.asc, sense.ascq) {
            (0x2a, 0x09) => LuChange::CapacityChanged,
            (0x2a, 0x06) => LuChange::AluaStateChanged,
            (0x2a, 0x07) => LuChange::AluaTransitionFailed,
            (0x3f, 0x0e) => LuChange::ReportedLunsChanged,
            (0x3f, 0x03) => LuChange::InquiryDataChanged,
            (0x29, _) => LuChange::Reset,
            (asc, ascq) => LuChange::Other { asc, ascq },
        })
    }

    /// Parses raw sense bytes first.
    pub fn from_sense_bytes(bytes: &[u8]) -> Option<LuChange> {
        Sense::parse(bytes)
            .ok()
            .as_ref()
            .and_then(LuChange::from_sense)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
        [
            0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
        ]
    }

    #[test]
    fn unit_attentions_by_meaning() {
        assert_eq!(
            LuChange::from_sense_bytes(&fixed(0x6, 0x2a, 0x09)),
            Some(LuChange::CapacityChanged)
        );
        assert_eq!(
            LuChange::from_sense_bytes(&fixed(0x6, 0x2a, 0x06)),
            Some(LuChange::AluaStateChanged)
        );
        assert_eq!(
            LuChange::from_sense_bytes(&fixed(0x6, 0x29, 0x02)),
            Some(LuChange::Reset)
        );
        assert_eq!(
            LuChange::from_sense_bytes(&fixed(0x6, 0x55, 0x01)),
            Some(LuChange::Other {
                asc: 0x55,
                ascq: 0x01
            })
        );
        // NOT READY 04h/0Ah (ALUA transition in progress) is a command
        // failure, not a change notice.
        assert_eq!(LuChange::from_sense_bytes(&fixed(0x2, 0x04, 0x0a)), None);
        assert_eq!(LuChange::from_sense_bytes(&[0x70]), None);
    }
}
