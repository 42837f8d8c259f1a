//! VPD page 80h: Unit Serial Number (SPC-4 §7.8.18).

use super::{PAGE_UNIT_SERIAL, VpdPage};
use crate::scsi::error::ScsiError;
use crate::scsi::field::ascii_trimmed;

/// PRODUCT SERIAL NUMBER with the space padding removed (tgtd pads on the left).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitSerialNumber {
    /// The serial number; empty when the target reports only spaces (not available).
    pub serial: String,
    /// True when cut short by the allocation length.
    pub truncated: bool,
}

impl UnitSerialNumber {
    /// Parses page 80h.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let page = VpdPage::parse(data, PAGE_UNIT_SERIAL)?;
        Ok(UnitSerialNumber {
            serial: ascii_trimmed(page.payload),
            truncated: page.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_serial() {
        let serial = UnitSerialNumber::parse(tgtd_vectors::VPD_UNIT_SERIAL).unwrap();
        assert_eq!(serial.serial, "beaf11");
        assert!(!serial.truncated);
    }

    #[test]
    fn blank_and_cut_serials() {
        assert_eq!(
            UnitSerialNumber::parse(&[0, 0x80, 0, 4, b' ', b' ', b' ', b' '])
                .unwrap()
                .serial,
            ""
        );
        let cut = UnitSerialNumber::parse(&[0, 0x80, 0, 8, b'A', b'B']).unwrap();
        assert_eq!(cut.serial, "AB");
        assert!(cut.truncated);
    }
}
