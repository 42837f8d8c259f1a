//! The istgt fixture, proven with libiscsi's tools. istgt answers each normal
//! login after about a second, so these tests keep logins few.

use riscsi_tests::Result;
use riscsi_tests::libiscsi::{self, TOOL_TIMEOUT};
use riscsi_tests::prelude::*;

fn inquiry_succeeds(url: &str) -> Result<bool> {
    let output = libiscsi::iscsi_inq(url, TOOL_TIMEOUT)?;
    Ok(output.status.success() && output.stdout.contains("DIRECT_ACCESS"))
}

#[test]
fn sendtargets_lists_every_portal_of_the_group() -> Result<()> {
    let istgt = Istgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .start()?;
    let mut expected = istgt.portal_strings();
    expected.sort();
    // Asked on any one portal, istgt names all three (tgtd would name one).
    for &portal in &istgt.portals()[1..] {
        let discovery = libiscsi::discover(&istgt.discovery_url(portal), TOOL_TIMEOUT)?;
        assert!(discovery.succeeded(), "{discovery:?}");
        assert_eq!(discovery.portals_of(istgt.iqn()), expected, "{discovery:?}");
        assert!(discovery.targets.iter().all(|t| t.tpgt == 1));
    }
    Ok(())
}

#[test]
fn every_portal_serves_the_lun_with_its_block_size_and_serial() -> Result<()> {
    let istgt = Istgt::builder()
        .portal("127.0.0.1")
        .portal("::1")
        .lun(LunSpec::new(8 << 20).block_size(4096).scsi_sn("IST-SN-7"))
        .start()?;
    assert_eq!(istgt.luns(), [0], "istgt numbers LUNs from 0");
    let v4 = istgt.libiscsi_url(istgt.portals()[0], 0);
    let v6 = istgt.libiscsi_url(istgt.portals()[1], 0);
    assert!(inquiry_succeeds(&v4)?);
    let capacity = libiscsi::read_capacity16(&v6, TOOL_TIMEOUT)?;
    assert_eq!((capacity.block_size, capacity.bytes()), (4096, 8 << 20));
    let serial = libiscsi::iscsi_inq_vpd(&v4, 0x80, TOOL_TIMEOUT)?;
    assert_eq!(
        libiscsi::parse_unit_serial(&serial.stdout).as_deref(),
        Some("IST-SN-7")
    );
    Ok(())
}

#[test]
fn one_way_chap_refuses_a_wrong_secret() -> Result<()> {
    let istgt = Istgt::builder().chap("dave", "dave-secret-12").start()?;
    let portal = istgt.portals()[0];
    assert!(inquiry_succeeds(&istgt.libiscsi_url(portal, 0))?);
    let wrong = format!("iscsi://dave%wrong-secret@{portal}/{}/0", istgt.iqn());
    assert!(!inquiry_succeeds(&wrong)?, "wrong secret accepted");
    Ok(())
}

#[test]
fn mutual_and_discovery_chap_are_enforced() -> Result<()> {
    let istgt = Istgt::builder()
        .chap("erin", "erin-secret-12")
        .mutual_chap("array", "array-secret-3")
        .discovery_chap("finder", "finder-secret")
        .target(TargetSpec::new().lun(LunSpec::new(1 << 20)))
        .start()?;
    let portal = istgt.portals()[0];
    assert!(inquiry_succeeds(&istgt.libiscsi_url(portal, 0))?);
    // Mutual is required: without target credentials the login fails.
    let one_way_only = format!("iscsi://erin%erin-secret-12@{portal}/{}/0", istgt.iqn());
    assert!(
        !inquiry_succeeds(&one_way_only)?,
        "mutual CHAP not required"
    );

    let discovery = libiscsi::discover(&istgt.discovery_url(portal), TOOL_TIMEOUT)?;
    for iqn in istgt.iqns() {
        assert_eq!(
            discovery.portals_of(iqn),
            istgt.portal_strings(),
            "{discovery:?}"
        );
    }
    let anonymous = libiscsi::discover(&format!("iscsi://{portal}"), TOOL_TIMEOUT)?;
    assert!(
        !anonymous.succeeded() && anonymous.targets.is_empty(),
        "{anonymous:?}"
    );
    Ok(())
}

#[test]
fn istgt_limits_are_reported_not_ignored() {
    let mixed_block_sizes = Istgt::builder()
        .lun(LunSpec::new(1 << 20))
        .lun(LunSpec::new(1 << 20).block_size(4096))
        .start();
    assert!(matches!(
        mixed_block_sizes,
        Err(FixtureError::InvalidConfig(_))
    ));
    let designator = Istgt::builder()
        .lun(LunSpec::new(1 << 20).scsi_id("ABC"))
        .start();
    assert!(matches!(designator, Err(FixtureError::InvalidConfig(_))));
}
