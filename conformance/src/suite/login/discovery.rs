//! Discovery sessions (RFC 7143 §4.3, §13.3, §13.21, Appendix C).

use std::sync::Arc;

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::KeyValue;

use crate::context::Ctx;
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass};
use crate::probe::{Probe, ScsiRequest};
use crate::registry::TestCase;
use crate::suite::support::retry_dropped_logout;

/// The discovery tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "login.discovery.login",
            "RFC 7143 §13.21",
            "a SessionType=Discovery login without TargetName reaches full feature phase",
            login,
        ),
        TestCase::new(
            "login.discovery.send_targets_all",
            "RFC 7143 §13.3",
            "SendTargets=All lists the target under test with at least one TargetAddress",
            send_targets_all,
        ),
        TestCase::new(
            "login.discovery.send_targets_named",
            "RFC 7143 §13.3",
            "SendTargets=<iqn> lists that target and no other",
            send_targets_named,
        ),
        TestCase::new(
            "login.discovery.send_targets_unknown",
            "RFC 7143 §13.3",
            "SendTargets=<unknown iqn> lists nothing",
            send_targets_unknown,
        ),
        TestCase::new(
            "login.discovery.target_address_format",
            "RFC 7143 §13.8",
            "every TargetAddress is domainname[:port],portal-group-tag",
            target_address_format,
        ),
        TestCase::new(
            "login.discovery.scsi_refused",
            "RFC 7143 §4.3",
            "a SCSI command in a discovery session is rejected or ends the session",
            scsi_refused,
        ),
        TestCase::new(
            "login.discovery.logout",
            "RFC 7143 §11.14",
            "a discovery session closes with a successful Logout Response",
            |ctx| async move {
                retry_dropped_logout("the Logout Request", || logout(ctx.clone())).await
            },
        ),
    ]
}

async fn open(ctx: &Ctx) -> Result<Probe, ProbeError> {
    let ep = ctx.primary().clone();
    let (probe, _) = ctx.open_with(&ep, &ctx.discovery_spec(&ep)).await?;
    Ok(probe)
}

async fn send_targets(ctx: &Ctx, value: &str) -> Result<Vec<KeyValue>, ProbeError> {
    let mut probe = open(ctx).await?;
    let answer = probe
        .text(false, &[KeyValue::new("SendTargets", value)])
        .await;
    ctx.close(probe).await;
    Ok(answer?.keys)
}

async fn login(ctx: Arc<Ctx>) -> TestResult {
    let probe = open(&ctx).await?;
    ctx.close(probe).await;
    pass()
}

async fn send_targets_all(ctx: Arc<Ctx>) -> TestResult {
    let keys = send_targets(&ctx, "All").await?;
    let target = ctx.primary().target.clone();
    let pos = keys
        .iter()
        .position(|kv| kv.key == "TargetName" && kv.value == target);
    let Some(pos) = pos else {
        return fail(format!(
            "{target} is not among the {} keys of the answer",
            keys.len()
        ));
    };
    let addresses = keys[pos + 1..]
        .iter()
        .take_while(|kv| kv.key != "TargetName")
        .filter(|kv| kv.key == "TargetAddress")
        .count();
    ensure!(addresses >= 1, "{target} is listed without a TargetAddress");
    pass()
}

async fn send_targets_named(ctx: Arc<Ctx>) -> TestResult {
    let target = ctx.primary().target.clone();
    let keys = send_targets(&ctx, &target).await?;
    let names: Vec<&str> = keys
        .iter()
        .filter(|k| k.key == "TargetName")
        .map(|k| k.value.as_str())
        .collect();
    ensure!(
        names == [target.as_str()],
        "SendTargets={target} listed {names:?}"
    );
    pass()
}

async fn send_targets_unknown(ctx: Arc<Ctx>) -> TestResult {
    let keys = send_targets(&ctx, "iqn.1999-01.org.example:no-such-target").await?;
    let names: Vec<&str> = keys
        .iter()
        .filter(|k| k.key == "TargetName")
        .map(|k| k.value.as_str())
        .collect();
    ensure!(
        names.is_empty(),
        "a target nobody has was answered with {names:?}"
    );
    pass()
}

async fn target_address_format(ctx: Arc<Ctx>) -> TestResult {
    let keys = send_targets(&ctx, "All").await?;
    let addresses: Vec<&str> = keys
        .iter()
        .filter(|k| k.key == "TargetAddress")
        .map(|k| k.value.as_str())
        .collect();
    ensure!(!addresses.is_empty(), "no TargetAddress in the answer");
    for a in addresses {
        match iscsi_proto::text::TargetAddress::parse(a) {
            Ok(parsed) if parsed.tpgt.is_some() => {}
            Ok(_) => return fail(format!("TargetAddress={a:?} has no portal group tag")),
            Err(e) => return fail(format!("TargetAddress={a:?} does not parse: {e}")),
        }
    }
    pass()
}

async fn scsi_refused(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let lun = Lun::default();
    let pending = probe
        .submit(ScsiRequest::read(lun, Cdb::inquiry(36).to_bytes(), 36))
        .await;
    if pending.is_err() {
        return pass();
    }
    match probe.recv_reply("a Reject").await {
        Ok(iscsi_proto::pdu::Pdu::Reject(_)) => pass(),
        Ok(iscsi_proto::pdu::Pdu::ScsiResponse(r)) if r.status != 0 => pass(),
        Ok(other) => fail(format!(
            "a SCSI command in a discovery session was answered with {}",
            other.opcode()
        )),
        Err(e) if e.is_closed() => pass(),
        Err(e) => Err(e),
    }
}

async fn logout(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let resp = probe.logout_session().await?;
    ensure!(
        resp.response == iscsi_proto::pdu::LogoutResponseCode::Success,
        "Logout Response {:?}",
        resp.response
    );
    pass()
}
