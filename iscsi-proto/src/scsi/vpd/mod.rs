//! Vital product data pages (INQUIRY with EVPD=1): the common 4-byte header and
//! one parser per page.

mod block_limits;
mod device_id;
mod provisioning;
mod serial;
mod supported;

pub use block_limits::BlockLimits;
pub use device_id::{
    Association, CodeSet, DesignationDescriptor, Designator, DesignatorType, DeviceIdentification,
};
pub use provisioning::{LogicalBlockProvisioning, ProvisioningType};
pub use serial::UnitSerialNumber;
pub use supported::SupportedVpdPages;

use super::error::ScsiError;
use super::field::u16_at;
use super::peripheral::{DeviceType, PeripheralQualifier, split_peripheral};

/// Page code of Supported VPD Pages.
pub const PAGE_SUPPORTED: u8 = 0x00;
/// Page code of Unit Serial Number.
pub const PAGE_UNIT_SERIAL: u8 = 0x80;
/// Page code of Device Identification.
pub const PAGE_DEVICE_ID: u8 = 0x83;
/// Page code of Block Limits (SBC).
pub const PAGE_BLOCK_LIMITS: u8 = 0xb0;
/// Page code of Block Device Characteristics (SBC).
pub const PAGE_BLOCK_CHARACTERISTICS: u8 = 0xb1;
/// Page code of Logical Block Provisioning (SBC).
pub const PAGE_LOGICAL_BLOCK_PROVISIONING: u8 = 0xb2;

const VPD_HEADER_LEN: usize = 4;

/// A VPD page split into header fields and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpdPage<'a> {
    /// PERIPHERAL QUALIFIER.
    pub peripheral_qualifier: PeripheralQualifier,
    /// PERIPHERAL DEVICE TYPE.
    pub device_type: DeviceType,
    /// PAGE CODE.
    pub page_code: u8,
    /// PAGE LENGTH as sent.
    pub page_length: u16,
    /// The bytes after the header that arrived, at most PAGE LENGTH of them.
    pub payload: &'a [u8],
    /// True when fewer than PAGE LENGTH bytes arrived (short allocation length).
    pub truncated: bool,
}

impl<'a> VpdPage<'a> {
    /// Splits `data`, checking that it is page `expected_page`.
    pub fn parse(data: &'a [u8], expected_page: u8) -> Result<Self, ScsiError> {
        let page_length = u16_at(data, 2).ok_or(ScsiError::Truncated {
            what: "VPD page header",
            needed: VPD_HEADER_LEN,
            available: data.len(),
        })?;
        if data[1] != expected_page {
            return Err(ScsiError::UnexpectedPage {
                expected: expected_page,
                actual: data[1],
            });
        }
        let (peripheral_qualifier, device_type) = split_peripheral(data[0]);
        let declared_end = VPD_HEADER_LEN + usize::from(page_length);
        let end = declared_end.min(data.len());
        Ok(VpdPage {
            peripheral_qualifier,
            device_type,
            page_code: data[1],
            page_length,
            payload: &data[VPD_HEADER_LEN..end],
            truncated: declared_end > data.len(),
        })
    }

    /// Allocation length that would have fetched the whole page.
    pub fn full_length(&self) -> usize {
        VPD_HEADER_LEN + usize::from(self.page_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let page = VpdPage::parse(&[0x0c, 0x80, 0x00, 0x03, b'a', b'b', b'c', 0xff], 0x80).unwrap();
        assert_eq!(page.device_type, DeviceType::StorageArrayController);
        assert_eq!(page.page_length, 3);
        assert_eq!(page.payload, b"abc");
        assert!(!page.truncated);
        assert_eq!(page.full_length(), 7);
    }

    #[test]
    fn short_answer_is_marked_truncated() {
        let page = VpdPage::parse(&[0, 0x83, 0x01, 0x00, 1, 2], 0x83).unwrap();
        assert_eq!(page.payload, &[1, 2]);
        assert!(page.truncated);
        assert_eq!(page.full_length(), 260);
    }

    #[test]
    fn wrong_page_and_short_header() {
        assert_eq!(
            VpdPage::parse(&[0, 0x80, 0, 0], 0x83),
            Err(ScsiError::UnexpectedPage {
                expected: 0x83,
                actual: 0x80
            })
        );
        assert!(matches!(
            VpdPage::parse(&[0, 0x80, 0], 0x80),
            Err(ScsiError::Truncated { .. })
        ));
    }
}
