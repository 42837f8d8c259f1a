//! Property tests: every parser accepts any bytes without panicking, and the
//! block CDB builders agree with an independent reading of their fields.

use proptest::prelude::*;

use super::*;

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600)
}

/// Bytes that start like a given VPD page, so the page bodies get exercised.
fn vpd_like(page: u8) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(move |(byte0, len, body)| {
            let mut data = vec![byte0, page];
            data.extend_from_slice(&(len % 320).to_be_bytes());
            data.extend(body);
            data
        })
}

fn sense_like() -> impl Strategy<Value = Vec<u8>> {
    (
        0x70u8..=0x73,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(code, body)| {
            let mut data = vec![code];
            data.extend(body);
            data
        })
}

proptest! {
    #[test]
    fn parsers_never_panic(data in any_bytes()) {
        let _ = StandardInquiry::parse(&data);
        let _ = vpd::SupportedVpdPages::parse(&data);
        let _ = vpd::UnitSerialNumber::parse(&data);
        let _ = vpd::DeviceIdentification::parse(&data).map(|page| page.lu_identity().map(|id| id.to_string()));
        let _ = vpd::BlockLimits::parse(&data);
        let _ = vpd::LogicalBlockProvisioning::parse(&data);
        let _ = ReadCapacity10::parse(&data);
        let _ = ReadCapacity16::parse(&data).map(|c| (c.size_bytes(), c.physical_block_size()));
        let _ = ReportLuns::parse(&data).map(|r| r.luns.iter().map(|l| l.to_string().len()).sum::<usize>());
        for form in [ModeSenseForm::Six, ModeSenseForm::Ten] {
            if let Ok(mode) = ModeParameters::parse(&data, form) {
                for page in &mode.pages {
                    let _ = CachingPage::from_page(page);
                }
            }
        }
        let _ = Sense::parse(&data).map(|s| s.to_string());
        let _ = Sense::from_iscsi_segment(&data);
    }

    #[test]
    fn vpd_bodies_never_panic(
        page in prop_oneof![Just(0x00u8), Just(0x80), Just(0x83), Just(0xb0), Just(0xb2)]
            .prop_flat_map(vpd_like)
    ) {
        let _ = vpd::SupportedVpdPages::parse(&page);
        let _ = vpd::UnitSerialNumber::parse(&page);
        if let Ok(id) = vpd::DeviceIdentification::parse(&page) {
            for d in &id.descriptors {
                let _ = (d.designator.wwid(), d.designator.hex(), d.protocol_identifier());
            }
            let _ = id.lu_identity();
        }
        let _ = vpd::BlockLimits::parse(&page);
        let _ = vpd::LogicalBlockProvisioning::parse(&page);
    }

    #[test]
    fn sense_never_panics_and_classifies(data in sense_like(), status in any::<u8>()) {
        let sense = Sense::parse(&data).ok();
        if let Some(s) = &sense {
            let _ = s.to_string();
        }
        let failure = CommandFailure::Status { status: ScsiStatus::from_code(status), sense };
        let _ = classify(&failure);
        let _ = failure.completed();
    }

    #[test]
    fn automatic_read_round_trips(lba in any::<u64>(), blocks in any::<u32>(), fua in any::<bool>()) {
        let cdb = Cdb::read(lba, blocks, fua);
        let b = cdb.as_bytes();
        prop_assert_eq!(b[1] & 0x08 != 0, fua);
        let (got_lba, got_blocks) = if b[0] == opcode::READ_10 {
            prop_assert_eq!(b.len(), 10);
            (u64::from(u32::from_be_bytes([b[2], b[3], b[4], b[5]])), u32::from(u16::from_be_bytes([b[7], b[8]])))
        } else {
            prop_assert_eq!(b[0], opcode::READ_16);
            prop_assert!(lba > u64::from(u32::MAX) || blocks > u32::from(u16::MAX));
            (
                u64::from_be_bytes(b[2..10].try_into().unwrap()),
                u32::from_be_bytes(b[10..14].try_into().unwrap()),
            )
        };
        prop_assert_eq!((got_lba, got_blocks), (lba, blocks));
    }

    #[test]
    fn unmap_list_lengths_are_consistent(count in 0usize..40, max in any::<u32>()) {
        let descriptors = vec![UnmapDescriptor { lba: 7, blocks: 9 }; count];
        match UnmapParameterList::new(&descriptors, max) {
            Ok(list) => {
                let b = list.bytes();
                prop_assert!(count <= max as usize);
                prop_assert_eq!(b.len(), 8 + 16 * count);
                prop_assert_eq!(usize::from(u16::from_be_bytes([b[0], b[1]])), b.len() - 2);
                prop_assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), 16 * count);
            }
            Err(_) => prop_assert!(count > max as usize),
        }
    }
}
