//! Standard INQUIRY data (SPC-4 §6.6.2, table 139).

use super::error::ScsiError;
use super::field::{ascii_trimmed, u8_at, u16_at};
use super::peripheral::{DeviceType, PeripheralQualifier, split_peripheral};

/// Bytes up to the end of PRODUCT REVISION LEVEL; everything an initiator relies on.
pub const STANDARD_INQUIRY_MIN_LEN: usize = 36;
/// Allocation length that fetches every standard field including version descriptors.
pub const STANDARD_INQUIRY_ALLOC_LEN: u16 = 96;

const VERSION_DESCRIPTORS_START: usize = 58;
const VERSION_DESCRIPTORS_END: usize = 74;

/// TPGS field: which kinds of asymmetric logical unit access (ALUA) the LU supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tpgs {
    /// 00b: no ALUA.
    NotSupported,
    /// 01b: implicit ALUA only (the target changes states itself).
    Implicit,
    /// 10b: explicit ALUA only (SET TARGET PORT GROUPS).
    Explicit,
    /// 11b: both.
    Both,
}

impl Tpgs {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Tpgs::NotSupported,
            1 => Tpgs::Implicit,
            2 => Tpgs::Explicit,
            _ => Tpgs::Both,
        }
    }

    /// True when the LU reports target port groups, so REPORT TARGET PORT GROUPS works.
    pub fn is_supported(self) -> bool {
        self != Tpgs::NotSupported
    }
}

/// Standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardInquiry {
    /// PERIPHERAL QUALIFIER.
    pub peripheral_qualifier: PeripheralQualifier,
    /// PERIPHERAL DEVICE TYPE.
    pub device_type: DeviceType,
    /// RMB: removable medium.
    pub removable: bool,
    /// VERSION: claimed standard (5 = SPC-3, 6 = SPC-4, 7 = SPC-5).
    pub version: u8,
    /// NORMACA.
    pub norm_aca: bool,
    /// HISUP: LUNs are reported in hierarchical format.
    pub hisup: bool,
    /// RESPONSE DATA FORMAT (2 for every current device).
    pub response_data_format: u8,
    /// ADDITIONAL LENGTH as sent: the full answer is this plus 4 bytes.
    pub additional_length: u8,
    /// SCCS: embedded storage array controller.
    pub sccs: bool,
    /// ACC: access controls coordinator.
    pub acc: bool,
    /// TPGS: ALUA support.
    pub tpgs: Tpgs,
    /// 3PC: third-party copy (EXTENDED COPY) support.
    pub third_party_copy: bool,
    /// PROTECT: protection information support.
    pub protect: bool,
    /// ENCSERV: embedded enclosure services.
    pub enc_serv: bool,
    /// MULTIP: multiple SCSI ports.
    pub multi_port: bool,
    /// CMDQUE: command queuing.
    pub cmd_que: bool,
    /// T10 VENDOR IDENTIFICATION, trimmed.
    pub vendor: String,
    /// PRODUCT IDENTIFICATION, trimmed.
    pub product: String,
    /// PRODUCT REVISION LEVEL, trimmed.
    pub revision: String,
    /// Non-zero VERSION DESCRIPTORs that were transferred.
    pub version_descriptors: Vec<u16>,
}

impl StandardInquiry {
    /// Parses standard INQUIRY data.
    ///
    /// An answer cut short by the allocation length is fine as long as it
    /// reaches the product revision (36 bytes); later fields are read as far
    /// as they arrived.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let additional_length = u8_at(data, 4).ok_or(ScsiError::Truncated {
            what: "standard INQUIRY header",
            needed: 5,
            available: data.len(),
        })?;
        let end = data.len().min(usize::from(additional_length) + 5);
        if end < STANDARD_INQUIRY_MIN_LEN {
            return Err(ScsiError::Truncated {
                what: "standard INQUIRY data",
                needed: STANDARD_INQUIRY_MIN_LEN,
                available: end,
            });
        }
        let data = &data[..end];
        let (peripheral_qualifier, device_type) = split_peripheral(data[0]);
        let version_descriptors = (VERSION_DESCRIPTORS_START..VERSION_DESCRIPTORS_END)
            .step_by(2)
            .filter_map(|offset| u16_at(data, offset))
            .filter(|&descriptor| descriptor != 0)
            .collect();
        Ok(StandardInquiry {
            peripheral_qualifier,
            device_type,
            removable: data[1] & 0x80 != 0,
            version: data[2],
            norm_aca: data[3] & 0x20 != 0,
            hisup: data[3] & 0x10 != 0,
            response_data_format: data[3] & 0x0f,
            additional_length,
            sccs: data[5] & 0x80 != 0,
            acc: data[5] & 0x40 != 0,
            tpgs: Tpgs::from_bits(data[5] >> 4),
            third_party_copy: data[5] & 0x08 != 0,
            protect: data[5] & 0x01 != 0,
            enc_serv: data[6] & 0x40 != 0,
            multi_port: data[6] & 0x10 != 0,
            cmd_que: data[7] & 0x02 != 0,
            vendor: ascii_trimmed(&data[8..16]),
            product: ascii_trimmed(&data[16..32]),
            revision: ascii_trimmed(&data[32..36]),
            version_descriptors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_disk() {
        let inq = StandardInquiry::parse(tgtd_vectors::INQUIRY_STD_DISK).unwrap();
        assert_eq!(inq.peripheral_qualifier, PeripheralQualifier::Connected);
        assert_eq!(inq.device_type, DeviceType::DirectAccess);
        assert!(!inq.removable);
        assert_eq!(inq.version, 5);
        assert!(inq.hisup);
        assert!(!inq.norm_aca);
        assert_eq!(inq.response_data_format, 2);
        assert_eq!(inq.additional_length, 0x3d);
        assert_eq!(inq.tpgs, Tpgs::NotSupported);
        assert!(!inq.tpgs.is_supported());
        assert!(!inq.multi_port && !inq.protect && !inq.third_party_copy);
        assert!(inq.cmd_que);
        assert_eq!(inq.vendor, "IET");
        assert_eq!(inq.product, "VIRTUAL-DISK");
        assert_eq!(inq.revision, "0001");
        // SBC-3, iSCSI, SPC-3.
        assert_eq!(inq.version_descriptors, vec![0x04c0, 0x0960, 0x0300]);
    }

    #[test]
    fn tgtd_disk_cut_by_allocation_length() {
        let full = StandardInquiry::parse(tgtd_vectors::INQUIRY_STD_DISK).unwrap();
        let cut = StandardInquiry::parse(tgtd_vectors::INQUIRY_STD_DISK_ALLOC64).unwrap();
        assert_eq!(cut, full);
        let minimal = StandardInquiry::parse(&tgtd_vectors::INQUIRY_STD_DISK[..36]).unwrap();
        assert_eq!(minimal.product, "VIRTUAL-DISK");
        assert!(minimal.version_descriptors.is_empty());
    }

    #[test]
    fn tgtd_controller_lun() {
        let inq = StandardInquiry::parse(tgtd_vectors::INQUIRY_STD_CONTROLLER).unwrap();
        assert_eq!(inq.device_type, DeviceType::StorageArrayController);
        assert_eq!(inq.product, "Controller");
    }

    #[test]
    fn alua_and_flag_bits() {
        // Hand-built from table 139: RMB, NORMACA, SCCS|ACC|TPGS=11b|3PC|PROTECT,
        // ENCSERV|MULTIP, additional length 31.
        let mut data = vec![0x00, 0x80, 0x06, 0x22, 31, 0xf9, 0x50, 0x00];
        data.extend_from_slice(b"VENDOR  PRODUCT NAME    1.0 ");
        let inq = StandardInquiry::parse(&data).unwrap();
        assert!(inq.removable && inq.norm_aca && !inq.hisup);
        assert!(inq.sccs && inq.acc && inq.third_party_copy && inq.protect);
        assert_eq!(inq.tpgs, Tpgs::Both);
        assert!(inq.enc_serv && inq.multi_port && !inq.cmd_que);
        assert_eq!(
            (
                inq.vendor.as_str(),
                inq.product.as_str(),
                inq.revision.as_str()
            ),
            ("VENDOR", "PRODUCT NAME", "1.0")
        );
        for (bits, tpgs) in [(0x10, Tpgs::Implicit), (0x20, Tpgs::Explicit)] {
            data[5] = bits;
            assert_eq!(StandardInquiry::parse(&data).unwrap().tpgs, tpgs);
        }
    }

    #[test]
    fn additional_length_limits_the_data() {
        // ADDITIONAL LENGTH 20 means the answer ends at byte 25, before the revision.
        let mut data = tgtd_vectors::INQUIRY_STD_DISK.to_vec();
        data[4] = 20;
        assert_eq!(
            StandardInquiry::parse(&data),
            Err(ScsiError::Truncated {
                what: "standard INQUIRY data",
                needed: 36,
                available: 25
            })
        );
        assert!(StandardInquiry::parse(&tgtd_vectors::INQUIRY_STD_DISK[..35]).is_err());
        assert!(StandardInquiry::parse(&[0, 0, 5, 2]).is_err());
        assert!(StandardInquiry::parse(&[]).is_err());
    }
}
