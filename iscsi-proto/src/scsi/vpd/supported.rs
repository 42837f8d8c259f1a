//! VPD page 00h: Supported VPD Pages (SPC-4 §7.8.16).

use super::{PAGE_SUPPORTED, VpdPage};
use crate::scsi::error::ScsiError;

/// The page codes a logical unit implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedVpdPages {
    /// Page codes in the order listed (ascending per SPC).
    pub pages: Vec<u8>,
    /// True when the list was cut short by the allocation length.
    pub truncated: bool,
}

impl SupportedVpdPages {
    /// Parses page 00h.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let page = VpdPage::parse(data, PAGE_SUPPORTED)?;
        Ok(SupportedVpdPages {
            pages: page.payload.to_vec(),
            truncated: page.truncated,
        })
    }

    /// True when `page_code` is listed.
    pub fn supports(&self, page_code: u8) -> bool {
        self.pages.contains(&page_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_pages() {
        let pages = SupportedVpdPages::parse(tgtd_vectors::VPD_SUPPORTED_PAGES).unwrap();
        assert_eq!(pages.pages, vec![0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
        assert!(pages.supports(0xb2));
        assert!(!pages.supports(0xb7));
        assert!(!pages.truncated);
    }

    #[test]
    fn truncated_list() {
        let pages = SupportedVpdPages::parse(&[0, 0, 0, 4, 0x00, 0x80]).unwrap();
        assert_eq!(pages.pages, vec![0x00, 0x80]);
        assert!(pages.truncated);
        assert!(SupportedVpdPages::parse(&[0, 0x80, 0, 0]).is_err());
    }
}
