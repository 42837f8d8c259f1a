//! VPD page B0h: Block Limits (SBC-3 §6.5.3, SBC-4 §6.6.4).

use super::{PAGE_BLOCK_LIMITS, VpdPage};
use crate::scsi::error::ScsiError;
use crate::scsi::field::{u8_at, u16_at, u32_at, u64_at};

/// Block Limits, all lengths in logical blocks.
///
/// SBC-2 era targets send a 12-byte page (up to OPTIMAL TRANSFER LENGTH); the
/// fields they do not send are `None`. A transferred value of zero means "not
/// reported" except where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    /// WSNZ: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is rejected.
    pub wsnz: bool,
    /// MAXIMUM COMPARE AND WRITE LENGTH.
    pub max_compare_and_write_len: u8,
    /// OPTIMAL TRANSFER LENGTH GRANULARITY.
    pub optimal_transfer_granularity: u16,
    /// MAXIMUM TRANSFER LENGTH (0 = no limit reported).
    pub max_transfer_len: u32,
    /// OPTIMAL TRANSFER LENGTH (0 = not reported).
    pub optimal_transfer_len: u32,
    /// MAXIMUM PREFETCH LENGTH.
    pub max_prefetch_len: Option<u32>,
    /// MAXIMUM UNMAP LBA COUNT (0 = UNMAP not supported, FFFF_FFFFh = no limit).
    pub max_unmap_lba_count: Option<u32>,
    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (0 = UNMAP not supported, FFFF_FFFFh = no limit).
    pub max_unmap_descriptor_count: Option<u32>,
    /// OPTIMAL UNMAP GRANULARITY.
    pub optimal_unmap_granularity: Option<u32>,
    /// UNMAP GRANULARITY ALIGNMENT, present only when UGAVALID is set.
    pub unmap_granularity_alignment: Option<u32>,
    /// MAXIMUM WRITE SAME LENGTH (0 = not reported).
    pub max_write_same_len: Option<u64>,
}

impl BlockLimits {
    /// Parses page B0h; at least the 12-byte SBC-2 form is required.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let page = VpdPage::parse(data, PAGE_BLOCK_LIMITS)?;
        // Offsets below are from the start of the page, as in the SBC table.
        let data = &data[..4 + page.payload.len()];
        let required = |value: Option<u32>| {
            value.ok_or(ScsiError::Truncated {
                what: "Block Limits VPD page",
                needed: 16,
                available: data.len(),
            })
        };
        let alignment = u32_at(data, 32);
        Ok(BlockLimits {
            wsnz: u8_at(data, 4).is_some_and(|b| b & 0x01 != 0),
            max_compare_and_write_len: u8_at(data, 5).unwrap_or(0),
            optimal_transfer_granularity: u16_at(data, 6).unwrap_or(0),
            max_transfer_len: required(u32_at(data, 8))?,
            optimal_transfer_len: required(u32_at(data, 12))?,
            max_prefetch_len: u32_at(data, 16),
            max_unmap_lba_count: u32_at(data, 20),
            max_unmap_descriptor_count: u32_at(data, 24),
            optimal_unmap_granularity: u32_at(data, 28),
            unmap_granularity_alignment: alignment
                .filter(|a| a & 0x8000_0000 != 0)
                .map(|a| a & 0x7fff_ffff),
            max_write_same_len: u64_at(data, 36),
        })
    }

    /// True when the target implements UNMAP (both UNMAP limits present and non-zero).
    pub fn supports_unmap(&self) -> bool {
        matches!(
            (self.max_unmap_lba_count, self.max_unmap_descriptor_count),
            (Some(lbas), Some(descriptors)) if lbas != 0 && descriptors != 0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_full_lun() {
        let limits = BlockLimits::parse(tgtd_vectors::VPD_BLOCK_LIMITS_FULL).unwrap();
        assert_eq!(limits.max_compare_and_write_len, 128);
        assert!(!limits.wsnz);
        assert_eq!(limits.max_transfer_len, 0);
        assert_eq!(limits.optimal_transfer_len, 0);
        assert_eq!(limits.max_unmap_lba_count, Some(0));
        assert_eq!(limits.max_unmap_descriptor_count, Some(0));
        assert_eq!(limits.unmap_granularity_alignment, None);
        assert_eq!(limits.max_write_same_len, Some(0));
        assert!(!limits.supports_unmap());
    }

    #[test]
    fn tgtd_thin_lun() {
        let limits = BlockLimits::parse(tgtd_vectors::VPD_BLOCK_LIMITS_THIN).unwrap();
        assert_eq!(limits.max_unmap_lba_count, Some(u32::MAX));
        assert_eq!(limits.max_unmap_descriptor_count, Some(u32::MAX));
        assert!(limits.supports_unmap());
    }

    #[test]
    fn every_field_from_the_sbc_table() {
        let page: [u8; 64] = [
            0x00, 0xb0, 0x00, 0x3c, // header
            0x01, 0x10, 0x00, 0x08, // WSNZ, compare-and-write 16, granularity 8
            0x00, 0x00, 0x10, 0x00, // max transfer 4096
            0x00, 0x00, 0x02, 0x00, // optimal transfer 512
            0x00, 0x00, 0x00, 0x40, // max prefetch 64
            0x00, 0x40, 0x00, 0x00, // max unmap LBAs 4 Mi
            0x00, 0x00, 0x00, 0x80, // max unmap descriptors 128
            0x00, 0x00, 0x00, 0x08, // optimal unmap granularity 8
            0x80, 0x00, 0x00, 0x03, // UGAVALID, alignment 3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, // max write same 65536
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let limits = BlockLimits::parse(&page).unwrap();
        assert_eq!(
            limits,
            BlockLimits {
                wsnz: true,
                max_compare_and_write_len: 16,
                optimal_transfer_granularity: 8,
                max_transfer_len: 4096,
                optimal_transfer_len: 512,
                max_prefetch_len: Some(64),
                max_unmap_lba_count: Some(0x40_0000),
                max_unmap_descriptor_count: Some(128),
                optimal_unmap_granularity: Some(8),
                unmap_granularity_alignment: Some(3),
                max_write_same_len: Some(0x1_0000),
            }
        );
    }

    #[test]
    fn sbc2_short_page() {
        let page = [
            0x00, 0xb0, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0x80,
        ];
        let limits = BlockLimits::parse(&page).unwrap();
        assert_eq!(limits.max_transfer_len, 256);
        assert_eq!(limits.optimal_transfer_len, 128);
        assert_eq!(limits.max_unmap_lba_count, None);
        assert!(!limits.supports_unmap());
    }

    #[test]
    fn page_length_bounds_the_fields() {
        // PAGE LENGTH 12 but more bytes follow: they are not part of the page.
        let mut page = tgtd_vectors::VPD_BLOCK_LIMITS_THIN.to_vec();
        page[3] = 0x0c;
        assert_eq!(BlockLimits::parse(&page).unwrap().max_unmap_lba_count, None);
        assert!(matches!(
            BlockLimits::parse(&tgtd_vectors::VPD_BLOCK_LIMITS_THIN[..12]),
            Err(ScsiError::Truncated { .. })
        ));
    }
}
