//! The fault proxy in front of a real target, driven with libiscsi.

use std::time::{Duration, Instant};

use riscsi_tests::libiscsi::{self, TOOL_TIMEOUT};
use riscsi_tests::prelude::*;
use riscsi_tests::{FixtureError, Result};

/// How long a login through a black hole is given before we call it stuck.
const STUCK: Duration = Duration::from_secs(2);

#[test]
fn inquiry_through_proxy_black_hole_and_resume() -> Result<()> {
    let tgt = Tgt::builder().chap("frank", "frank-secret-1").start()?;
    let proxy = FaultProxy::start(tgt.portals()[0])?;
    let url = tgt.libiscsi_url(proxy.listen_addr(), 1);

    let output = libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?;
    assert!(output.status.success(), "{}", output.stderr);
    let stats = proxy.stats();
    assert_eq!(stats.accepted, 1);
    assert!(
        stats.bytes_to_target > 48 && stats.bytes_to_client > 48,
        "{stats:?}"
    );

    proxy.black_hole();
    let started = Instant::now();
    match libiscsi::iscsi_inq(&url, STUCK) {
        Err(FixtureError::CommandTimedOut { .. }) => {}
        other => panic!("login through a black hole completed: {other:?}"),
    }
    assert!(started.elapsed() >= STUCK);
    assert_eq!(proxy.stats().accepted, 2, "the connection was accepted");

    proxy.resume();
    let output = libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?;
    assert!(output.status.success(), "{}", output.stderr);
    Ok(())
}

#[test]
fn refused_portal_fails_fast_and_recovers() -> Result<()> {
    let tgt = Tgt::start()?;
    let proxy = FaultProxy::start(tgt.portals()[0])?;
    let url = tgt.libiscsi_url(proxy.listen_addr(), 1);
    proxy.refuse();
    let output = libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?;
    assert!(!output.status.success());
    assert!(proxy.stats().refused >= 1);
    proxy.resume();
    assert!(libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?.status.success());
    Ok(())
}

#[test]
fn delayed_portal_still_works() -> Result<()> {
    let tgt = Tgt::start()?;
    let proxy = FaultProxy::start(tgt.portals()[0])?;
    let url = tgt.libiscsi_url(proxy.listen_addr(), 1);
    let delay = Duration::from_millis(20);
    proxy.delay(delay);
    let output = libiscsi::iscsi_inq(&url, TOOL_TIMEOUT)?;
    assert!(output.status.success(), "{}", output.stderr);
    // Login and inquiry take several round trips: a lower bound only.
    assert!(output.elapsed >= 2 * delay, "{:?}", output.elapsed);
    Ok(())
}

#[test]
fn connection_info_can_route_every_path_through_proxies() -> Result<()> {
    let tgt = Tgt::builder().portal("127.0.0.1").portal("::1").start()?;
    let proxies: Vec<FaultProxy> = tgt
        .portals()
        .iter()
        .map(|&p| FaultProxy::start(p))
        .collect::<Result<_>>()?;
    let info = tgt.connection_info_spec().map_portals(|portal| {
        proxies
            .iter()
            .find(|p| p.target_addr() == portal)
            .map(|p| p.listen_addr())
            .unwrap_or(portal)
    });
    for path in info.paths() {
        let output = libiscsi::iscsi_inq(&tgt.libiscsi_url(path.portal, path.lun), TOOL_TIMEOUT)?;
        assert!(output.status.success(), "{}", output.stderr);
    }
    assert!(proxies.iter().all(|p| p.stats().accepted == 1));
    Ok(())
}
