//! MODE SENSE(6)/(10) parameter data (SPC-4 §7.5): header, block descriptors, pages.

use super::error::ScsiError;
use super::field::{u8_at, u16_at, u24_at, u32_at, u64_at};

const HEADER_6_LEN: usize = 4;
const HEADER_10_LEN: usize = 8;
const SHORT_DESCRIPTOR_LEN: usize = 8;
const LONG_DESCRIPTOR_LEN: usize = 16;

/// Which MODE SENSE produced the data (the headers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeSenseForm {
    /// MODE SENSE(6).
    Six,
    /// MODE SENSE(10).
    Ten,
}

/// A direct-access block descriptor (SBC-3 §6.4.2), short or long LBA form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockDescriptor {
    /// NUMBER OF LOGICAL BLOCKS (short form: FFFF_FFFFh means "more than fits").
    pub block_count: u64,
    /// LOGICAL BLOCK LENGTH.
    pub block_length: u32,
}

/// One mode page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModePage {
    /// PAGE CODE.
    pub page: u8,
    /// SUBPAGE CODE (0 for page_0 format).
    pub subpage: u8,
    /// PS: the page can be saved.
    pub saveable: bool,
    /// Page parameters, after the 2-byte (page_0) or 4-byte (sub_page) page header.
    pub data: Vec<u8>,
}

/// Parsed mode parameter data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeParameters {
    /// MEDIUM TYPE.
    pub medium_type: u8,
    /// DEVICE-SPECIFIC PARAMETER byte.
    pub device_specific: u8,
    /// Block descriptors that arrived complete.
    pub block_descriptors: Vec<BlockDescriptor>,
    /// Mode pages that arrived complete.
    pub pages: Vec<ModePage>,
    /// True when the data ended before MODE DATA LENGTH said (a partial page
    /// or descriptor was dropped).
    pub truncated: bool,
}

impl ModeParameters {
    /// Parses MODE SENSE data of the given form.
    pub fn parse(data: &[u8], form: ModeSenseForm) -> Result<Self, ScsiError> {
        let (header_len, mode_data_len, descriptor_len, long_lba) = match form {
            ModeSenseForm::Six => match (u8_at(data, 0), u8_at(data, 3)) {
                (Some(len), Some(bd)) => {
                    (HEADER_6_LEN, usize::from(len) + 1, usize::from(bd), false)
                }
                _ => return Err(truncated_header(HEADER_6_LEN, data.len())),
            },
            ModeSenseForm::Ten => match (u16_at(data, 0), u16_at(data, 6)) {
                (Some(len), Some(bd)) => (
                    HEADER_10_LEN,
                    usize::from(len) + 2,
                    usize::from(bd),
                    data[4] & 0x01 != 0,
                ),
                _ => return Err(truncated_header(HEADER_10_LEN, data.len())),
            },
        };
        let (medium_type, device_specific) = match form {
            ModeSenseForm::Six => (data[1], data[2]),
            ModeSenseForm::Ten => (data[2], data[3]),
        };
        let mut truncated = mode_data_len > data.len();
        let data = &data[..mode_data_len.min(data.len())];
        // A MODE DATA LENGTH shorter than the header leaves nothing after it.
        let body = data.get(header_len..).unwrap_or_default();

        let descriptors_end = descriptor_len.min(body.len());
        truncated |= descriptor_len > body.len();
        let one_len = if long_lba {
            LONG_DESCRIPTOR_LEN
        } else {
            SHORT_DESCRIPTOR_LEN
        };
        let block_descriptors = body[..descriptors_end]
            .chunks_exact(one_len)
            .map(|d| {
                if long_lba {
                    BlockDescriptor {
                        block_count: u64_at(d, 0).unwrap_or_default(),
                        block_length: u32_at(d, 12).unwrap_or_default(),
                    }
                } else {
                    BlockDescriptor {
                        block_count: u32_at(d, 0).unwrap_or_default().into(),
                        block_length: u24_at(d, 5).unwrap_or_default(),
                    }
                }
            })
            .collect();

        let (pages, pages_truncated) = parse_pages(&body[descriptors_end..]);
        Ok(ModeParameters {
            medium_type,
            device_specific,
            block_descriptors,
            pages,
            truncated: truncated || pages_truncated,
        })
    }

    /// WP bit of the device-specific parameter: the medium is write-protected.
    pub fn write_protected(&self) -> bool {
        self.device_specific & 0x80 != 0
    }

    /// DPOFUA bit of the device-specific parameter: DPO and FUA are supported.
    pub fn dpo_fua(&self) -> bool {
        self.device_specific & 0x10 != 0
    }

    /// The page with this page and subpage code, if it arrived.
    pub fn page(&self, page: u8, subpage: u8) -> Option<&ModePage> {
        self.pages
            .iter()
            .find(|p| p.page == page && p.subpage == subpage)
    }
}

fn truncated_header(needed: usize, available: usize) -> ScsiError {
    ScsiError::Truncated {
        what: "mode parameter header",
        needed,
        available,
    }
}

/// Splits the page area; a page running past the end is dropped and reported.
fn parse_pages(mut area: &[u8]) -> (Vec<ModePage>, bool) {
    let mut pages = Vec::new();
    while let Some(&first) = area.first() {
        let spf = first & 0x40 != 0;
        let (subpage, header_len, len) = if spf {
            match (u8_at(area, 1), u16_at(area, 2)) {
                (Some(subpage), Some(len)) => (subpage, 4, usize::from(len)),
                _ => return (pages, true),
            }
        } else {
            match u8_at(area, 1) {
                Some(len) => (0, 2, usize::from(len)),
                None => return (pages, true),
            }
        };
        let Some(data) = area.get(header_len..header_len + len) else {
            return (pages, true);
        };
        pages.push(ModePage {
            page: first & 0x3f,
            subpage,
            saveable: first & 0x80 != 0,
            data: data.to_vec(),
        });
        area = &area[header_len + len..];
    }
    (pages, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_control_page_mode_sense10() {
        let mode =
            ModeParameters::parse(tgtd_vectors::MODE_SENSE10_CONTROL, ModeSenseForm::Ten).unwrap();
        assert_eq!(mode.medium_type, 0);
        assert!(!mode.write_protected());
        assert!(mode.dpo_fua());
        assert!(mode.block_descriptors.is_empty());
        assert_eq!(mode.pages.len(), 1);
        let control = mode.page(0x0a, 0).unwrap();
        assert!(!control.saveable);
        assert_eq!(control.data, vec![0x02, 0x10, 0, 0, 0, 0, 0, 0, 0x02, 0]);
        assert!(!mode.truncated);
    }

    #[test]
    fn mode_sense6_with_block_descriptor_and_two_pages() {
        // Header: length, medium 0, WP set, one 8-byte block descriptor
        // (0x20000 blocks of 512), caching page (PS set) and a sub_page format page.
        let data = [
            0x23, 0x00, 0x80, 0x08, //
            0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, //
            0x88, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
            0x4a, 0x01, 0x00, 0x00,
        ];
        let mode = ModeParameters::parse(&data, ModeSenseForm::Six).unwrap();
        assert!(mode.write_protected());
        assert_eq!(
            mode.block_descriptors,
            vec![BlockDescriptor {
                block_count: 0x20000,
                block_length: 512
            }]
        );
        assert_eq!(mode.pages.len(), 2);
        let caching = mode.page(0x08, 0).unwrap();
        assert!(caching.saveable);
        assert_eq!(caching.data.len(), 0x12);
        assert_eq!(caching.data[0], 0x04);
        let sub = mode.page(0x0a, 0x01).unwrap();
        assert!(sub.data.is_empty());
        assert!(!mode.truncated);
    }

    #[test]
    fn long_lba_block_descriptor() {
        let mut data = vec![0x00, 0x16, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10];
        data.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        let mode = ModeParameters::parse(&data, ModeSenseForm::Ten).unwrap();
        assert_eq!(
            mode.block_descriptors,
            vec![BlockDescriptor {
                block_count: 1 << 32,
                block_length: 4096
            }]
        );
        assert!(mode.pages.is_empty());
    }

    #[test]
    fn cut_page_is_dropped() {
        // Mode data length promises a full caching page; only 6 of its bytes arrived.
        let data = [0x17, 0x00, 0x00, 0x00, 0x08, 0x12, 0x04, 0, 0, 0];
        let mode = ModeParameters::parse(&data, ModeSenseForm::Six).unwrap();
        assert!(mode.pages.is_empty());
        assert!(mode.truncated);
    }

    #[test]
    fn descriptor_length_beyond_data() {
        let data = [0x0b, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 2, 0];
        let mode = ModeParameters::parse(&data, ModeSenseForm::Six).unwrap();
        assert_eq!(mode.block_descriptors.len(), 1);
        assert!(mode.truncated);
    }

    #[test]
    fn short_headers() {
        assert!(ModeParameters::parse(&[0x03, 0, 0], ModeSenseForm::Six).is_err());
        assert!(ModeParameters::parse(&[0, 6, 0, 0, 0, 0, 0], ModeSenseForm::Ten).is_err());
        // Mode data length 0 is shorter than the header itself: nothing follows.
        let mode =
            ModeParameters::parse(&[0x00, 0, 0, 0, 0x08, 0x01, 0], ModeSenseForm::Six).unwrap();
        assert!(mode.pages.is_empty());
    }
}
