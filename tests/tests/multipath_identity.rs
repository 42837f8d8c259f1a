//! Who may join a volume: a portal that leads to another LU is refused,
//! loudly; CHAP applies on every portal, and a portal that refuses the
//! credentials leaves the others working and is reported with the reason.

use std::time::Duration;

use iscsi_multipath::PathState;
use iscsi_session::BlockDevice;
use riscsi_tests::prelude::*;
use riscsi_tests::volume::{fast_options, open, wait_status};
use riscsi_tests::{Chap, IscsiPath};

const LONG: Duration = Duration::from_secs(20);

fn path_of(tgt: &Tgt) -> IscsiPath {
    IscsiPath {
        portal: tgt.portals()[0],
        iqn: tgt.iqn().to_owned(),
        lun: tgt.first_lun().number,
    }
}

/// Two tgtd daemons, each its own LU: the second daemon's portal is refused,
/// and the status names both identities; I/O stays on the main path.
#[tokio::test]
async fn a_portal_to_another_lu_is_refused() {
    let main = Tgt::builder().lun(LunSpec::new(8 << 20)).start().unwrap();
    let other = Tgt::builder()
        .portal("127.0.0.2")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let mut info = main.connection_info_spec();
    info.others.push(path_of(&other));
    let volume = open(&info, ConnectionInfoForm::Lists, fast_options()).await;
    let status = wait_status(&volume, LONG, "the other LU is refused", |s| {
        s.paths[1].state == PathState::Refused
    })
    .await;
    let why = status.paths[1].last_error.clone().unwrap();
    assert!(why.contains("refusing path"), "{why}");
    let identity = status.identity.clone().unwrap();
    assert!(
        why.contains(&identity),
        "names the volume's identity: {why}"
    );
    assert!(why.contains("not the volume's LU"), "{why}");
    volume.read(0, 8).await.unwrap();
    assert_eq!(volume.status().paths[1].completed, 0);
    volume.close().await;
}

/// Two daemons exporting one LU identity: CHAP from connection_info is used on
/// both portals; where the daemon holds another secret, that path fails with
/// the reason and logins stop, while the other path works.
#[tokio::test]
async fn chap_on_every_portal_and_a_wrong_secret_on_one() {
    let lun = || {
        LunSpec::new(8 << 20)
            .scsi_sn("SHAREDSN0001")
            .scsi_id("SHAREDID0001")
    };
    let good = Tgt::builder()
        .chap("alice", "alice-secret-1")
        .lun(lun())
        .start()
        .unwrap();
    let same = Tgt::builder()
        .portal("127.0.0.2")
        .chap("alice", "alice-secret-1")
        .lun(lun())
        .start()
        .unwrap();
    let wrong = Tgt::builder()
        .portal("127.0.0.3")
        .chap("alice", "another-secret-2")
        .lun(lun())
        .start()
        .unwrap();
    let mut info = good.connection_info_spec();
    info.others = vec![path_of(&same), path_of(&wrong)];
    info.session_chap = Some(Chap::new("alice", "alice-secret-1"));
    let volume = open(&info, ConnectionInfoForm::Lists, fast_options()).await;
    let status = wait_status(&volume, LONG, "the wrong-secret path fails", |s| {
        s.paths[1].state == PathState::Standby && s.paths[2].state == PathState::Failed
    })
    .await;
    let why = status.paths[2].last_error.clone().unwrap();
    assert!(why.to_lowercase().contains("authentication"), "{why}");
    assert!(why.contains("logins stopped"), "logins stop: {why}");
    for secret in ["alice-secret-1", "another-secret-2"] {
        assert!(
            !format!("{status:?}").contains(secret),
            "no secret in the status"
        );
    }
    volume.read(0, 8).await.unwrap();
    volume.close().await;
}
