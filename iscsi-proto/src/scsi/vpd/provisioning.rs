//! VPD page B2h: Logical Block Provisioning (SBC-3 §6.5.5, SBC-4 §6.6.6).

use super::{PAGE_LOGICAL_BLOCK_PROVISIONING, VpdPage};
use crate::scsi::error::ScsiError;

/// PROVISIONING TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProvisioningType {
    /// 000b: fully provisioned (or not reported, in SBC-3).
    Full,
    /// 001b: resource provisioned.
    Resource,
    /// 010b: thin provisioned.
    Thin,
    /// Reserved values.
    Reserved(u8),
}

impl ProvisioningType {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => ProvisioningType::Full,
            1 => ProvisioningType::Resource,
            2 => ProvisioningType::Thin,
            other => ProvisioningType::Reserved(other),
        }
    }
}

/// Logical Block Provisioning page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogicalBlockProvisioning {
    /// THRESHOLD EXPONENT.
    pub threshold_exponent: u8,
    /// LBPU: UNMAP deallocates.
    pub lbpu: bool,
    /// LBPWS: WRITE SAME(16) with UNMAP deallocates.
    pub lbpws: bool,
    /// LBPWS10: WRITE SAME(10) with UNMAP deallocates.
    pub lbpws10: bool,
    /// LBPRZ field (3 bits in SBC-4; non-zero means unmapped blocks read back as zeroes,
    /// 001b specifically zeroes, 010b the provisioning initialization pattern).
    pub lbprz: u8,
    /// ANC_SUP: ANCHOR bit supported.
    pub anc_sup: bool,
    /// DP: a provisioning group descriptor follows.
    pub dp: bool,
    /// PROVISIONING TYPE.
    pub provisioning_type: ProvisioningType,
}

impl LogicalBlockProvisioning {
    /// Parses page B2h; bytes 4..=6 are required.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let page = VpdPage::parse(data, PAGE_LOGICAL_BLOCK_PROVISIONING)?;
        let fields = page.payload.get(..3).ok_or(ScsiError::Truncated {
            what: "Logical Block Provisioning VPD page",
            needed: 7,
            available: 4 + page.payload.len(),
        })?;
        Ok(LogicalBlockProvisioning {
            threshold_exponent: fields[0],
            lbpu: fields[1] & 0x80 != 0,
            lbpws: fields[1] & 0x40 != 0,
            lbpws10: fields[1] & 0x20 != 0,
            lbprz: (fields[1] >> 2) & 0x07,
            anc_sup: fields[1] & 0x02 != 0,
            dp: fields[1] & 0x01 != 0,
            provisioning_type: ProvisioningType::from_bits(fields[2]),
        })
    }

    /// True when unmapped blocks read back as zeroes (LBPRZ non-zero).
    pub fn unmapped_reads_zero(&self) -> bool {
        self.lbprz != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_thin_lun() {
        let lbp = LogicalBlockProvisioning::parse(tgtd_vectors::VPD_LBP_THIN).unwrap();
        assert!(lbp.lbpu && lbp.lbpws && lbp.lbpws10);
        assert_eq!(lbp.lbprz, 1);
        assert!(lbp.unmapped_reads_zero());
        assert!(!lbp.anc_sup && !lbp.dp);
        assert_eq!(lbp.provisioning_type, ProvisioningType::Thin);
        assert_eq!(lbp.threshold_exponent, 0);
    }

    #[test]
    fn tgtd_full_lun() {
        let lbp = LogicalBlockProvisioning::parse(tgtd_vectors::VPD_LBP_FULL).unwrap();
        assert!(!lbp.lbpu && !lbp.lbpws && !lbp.lbpws10 && !lbp.unmapped_reads_zero());
        assert_eq!(lbp.provisioning_type, ProvisioningType::Full);
    }

    #[test]
    fn sbc4_bits() {
        // Threshold exponent 9, LBPRZ 010b, ANC_SUP, DP, resource provisioned.
        let lbp = LogicalBlockProvisioning::parse(&[0, 0xb2, 0, 4, 9, 0x0b, 0x01, 0]).unwrap();
        assert_eq!(lbp.threshold_exponent, 9);
        assert_eq!(lbp.lbprz, 2);
        assert!(lbp.anc_sup && lbp.dp && !lbp.lbpu);
        assert_eq!(lbp.provisioning_type, ProvisioningType::Resource);
        let reserved = LogicalBlockProvisioning::parse(&[0, 0xb2, 0, 4, 0, 0, 0x07, 0]).unwrap();
        assert_eq!(reserved.provisioning_type, ProvisioningType::Reserved(7));
    }

    #[test]
    fn too_short() {
        assert!(matches!(
            LogicalBlockProvisioning::parse(&[0, 0xb2, 0, 4, 0, 0xe4]),
            Err(ScsiError::Truncated { needed: 7, .. })
        ));
        assert!(LogicalBlockProvisioning::parse(&[0, 0xb2, 0, 2, 0, 0xe4, 2, 0]).is_err());
    }
}
