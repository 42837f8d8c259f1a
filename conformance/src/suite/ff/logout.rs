//! Logout (RFC 7143 §11.14, §11.15).

use std::sync::Arc;

use iscsi_proto::pdu::{LogoutReason, LogoutResponseCode};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, pass};
use crate::registry::TestCase;
use crate::suite::support::retry_dropped_logout;

/// The logout tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.logout.close_session",
            "RFC 7143 §11.14.1",
            "Logout reason 0 (close the session): Success, then the target closes the connection",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || close_session(ctx.clone())).await
            },
        ),
        TestCase::new(
            "ff.logout.close_connection",
            "RFC 7143 §11.14.1",
            "Logout reason 1 with this connection's CID: Success",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || close_connection(ctx.clone())).await
            },
        ),
        TestCase::new(
            "ff.logout.unknown_cid",
            "RFC 7143 §11.15.1",
            "Logout reason 1 naming a CID the session does not have: CID not found",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || unknown_cid(ctx.clone())).await
            },
        ),
        TestCase::new(
            "ff.logout.recovery_erl0",
            "RFC 7143 §11.15.1",
            "Logout reason 2 (remove for recovery) at ErrorRecoveryLevel 0: connection recovery not supported",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || recovery_erl0(ctx.clone())).await
            },
        ),
        TestCase::new(
            "ff.logout.non_immediate",
            "RFC 7143 §11.14",
            "a non-immediate Logout takes its CmdSN and succeeds",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || non_immediate(ctx.clone())).await
            },
        ),
        TestCase::new(
            "ff.logout.itt_and_statsn",
            "RFC 7143 §11.15",
            "the Logout Response echoes the ITT and takes the next StatSN",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || itt_and_statsn(ctx.clone())).await
            },
        ),
    ]
}

/// A session that has answered a ping: istgt 0.4 drops more of the
/// connections whose Logout Request follows the end of login at once.
async fn open(ctx: &Ctx) -> Result<crate::probe::Probe, crate::ProbeError> {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    probe.ping(true, bytes::Bytes::new()).await?;
    Ok(probe)
}

async fn close_session(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let resp = probe.logout_session().await?;
    ensure!(
        resp.response == LogoutResponseCode::Success,
        "answered {:?}",
        resp.response
    );
    let (closed, _) = probe.wait_closed(ctx.config.pdu_timeout).await;
    ensure!(
        closed,
        "the connection stayed open after a successful session logout"
    );
    pass()
}

async fn close_connection(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let cid = probe.cid;
    let req = probe.logout_request(LogoutReason::CloseConnection, cid, true);
    let resp = probe.logout(req).await?;
    ensure!(
        resp.response == LogoutResponseCode::Success,
        "answered {:?}",
        resp.response
    );
    pass()
}

async fn unknown_cid(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let other = probe.cid.wrapping_add(7);
    let req = probe.logout_request(LogoutReason::CloseConnection, other, true);
    let resp = probe.logout(req).await;
    ctx.close(probe).await;
    let resp = resp?;
    ensure!(
        resp.response == LogoutResponseCode::CidNotFound,
        "a logout of CID {other} (not in the session) answered {:?}",
        resp.response
    );
    pass()
}

async fn recovery_erl0(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let cid = probe.cid;
    let req = probe.logout_request(LogoutReason::RemoveConnectionForRecovery, cid, true);
    let resp = probe.logout(req).await;
    ctx.close(probe).await;
    let resp = resp?;
    ensure!(
        resp.response == LogoutResponseCode::RecoveryNotSupported,
        "answered {:?}",
        resp.response
    );
    pass()
}

async fn non_immediate(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let sn = probe.cmd_sn;
    let req = probe.logout_request(LogoutReason::CloseSession, probe.cid, false);
    let resp = probe.logout(req).await?;
    ensure!(
        resp.response == LogoutResponseCode::Success,
        "answered {:?}",
        resp.response
    );
    ensure!(
        resp.exp_cmd_sn == sn.wrapping_add(1),
        "ExpCmdSN {} after a logout with CmdSN {sn}",
        resp.exp_cmd_sn
    );
    pass()
}

async fn itt_and_statsn(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let expected = probe.exp_stat_sn;
    let req = probe.logout_request(LogoutReason::CloseSession, probe.cid, true);
    let itt = req.itt;
    let resp = probe.logout(req).await?;
    ensure!(
        resp.itt == itt,
        "ITT {:?} for a logout with {:?}",
        resp.itt,
        itt
    );
    ensure!(
        resp.stat_sn == expected,
        "StatSN {} where {expected} was due",
        resp.stat_sn
    );
    pass()
}
