//! Opening a multipath volume on a fixture, and watching its paths: the
//! helpers every multipath test shares.

use std::time::Duration;

use iscsi_multipath::{
    ConnectionInfo as VolumeInfo, MultipathVolume, PathState, SessionTemplate, VolumeOptions,
    VolumeStatus,
};
use iscsi_session::Timeouts;

use crate::connection_info::{ConnectionInfo, ConnectionInfoForm};

/// The initiator name multipath tests log in with.
pub const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:multipath";

/// Session settings for tests: NOP keepalive `nop` (interval and timeout),
/// short logins.
pub fn template(nop: Duration) -> SessionTemplate {
    let mut t = SessionTemplate::new(INITIATOR);
    t.timeouts = Some(Timeouts {
        connect: Duration::from_secs(2),
        login: Duration::from_secs(10),
        command: Duration::from_secs(20),
        nop_interval: nop,
        nop_timeout: nop,
        ..Timeouts::default()
    });
    t.discovery_timeout = Duration::from_secs(10);
    t
}

/// Volume options for tests: a fast checker (250 ms, at most 1 s).
pub fn fast_options() -> VolumeOptions {
    VolumeOptions {
        checker_interval: Duration::from_millis(250),
        checker_max_interval: Duration::from_secs(1),
        path_timeout: Duration::from_secs(5),
        attach_timeout: Duration::from_secs(20),
        ..VolumeOptions::default()
    }
}

/// Parses a fixture's connection_info as riscsi would receive it.
pub fn volume_info(info: &ConnectionInfo, form: ConnectionInfoForm) -> VolumeInfo {
    let text = info.to_json(form).to_string();
    VolumeInfo::parse(&text).expect("the fixture's connection_info parses")
}

/// Opens the volume of `info` with `options` and 1 s NOP keepalive.
pub async fn open(
    info: &ConnectionInfo,
    form: ConnectionInfoForm,
    options: VolumeOptions,
) -> MultipathVolume {
    let parsed = volume_info(info, form);
    MultipathVolume::open_connection_info(&parsed, &template(Duration::from_secs(1)), options)
        .await
        .expect("the volume opens")
}

/// Waits until the volume's status satisfies `condition`; panics with the
/// last status after `timeout`.
pub async fn wait_status(
    volume: &MultipathVolume,
    timeout: Duration,
    what: &str,
    condition: impl Fn(&VolumeStatus) -> bool,
) -> VolumeStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = volume.watch_changes();
    loop {
        let status = volume.status();
        if condition(&status) {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}; status: {status:#?}");
        }
        // Counters move without a change notice: look again regularly.
        let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
    }
}

/// The states of the paths, main first.
pub fn states(status: &VolumeStatus) -> Vec<PathState> {
    status.paths.iter().map(|p| p.state).collect()
}
