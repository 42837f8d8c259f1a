//! The Caching mode page 08h (SBC-3 §6.4.5).

use super::error::ScsiError;
use super::mode_sense::ModePage;

/// Page code of the Caching mode page.
pub const CACHING_PAGE: u8 = 0x08;

/// Fields of the Caching mode page an initiator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachingPage {
    /// WCE: write-back cache enabled, so SYNCHRONIZE CACHE (or FUA) is needed for durability.
    pub write_cache_enabled: bool,
    /// RCD: read cache disabled.
    pub read_cache_disabled: bool,
    /// IC: initiator control of the cache segmentation.
    pub initiator_control: bool,
    /// ABPF: abort prefetch.
    pub abort_prefetch: bool,
    /// CAP: caching analysis permitted.
    pub caching_analysis: bool,
    /// DISC: discontinuity.
    pub discontinuity: bool,
    /// SIZE: cache segment size field is in bytes.
    pub size: bool,
    /// MF: multiplication factor.
    pub multiplication_factor: bool,
}

impl CachingPage {
    /// Reads the flag byte of page 08h.
    pub fn from_page(page: &ModePage) -> Result<Self, ScsiError> {
        if page.page != CACHING_PAGE || page.subpage != 0 {
            return Err(ScsiError::UnexpectedPage {
                expected: CACHING_PAGE,
                actual: page.page,
            });
        }
        // Byte 2 of the page is the first byte after the page_0 header.
        let flags = *page.data.first().ok_or(ScsiError::Truncated {
            what: "caching mode page",
            needed: 3,
            available: 2,
        })?;
        Ok(CachingPage {
            initiator_control: flags & 0x80 != 0,
            abort_prefetch: flags & 0x40 != 0,
            caching_analysis: flags & 0x20 != 0,
            discontinuity: flags & 0x10 != 0,
            size: flags & 0x08 != 0,
            write_cache_enabled: flags & 0x04 != 0,
            multiplication_factor: flags & 0x02 != 0,
            read_cache_disabled: flags & 0x01 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::mode_sense::{ModeParameters, ModeSenseForm};

    #[test]
    fn write_back_cache_from_mode_sense6() {
        // MODE SENSE(6) data, DBD: header then caching page with WCE set.
        let data = [
            0x17, 0x00, 0x10, 0x00, //
            0x08, 0x12, 0x04, 0x00, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x80, 0x14, 0, 0, 0,
            0, 0, 0,
        ];
        let mode = ModeParameters::parse(&data, ModeSenseForm::Six).unwrap();
        let caching = CachingPage::from_page(mode.page(CACHING_PAGE, 0).unwrap()).unwrap();
        assert!(caching.write_cache_enabled);
        assert!(!caching.read_cache_disabled);
        assert!(!caching.initiator_control && !caching.size);
    }

    #[test]
    fn every_flag_bit() {
        let page = |flags| ModePage {
            page: 0x08,
            subpage: 0,
            saveable: false,
            data: vec![flags],
        };
        let rcd = CachingPage::from_page(&page(0x01)).unwrap();
        assert!(rcd.read_cache_disabled && !rcd.write_cache_enabled);
        let all = CachingPage::from_page(&page(0xff)).unwrap();
        assert!(
            all.initiator_control
                && all.abort_prefetch
                && all.caching_analysis
                && all.discontinuity
                && all.size
                && all.write_cache_enabled
                && all.multiplication_factor
                && all.read_cache_disabled
        );
    }

    #[test]
    fn wrong_or_empty_page() {
        let control = ModePage {
            page: 0x0a,
            subpage: 0,
            saveable: false,
            data: vec![0x04],
        };
        assert!(matches!(
            CachingPage::from_page(&control),
            Err(ScsiError::UnexpectedPage { .. })
        ));
        let empty = ModePage {
            page: 0x08,
            subpage: 0,
            saveable: false,
            data: vec![],
        };
        assert!(matches!(
            CachingPage::from_page(&empty),
            Err(ScsiError::Truncated { .. })
        ));
    }
}
