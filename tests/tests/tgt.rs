//! The tgtd fixture, proven with libiscsi's tools before our own initiator exists.

use riscsi_tests::Result;
use riscsi_tests::libiscsi::{self, TOOL_TIMEOUT};
use riscsi_tests::prelude::*;

/// `iscsi-inq` through `url` succeeds and reports a disk.
fn assert_inquiry_works(url: &str) -> Result<()> {
    let output = libiscsi::iscsi_inq(url, TOOL_TIMEOUT)?;
    assert!(
        output.status.success(),
        "iscsi-inq failed: {}",
        output.stderr
    );
    assert!(
        output
            .stdout
            .contains("Peripheral Device Type:DIRECT_ACCESS"),
        "{}",
        output.stdout
    );
    Ok(())
}

/// `iscsi-inq` through `url` is refused at login.
fn assert_login_refused(url: &str) -> Result<()> {
    let output = libiscsi::iscsi_inq(url, TOOL_TIMEOUT)?;
    assert!(
        !output.status.success(),
        "login with bad credentials worked"
    );
    assert!(
        output.stderr.contains("Authentication failure") || output.stderr.contains("CHAP"),
        "unexpected failure: {}",
        output.stderr
    );
    Ok(())
}

#[test]
fn inquiry_works_on_every_portal_ipv4_and_ipv6() -> Result<()> {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .start()?;
    assert_eq!(tgt.portals().len(), 3);
    assert!(tgt.portals().iter().any(|p| p.is_ipv6()));
    assert_eq!(tgt.luns(), [1], "tgtd LUN 0 is its controller");
    for &portal in tgt.portals() {
        assert_inquiry_works(&tgt.libiscsi_url(portal, 1))?;
    }
    Ok(())
}

#[test]
fn one_way_chap_accepts_the_secret_and_refuses_others() -> Result<()> {
    let tgt = Tgt::builder().chap("alice", "alice-secret-1").start()?;
    let portal = tgt.portals()[0];
    let url = tgt.libiscsi_url(portal, 1);
    assert!(url.contains("alice%alice-secret-1@"), "{url}");
    assert_inquiry_works(&url)?;
    let wrong = format!("iscsi://alice%wrong-secret-9@{portal}/{}/1", tgt.iqn());
    assert_login_refused(&wrong)?;
    let anonymous = format!("iscsi://{portal}/{}/1", tgt.iqn());
    assert_login_refused(&anonymous)?;
    Ok(())
}

#[test]
fn mutual_chap_checks_the_target_too() -> Result<()> {
    let tgt = Tgt::builder()
        .chap("bob", "bob-secret-123")
        .mutual_chap("array", "array-secret-1")
        .start()?;
    let portal = tgt.portals()[0];
    assert_inquiry_works(&tgt.libiscsi_url(portal, 1))?;
    // The initiator refuses a target that does not know the mutual secret.
    let wrong_target = format!(
        "iscsi://bob%bob-secret-123@{portal}/{}/1?target_user=array&target_password=not-it",
        tgt.iqn()
    );
    assert_login_refused(&wrong_target)?;
    Ok(())
}

#[test]
fn block_size_and_capacity_are_as_specified() -> Result<()> {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(8 << 20).block_size(4096))
        .lun(LunSpec::new(2 << 20))
        .start()?;
    assert_eq!(tgt.luns(), [1, 2]);
    let portal = tgt.portals()[0];
    let big = libiscsi::read_capacity16(&tgt.libiscsi_url(portal, 1), TOOL_TIMEOUT)?;
    assert_eq!((big.block_size, big.bytes()), (4096, 8 << 20));
    let small = libiscsi::read_capacity16(&tgt.libiscsi_url(portal, 2), TOOL_TIMEOUT)?;
    assert_eq!((small.block_size, small.bytes()), (512, 2 << 20));
    Ok(())
}

#[test]
fn sendtargets_answers_only_the_portal_asked() -> Result<()> {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.3")
        .portal("::1")
        .start()?;
    for (&portal, expected) in tgt.portals().iter().zip(tgt.portal_strings()) {
        let discovery = libiscsi::discover(&tgt.discovery_url(portal), TOOL_TIMEOUT)?;
        assert!(discovery.succeeded(), "{discovery:?}");
        assert!(
            discovery.status.is_some(),
            "iscsi-ls should finish by itself on tgtd"
        );
        assert_eq!(discovery.portals_of(tgt.iqn()), [expected]);
    }
    Ok(())
}

#[test]
fn discovery_chap_is_enforced() -> Result<()> {
    let tgt = Tgt::builder()
        .discovery_chap("finder", "finder-secret")
        .discovery_mutual_chap("array", "array-secret-2")
        .start()?;
    let portal = tgt.portals()[0];
    let ok = libiscsi::discover(&tgt.discovery_url(portal), TOOL_TIMEOUT)?;
    assert_eq!(ok.portals_of(tgt.iqn()), tgt.portal_strings());
    let anonymous = libiscsi::discover(&format!("iscsi://{portal}"), TOOL_TIMEOUT)?;
    assert!(
        !anonymous.succeeded() && anonymous.targets.is_empty(),
        "{anonymous:?}"
    );
    let wrong = libiscsi::discover(&format!("iscsi://finder%nope@{portal}"), TOOL_TIMEOUT)?;
    assert!(!wrong.succeeded() && wrong.targets.is_empty(), "{wrong:?}");
    // Session login stays open: discovery CHAP guards discovery only.
    assert_inquiry_works(&tgt.libiscsi_url(portal, 1))?;
    Ok(())
}

#[test]
fn several_targets_each_with_their_luns() -> Result<()> {
    let tgt = Tgt::builder()
        .iqn("iqn.2026-11.io.riscsi.test:first")
        .target(
            TargetSpec::new()
                .iqn("iqn.2026-11.io.riscsi.test:second")
                .lun(LunSpec::new(1 << 20))
                .lun(LunSpec::new(1 << 20).block_size(4096)),
        )
        .chap("carol", "carol-secret-1")
        .start()?;
    // Generated names would differ per process; given ones are kept.
    let suffix = format!("-{}", std::process::id());
    assert!(!tgt.iqn().contains(&suffix));
    assert_eq!(
        tgt.iqns(),
        [
            "iqn.2026-11.io.riscsi.test:first",
            "iqn.2026-11.io.riscsi.test:second"
        ]
    );
    let second = &tgt.targets()[1];
    assert_eq!(
        second.luns.iter().map(|l| l.number).collect::<Vec<_>>(),
        [1, 2]
    );
    let portal = tgt.portals()[0];
    let discovery = libiscsi::discover(&tgt.discovery_url(portal), TOOL_TIMEOUT)?;
    for iqn in tgt.iqns() {
        assert_eq!(discovery.portals_of(iqn).len(), 1, "{discovery:?}");
    }
    let capacity = libiscsi::read_capacity16(
        &tgt.libiscsi_target_url(portal, &second.iqn, 2),
        TOOL_TIMEOUT,
    )?;
    assert_eq!(capacity.block_size, 4096);
    Ok(())
}

#[test]
fn lu_identity_is_unique_by_default_and_settable() -> Result<()> {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(1 << 20))
        .lun(
            LunSpec::new(1 << 20)
                .scsi_sn("SHARED-SN-1")
                .scsi_id("5EED0001"),
        )
        .start()?;
    let portal = tgt.portals()[0];
    let serial = |lun| -> Result<Option<String>> {
        let out = libiscsi::iscsi_inq_vpd(&tgt.libiscsi_url(portal, lun), 0x80, TOOL_TIMEOUT)?;
        Ok(libiscsi::parse_unit_serial(&out.stdout))
    };
    let generated = tgt.lun(1).unwrap();
    assert_eq!(serial(1)?.as_deref(), Some(generated.scsi_sn.as_str()));
    assert_eq!(serial(2)?.as_deref(), Some("SHARED-SN-1"));
    let vpd83 = libiscsi::iscsi_inq_vpd(&tgt.libiscsi_url(portal, 2), 0x83, TOOL_TIMEOUT)?;
    assert!(vpd83.stdout.contains("5EED0001"), "{}", vpd83.stdout);
    assert_ne!(generated.scsi_id, tgt.lun(2).unwrap().scsi_id);
    Ok(())
}

#[test]
fn backing_files_hold_the_pattern_and_are_the_luns() -> Result<()> {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(2 << 20).pattern(42))
        .start()?;
    let lun = tgt.first_lun();
    assert!(lun.path.starts_with("/dev/shm"));
    assert_eq!(tgt.lun_path(1), Some(lun.path.as_path()));
    assert_eq!(
        lun.read_backing(1 << 20, 4096)?,
        lun.initial_bytes(1 << 20, 4096)
    );
    // tgtd really serves that file.
    let shown = tgt.tgtadm(&["--op", "show", "--mode", "target"])?;
    assert!(
        shown.stdout.contains(&*lun.path.to_string_lossy()),
        "{}",
        shown.stdout
    );
    Ok(())
}

#[test]
fn invalid_configurations_fail_before_starting_anything() {
    let cases = [
        Tgt::builder().portal("nonsense").start().map(drop),
        Tgt::builder()
            .mutual_chap("t", "secret-only-mutual")
            .start()
            .map(drop),
        Tgt::builder().lun(LunSpec::new(1000)).start().map(drop),
        Tgt::builder()
            .chap("same", "one-secret")
            .discovery_chap("same", "other-secret")
            .start()
            .map(drop),
    ];
    for case in cases {
        assert!(
            matches!(case, Err(FixtureError::InvalidConfig(_))),
            "{case:?}"
        );
    }
}

/// A killed tgtd comes back on the same portals with the same LU: same
/// identity, same data, CHAP still enforced.
#[test]
fn a_killed_tgtd_restarts_with_the_same_portals_and_data() -> Result<()> {
    let mut tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .chap("alice", "alice-secret-1")
        .lun(LunSpec::new(4 << 20).pattern(9))
        .start()?;
    let url = tgt.libiscsi_url(tgt.portals()[1], tgt.first_lun().number);
    let before = libiscsi::iscsi_inq_vpd(&url, 0x80, TOOL_TIMEOUT)?.stdout;
    tgt.kill();
    let down = libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?;
    assert!(!down.status.success(), "down while killed: {}", down.stdout);
    tgt.restart()?;
    for portal in tgt.portals().to_vec() {
        assert_inquiry_works(&tgt.libiscsi_url(portal, tgt.first_lun().number))?;
    }
    assert_eq!(
        libiscsi::iscsi_inq_vpd(&url, 0x80, TOOL_TIMEOUT)?.stdout,
        before
    );
    assert_eq!(
        tgt.first_lun().read_backing(0, 4096)?,
        tgt.first_lun().initial_bytes(0, 4096)
    );
    Ok(())
}
