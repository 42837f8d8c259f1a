//! The path set of a multipath volume against real targets: the lists form
//! with a portal that is down at attach and joins later, the singular form
//! with discovery (istgt answers every portal, tgtd only itself, a dead
//! discovery portal), LU identity refusals, and CHAP on every portal.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use iscsi_multipath::{MultipathVolume, PathRole, PathState, VolumeOptions};
use iscsi_session::BlockDevice;
use riscsi_tests::IscsiPath;
use riscsi_tests::prelude::*;
use riscsi_tests::volume::{fast_options, open, states, template, volume_info, wait_status};
use riscsi_tests::{free_port, pattern, unique_loopback_v4};

const LONG: Duration = Duration::from_secs(20);

/// Writes a pattern through the volume at `lba` and checks it reached the
/// backing file, then reads it back through the volume.
async fn write_and_check(
    volume: &MultipathVolume,
    lun: &riscsi_tests::ExportedLun,
    lba: u64,
    seed: u64,
) {
    let bs = u64::from(volume.geometry().block_size);
    let data = pattern::bytes(seed, lba * bs, 64 * 1024);
    volume
        .write(lba, Bytes::from(data.clone()), false)
        .await
        .expect("write through the volume");
    let back = volume
        .read(lba, (data.len() as u64 / bs) as u32)
        .await
        .expect("read through the volume");
    assert_eq!(back.to_bytes(), data, "read back what was written");
    assert_eq!(
        lun.read_backing(lba * bs, data.len()).unwrap(),
        data,
        "the backing file holds it"
    );
}

/// A path on a fresh loopback address where nothing listens (yet).
fn dead_portal() -> SocketAddr {
    let ip = IpAddr::V4(unique_loopback_v4());
    SocketAddr::new(ip, free_port(ip).unwrap())
}

/// Lists form with three portals, one unreachable: the volume opens on the
/// two that work and keeps retrying the third, which joins once it listens.
#[tokio::test]
async fn lists_form_opens_without_a_dead_portal_which_joins_later() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("::1")
        .lun(LunSpec::new(16 << 20))
        .start()
        .unwrap();
    let late = dead_portal();
    let mut info = tgt.connection_info_spec();
    info.others.push(IscsiPath {
        portal: late,
        iqn: tgt.iqn().to_owned(),
        lun: tgt.first_lun().number,
    });
    let volume = open(&info, ConnectionInfoForm::Lists, fast_options()).await;
    let status = volume.status();
    assert_eq!(status.paths.len(), 3);
    assert_eq!(status.paths[0].role, PathRole::Main);
    assert_eq!(
        status.paths[1].portal,
        format!("[::1]:{}", tgt.portals()[1].port())
    );
    assert_eq!(status.paths[0].state, PathState::Active);
    assert_eq!(status.paths[2].state, PathState::Reconnecting);
    let status = wait_status(&volume, LONG, "the IPv6 path joins", |s| {
        s.paths[1].state == PathState::Standby
    })
    .await;
    assert!(
        status.paths[2].last_error.is_some(),
        "the dead path says why"
    );
    write_and_check(&volume, tgt.first_lun(), 128, 1).await;

    // The third portal comes up (a proxy to the target on its address).
    let _proxy = FaultProxy::start_on(late, tgt.portals()[0]).unwrap();
    wait_status(&volume, LONG, "the late path joins", |s| {
        s.paths[2].state == PathState::Standby
    })
    .await;
    volume.close().await;
}

/// Singular form against istgt: its SendTargets answer lists every portal of
/// the group, so discovery finds the other paths.
#[tokio::test]
async fn singular_form_discovers_every_istgt_portal() {
    let target = Istgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let info = target.connection_info_spec();
    let volume = open(&info, ConnectionInfoForm::Singular, fast_options()).await;
    let status = wait_status(&volume, LONG, "both istgt portals are paths", |s| {
        s.paths.len() == 2 && states(s) == [PathState::Active, PathState::Standby]
    })
    .await;
    assert!(status.origin.contains("found 2 paths"), "{}", status.origin);
    write_and_check(&volume, target.first_lun(), 0, 2).await;
    volume.close().await;
}

/// Singular form against tgtd, whose discovery answers only with the portal
/// asked: one path, and the status says so.
#[tokio::test]
async fn singular_form_with_tgtd_opens_the_one_path_it_answers() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let info = tgt.connection_info_spec();
    let volume = open(&info, ConnectionInfoForm::Singular, fast_options()).await;
    let status = volume.status();
    assert_eq!(status.paths.len(), 1);
    assert!(
        status.origin.contains("answered only with itself"),
        "{}",
        status.origin
    );
    write_and_check(&volume, tgt.first_lun(), 8, 3).await;
    volume.close().await;
}

/// A discovery that fails (here: the discovery CHAP secret is wrong) leaves
/// the given path alone, and the volume says so; a volume whose every path
/// is dead fails to open with each path's reason.
#[tokio::test]
async fn failed_discovery_falls_back_to_the_given_path() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .discovery_chap("disco-user", "disco-secret-1")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let mut info = tgt.connection_info_spec();
    info.discovery_chap = Some(riscsi_tests::Chap::new("disco-user", "not-the-secret-2"));
    let volume = open(&info, ConnectionInfoForm::Singular, fast_options()).await;
    let status = volume.status();
    assert_eq!(status.paths.len(), 1);
    assert!(status.origin.contains("failed"), "{}", status.origin);
    assert!(
        status.origin.contains("using the given path only"),
        "{}",
        status.origin
    );
    assert!(
        !status.origin.contains("not-the-secret-2"),
        "{}",
        status.origin
    );
    write_and_check(&volume, tgt.first_lun(), 16, 4).await;
    volume.close().await;

    let mut dead = tgt.connection_info_spec();
    dead.main.portal = dead_portal();
    dead.others.clear();
    dead.discovery_chap = None;
    let parsed = volume_info(&dead, ConnectionInfoForm::Lists);
    let options = VolumeOptions {
        attach_timeout: Duration::from_secs(5),
        ..fast_options()
    };
    let err =
        MultipathVolume::open_connection_info(&parsed, &template(Duration::from_secs(1)), options)
            .await
            .expect_err("no path works");
    // One path: its own reason, which names the portal, and nothing else.
    let line = err.to_string();
    assert!(line.starts_with("cannot connect to"), "{line}");
    assert!(line.contains(&dead.main.portal.to_string()), "{line}");
}
