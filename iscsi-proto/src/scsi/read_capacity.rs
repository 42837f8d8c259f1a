//! READ CAPACITY(10) and READ CAPACITY(16) parameter data (SBC-3 §5.15, §5.16).

use super::error::ScsiError;
use super::field::{u16_at, u32_at, u64_at};

/// Length of READ CAPACITY(10) data.
pub const READ_CAPACITY_10_LEN: usize = 8;
/// Bytes of READ CAPACITY(16) data that carry defined fields.
pub const READ_CAPACITY_16_MIN_LEN: usize = 16;
/// Customary allocation length for READ CAPACITY(16) (the full 32-byte answer).
pub const READ_CAPACITY_16_ALLOC_LEN: u32 = 32;

/// READ CAPACITY(10) data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity10 {
    /// RETURNED LOGICAL BLOCK ADDRESS: the last LBA, or FFFF_FFFFh when too large.
    pub last_lba: u32,
    /// LOGICAL BLOCK LENGTH IN BYTES.
    pub block_length: u32,
}

impl ReadCapacity10 {
    /// Parses the 8-byte answer.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        match (u32_at(data, 0), u32_at(data, 4)) {
            (Some(last_lba), Some(block_length)) => Ok(ReadCapacity10 {
                last_lba,
                block_length,
            }),
            _ => Err(ScsiError::Truncated {
                what: "READ CAPACITY(10) data",
                needed: READ_CAPACITY_10_LEN,
                available: data.len(),
            }),
        }
    }

    /// True when the capacity does not fit and READ CAPACITY(16) must be used.
    pub fn needs_read_capacity16(&self) -> bool {
        self.last_lba == u32::MAX
    }

    /// Number of logical blocks, `None` when READ CAPACITY(16) is needed.
    pub fn block_count(&self) -> Option<u64> {
        (!self.needs_read_capacity16()).then(|| u64::from(self.last_lba) + 1)
    }
}

/// READ CAPACITY(16) data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity16 {
    /// RETURNED LOGICAL BLOCK ADDRESS: the last LBA.
    pub last_lba: u64,
    /// LOGICAL BLOCK LENGTH IN BYTES.
    pub block_length: u32,
    /// P_TYPE: protection type minus one, meaningful when `protection_enabled`.
    pub protection_type: u8,
    /// PROT_EN.
    pub protection_enabled: bool,
    /// P_I_EXPONENT.
    pub protection_interval_exponent: u8,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
    pub logical_per_physical_exponent: u8,
    /// LBPME: logical block provisioning (thin provisioning) enabled.
    pub lbpme: bool,
    /// LBPRZ: unmapped blocks read as zeroes.
    pub lbprz: bool,
    /// LOWEST ALIGNED LOGICAL BLOCK ADDRESS.
    pub lowest_aligned_lba: u16,
}

impl ReadCapacity16 {
    /// Parses the answer; the first 16 bytes (all defined fields) are required.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let fields = data
            .get(..READ_CAPACITY_16_MIN_LEN)
            .ok_or(ScsiError::Truncated {
                what: "READ CAPACITY(16) data",
                needed: READ_CAPACITY_16_MIN_LEN,
                available: data.len(),
            })?;
        let last_lba = u64_at(fields, 0).unwrap_or_default();
        if last_lba == u64::MAX {
            // last + 1 would overflow: no real device has 2^64 blocks.
            return Err(ScsiError::InvalidField {
                what: "READ CAPACITY(16) last LBA",
                value: last_lba,
            });
        }
        Ok(ReadCapacity16 {
            last_lba,
            block_length: u32_at(fields, 8).unwrap_or_default(),
            protection_type: (fields[12] >> 1) & 0x07,
            protection_enabled: fields[12] & 0x01 != 0,
            protection_interval_exponent: fields[13] >> 4,
            logical_per_physical_exponent: fields[13] & 0x0f,
            lbpme: fields[14] & 0x80 != 0,
            lbprz: fields[14] & 0x40 != 0,
            lowest_aligned_lba: u16_at(fields, 14).unwrap_or_default() & 0x3fff,
        })
    }

    /// Number of logical blocks.
    pub fn block_count(&self) -> u64 {
        self.last_lba + 1
    }

    /// Capacity in bytes, `None` if it overflows u64.
    pub fn size_bytes(&self) -> Option<u64> {
        self.block_count().checked_mul(u64::from(self.block_length))
    }

    /// Physical block size: logical block length times 2^exponent.
    pub fn physical_block_size(&self) -> u64 {
        // The exponent is 4 bits, so the shift never exceeds 15.
        u64::from(self.block_length) << self.logical_per_physical_exponent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_read_capacity10() {
        let cap = ReadCapacity10::parse(tgtd_vectors::READ_CAPACITY10_512).unwrap();
        assert_eq!(
            cap,
            ReadCapacity10 {
                last_lba: 0x1ffff,
                block_length: 512
            }
        );
        assert_eq!(cap.block_count(), Some(131_072));
        let cap = ReadCapacity10::parse(tgtd_vectors::READ_CAPACITY10_4K).unwrap();
        assert_eq!(cap.block_count(), Some(8192));
        assert_eq!(cap.block_length, 4096);
    }

    #[test]
    fn read_capacity10_overflow_marker() {
        let cap = ReadCapacity10::parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 2, 0]).unwrap();
        assert!(cap.needs_read_capacity16());
        assert_eq!(cap.block_count(), None);
        assert!(ReadCapacity10::parse(&[0; 7]).is_err());
    }

    #[test]
    fn tgtd_read_capacity16_thin() {
        let cap = ReadCapacity16::parse(tgtd_vectors::READ_CAPACITY16_THIN_4K).unwrap();
        assert_eq!(cap.last_lba, 8191);
        assert_eq!(cap.block_count(), 8192);
        assert_eq!(cap.block_length, 4096);
        assert_eq!(cap.size_bytes(), Some(32 << 20));
        assert!(cap.lbpme && cap.lbprz);
        assert!(!cap.protection_enabled);
        assert_eq!(cap.logical_per_physical_exponent, 0);
        assert_eq!(cap.physical_block_size(), 4096);
        assert_eq!(cap.lowest_aligned_lba, 0);
    }

    #[test]
    fn read_capacity16_every_field() {
        // SBC-3 table 64: 2^40 blocks of 512 bytes, P_TYPE 1 + PROT_EN,
        // P_I_EXPONENT 2, 8 logical per physical, LBPME, lowest aligned LBA 0x1234.
        let data = [
            0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00, 0x03, 0x23,
            0x92, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let cap = ReadCapacity16::parse(&data).unwrap();
        assert_eq!(cap.block_count(), 1 << 40);
        assert_eq!(cap.protection_type, 1);
        assert!(cap.protection_enabled);
        assert_eq!(cap.protection_interval_exponent, 2);
        assert_eq!(cap.logical_per_physical_exponent, 3);
        assert_eq!(cap.physical_block_size(), 4096);
        assert!(cap.lbpme && !cap.lbprz);
        assert_eq!(cap.lowest_aligned_lba, 0x1234);
        // 16 bytes are enough.
        assert_eq!(ReadCapacity16::parse(&data[..16]).unwrap(), cap);
    }

    #[test]
    fn read_capacity16_rejects_short_and_impossible() {
        assert!(matches!(
            ReadCapacity16::parse(&tgtd_vectors::READ_CAPACITY16_THIN_4K[..15]),
            Err(ScsiError::Truncated { needed: 16, .. })
        ));
        let mut data = [0xffu8; 16];
        data[8..].fill(0);
        assert!(matches!(
            ReadCapacity16::parse(&data),
            Err(ScsiError::InvalidField { .. })
        ));
        let mut huge = [0u8; 16];
        huge[..8].copy_from_slice(&(u64::MAX - 1).to_be_bytes());
        huge[8..12].copy_from_slice(&4096u32.to_be_bytes());
        assert_eq!(ReadCapacity16::parse(&huge).unwrap().size_bytes(), None);
    }
}
