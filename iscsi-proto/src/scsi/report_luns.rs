//! REPORT LUNS parameter data (SPC-4 §6.33) and 8-byte LUN addressing (SAM-5 §4.7).

use super::error::ScsiError;
use super::field::u32_at;
pub use crate::pdu::Lun;

const HEADER_LEN: usize = 8;
const LUN_LEN: usize = 8;

/// REPORT LUNS parameter data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLuns {
    /// Every complete LUN entry that arrived.
    pub luns: Vec<Lun>,
    /// LUN LIST LENGTH as sent (bytes of LUN entries the target has).
    pub lun_list_length: u32,
}

impl ReportLuns {
    /// Parses the answer; when the allocation length was too small, the LUNs
    /// that fit are returned and [`Self::is_truncated`] is true.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let lun_list_length = u32_at(data, 0).ok_or(ScsiError::Truncated {
            what: "REPORT LUNS header",
            needed: HEADER_LEN,
            available: data.len(),
        })?;
        let declared = usize::try_from(lun_list_length).unwrap_or(usize::MAX);
        let list = data.get(HEADER_LEN..).unwrap_or_default();
        let list = &list[..list.len().min(declared)];
        let luns = list
            .chunks_exact(LUN_LEN)
            .map(|chunk| {
                let mut raw = [0u8; LUN_LEN];
                raw.copy_from_slice(chunk);
                Lun(raw)
            })
            .collect();
        Ok(ReportLuns {
            luns,
            lun_list_length,
        })
    }

    /// True when the target has more LUN entries than arrived.
    pub fn is_truncated(&self) -> bool {
        (self.luns.len() as u64) * (LUN_LEN as u64) < u64::from(self.lun_list_length)
    }

    /// Allocation length that fetches the whole list.
    pub fn required_allocation_length(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.lun_list_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_three_luns() {
        let report = ReportLuns::parse(tgtd_vectors::REPORT_LUNS).unwrap();
        let numbers: Vec<_> = report.luns.iter().map(Lun::number).collect();
        assert_eq!(numbers, vec![Some(0), Some(1), Some(2)]);
        assert!(!report.is_truncated());
        assert_eq!(report.luns[1].as_raw(), [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(report.luns[1].to_u64(), 0x0001_0000_0000_0000);
    }

    #[test]
    fn tgtd_short_allocation() {
        let report = ReportLuns::parse(tgtd_vectors::REPORT_LUNS_ALLOC16).unwrap();
        assert_eq!(report.luns.len(), 1);
        assert!(report.is_truncated());
        assert_eq!(report.required_allocation_length(), 32);
    }

    #[test]
    fn addressing_methods() {
        // Flat space LUN 0x1234 (01b method), peripheral with bus 1, logical
        // unit addressing (10b), a two-level hierarchical LUN.
        let flat = Lun::from_raw([0x52, 0x34, 0, 0, 0, 0, 0, 0]);
        assert_eq!(flat.number(), Some(0x1234));
        assert_eq!(Lun::from_raw([0x01, 0x05, 0, 0, 0, 0, 0, 0]).number(), None);
        assert_eq!(Lun::from_raw([0x80, 0x05, 0, 0, 0, 0, 0, 0]).number(), None);
        let two_level = Lun::from_raw([0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0]);
        assert_eq!(two_level.number(), None);
        assert_eq!(two_level.to_string(), "0001000200000000");
        assert_eq!(format!("{flat:?}"), "Lun(4660)");
    }

    #[test]
    fn encoding_numbers() {
        assert_eq!(
            Lun::from_number(1).unwrap().as_raw(),
            [0, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::from_number(0x100).unwrap().as_raw(),
            [0x41, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::from_number(0x3fff).unwrap().as_raw(),
            [0x7f, 0xff, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::from_number(0x4000), None);
        for n in [0u16, 7, 255, 256, 4000, 0x3fff] {
            assert_eq!(Lun::from_number(n).unwrap().number(), Some(n));
        }
        assert_eq!(Lun::from_u64(0x0002_0000_0000_0000).number(), Some(2));
    }

    #[test]
    fn list_length_bounds_entries_and_partial_entries_are_dropped() {
        // LUN LIST LENGTH 8 with 16 bytes of entries: only the first counts.
        let data = [
            0, 0, 0, 8, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            ReportLuns::parse(&data).unwrap().luns,
            vec![Lun::from_number(3).unwrap()]
        );
        // Half an entry.
        let data = [0, 0, 0, 16, 0, 0, 0, 0, 0, 3, 0, 0];
        let report = ReportLuns::parse(&data).unwrap();
        assert!(report.luns.is_empty() && report.is_truncated());
        assert!(ReportLuns::parse(&[0, 0, 0]).is_err());
        // A huge declared length allocates nothing up front.
        let report = ReportLuns::parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
        assert_eq!(report.required_allocation_length(), 0x1_0000_0007);
    }
}
