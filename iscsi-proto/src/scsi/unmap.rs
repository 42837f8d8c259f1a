//! The UNMAP parameter list (SBC-3 §5.28.2): header plus block descriptors.

use bytes::{BufMut, Bytes, BytesMut};

use super::cdb::Cdb;
use super::error::ScsiError;

/// Header length of the UNMAP parameter list.
pub const UNMAP_HEADER_LEN: usize = 8;
/// Length of one UNMAP block descriptor.
pub const UNMAP_DESCRIPTOR_LEN: usize = 16;
/// Most descriptors one list can hold: the CDB's PARAMETER LIST LENGTH is 16 bits.
pub const MAX_UNMAP_DESCRIPTORS_PER_LIST: usize =
    (u16::MAX as usize - UNMAP_HEADER_LEN) / UNMAP_DESCRIPTOR_LEN;

/// One range to deallocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmapDescriptor {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks (0 is allowed and unmaps nothing).
    pub blocks: u32,
}

/// An encoded UNMAP parameter list and the CDB that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmapParameterList {
    bytes: Bytes,
}

impl UnmapParameterList {
    /// Encodes `descriptors`.
    ///
    /// `max_descriptors` is the target's MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
    /// from the Block Limits VPD page (FFFF_FFFFh = no limit, 0 = UNMAP not
    /// supported); the list must also fit the 16-bit length fields.
    pub fn new(descriptors: &[UnmapDescriptor], max_descriptors: u32) -> Result<Self, ScsiError> {
        let max = usize::try_from(max_descriptors)
            .unwrap_or(usize::MAX)
            .min(MAX_UNMAP_DESCRIPTORS_PER_LIST);
        if descriptors.len() > max {
            return Err(ScsiError::TooManyUnmapDescriptors {
                count: descriptors.len(),
                max,
            });
        }
        let descriptor_bytes = descriptors.len() * UNMAP_DESCRIPTOR_LEN;
        let total = UNMAP_HEADER_LEN + descriptor_bytes;
        let mut b = BytesMut::with_capacity(total);
        // UNMAP DATA LENGTH counts the bytes after itself, i.e. total - 2.
        b.put_u16((total - 2) as u16);
        b.put_u16(descriptor_bytes as u16);
        b.put_u32(0);
        for d in descriptors {
            b.put_u64(d.lba);
            b.put_u32(d.blocks);
            b.put_u32(0);
        }
        Ok(UnmapParameterList { bytes: b.freeze() })
    }

    /// The Data-Out buffer.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The UNMAP CDB announcing this list's length.
    pub fn cdb(&self) -> Cdb {
        // new() bounds the length to u16.
        Cdb::unmap(self.bytes.len() as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_descriptors_match_the_sbc_layout() {
        let list = UnmapParameterList::new(
            &[
                UnmapDescriptor {
                    lba: 0x0102_0304_0506_0708,
                    blocks: 0x1122_3344,
                },
                UnmapDescriptor {
                    lba: 0x10,
                    blocks: 8,
                },
            ],
            u32::MAX,
        )
        .unwrap();
        let expected: &[u8] = &[
            0x00, 0x26, // UNMAP DATA LENGTH = 40 - 2
            0x00, 0x20, // BLOCK DESCRIPTOR DATA LENGTH = 2 * 16
            0, 0, 0, 0, // reserved
            1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, //
            0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0,
        ];
        assert_eq!(list.bytes().as_ref(), expected);
        assert_eq!(list.cdb().as_bytes(), &[0x42, 0, 0, 0, 0, 0, 0, 0, 0x28, 0]);
    }

    #[test]
    fn empty_list_is_a_bare_header() {
        let list = UnmapParameterList::new(&[], 1).unwrap();
        assert_eq!(list.bytes().as_ref(), &[0, 6, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn target_limit_is_enforced() {
        let d = UnmapDescriptor { lba: 0, blocks: 1 };
        assert_eq!(
            UnmapParameterList::new(&[d, d], 1),
            Err(ScsiError::TooManyUnmapDescriptors { count: 2, max: 1 })
        );
        assert!(matches!(
            UnmapParameterList::new(&[d], 0),
            Err(ScsiError::TooManyUnmapDescriptors { max: 0, .. })
        ));
    }

    #[test]
    fn sixteen_bit_length_limits_the_list() {
        let d = UnmapDescriptor { lba: 0, blocks: 1 };
        let most = vec![d; MAX_UNMAP_DESCRIPTORS_PER_LIST];
        let list = UnmapParameterList::new(&most, u32::MAX).unwrap();
        assert_eq!(list.bytes().len(), 8 + 16 * 4095);
        assert_eq!(list.cdb().as_bytes()[7..9], [0xff, 0xf8]);
        let too_many = vec![d; MAX_UNMAP_DESCRIPTORS_PER_LIST + 1];
        assert!(UnmapParameterList::new(&too_many, u32::MAX).is_err());
    }
}
