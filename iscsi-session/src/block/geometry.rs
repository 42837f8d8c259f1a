//! What a LUN looks like: size, block sizes, provisioning and limits.

use iscsi_proto::scsi::ReadCapacity16;
use iscsi_proto::scsi::vpd::{BlockLimits, LogicalBlockProvisioning};

/// Size, block sizes, provisioning and transfer limits of a LUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Logical block length in bytes.
    pub block_size: u32,
    /// Number of logical blocks.
    pub blocks: u64,
    /// Physical block length in bytes.
    pub physical_block_size: u64,
    /// Thin provisioning enabled (LBPME).
    pub thin_provisioned: bool,
    /// Unmapped blocks read back as zeroes (LBPRZ).
    pub unmapped_reads_zero: bool,
    /// UNMAP is supported (VPD B2 LBPU, B0 limits).
    pub unmap: bool,
    /// WRITE SAME(16) with UNMAP is supported (VPD B2 LBPWS).
    pub write_same_unmap: bool,
    /// Largest transfer in blocks the target takes (0 = no limit reported).
    pub max_transfer_blocks: u32,
    /// Transfer length the target prefers, in blocks (0 = not reported).
    pub optimal_transfer_blocks: u32,
    /// Most blocks one UNMAP may name (0 = unknown).
    pub max_unmap_blocks: u32,
    /// Most descriptors one UNMAP may carry (0 = unknown).
    pub max_unmap_descriptors: u32,
}

impl Geometry {
    /// Capacity in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
    }

    /// From READ CAPACITY alone; the VPD pages fill in the rest.
    pub(crate) fn from_capacity(cap: &ReadCapacity16) -> Self {
        Geometry {
            block_size: cap.block_length,
            blocks: cap.block_count(),
            physical_block_size: cap.physical_block_size(),
            thin_provisioned: cap.lbpme,
            unmapped_reads_zero: cap.lbprz,
            unmap: false,
            write_same_unmap: false,
            max_transfer_blocks: 0,
            optimal_transfer_blocks: 0,
            max_unmap_blocks: 0,
            max_unmap_descriptors: 0,
        }
    }

    pub(crate) fn apply_block_limits(&mut self, limits: &BlockLimits) {
        self.max_transfer_blocks = limits.max_transfer_len;
        self.optimal_transfer_blocks = limits.optimal_transfer_len;
        self.max_unmap_blocks = limits.max_unmap_lba_count.unwrap_or(0);
        self.max_unmap_descriptors = limits.max_unmap_descriptor_count.unwrap_or(0);
    }

    pub(crate) fn apply_provisioning(&mut self, lbp: &LogicalBlockProvisioning) {
        self.unmap = lbp.lbpu && self.max_unmap_blocks > 0 && self.max_unmap_descriptors > 0;
        self.write_same_unmap = lbp.lbpws;
    }
}
