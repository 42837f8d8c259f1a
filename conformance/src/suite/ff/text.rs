//! Text requests in full feature phase (RFC 7143 §11.10, §11.11, §13.3).

use std::sync::Arc;

use iscsi_proto::text::KeyValue;

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass};
use crate::registry::TestCase;

/// The text tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.text.send_targets_self",
            "RFC 7143 §13.3",
            "SendTargets= (empty) in a normal session lists the session's own target",
            send_targets_self,
        ),
        TestCase::new(
            "ff.text.unknown_key",
            "RFC 7143 §6.2",
            "an unknown X- key is answered NotUnderstood",
            unknown_key,
        ),
        TestCase::new(
            "ff.text.final_ttt_reserved",
            "RFC 7143 §11.11.4",
            "the last Text Response has the F bit and TTT 0xffffffff, and echoes the ITT",
            final_ttt,
        ),
        TestCase::new(
            "ff.text.mrdsl_declared",
            "RFC 7143 §13.12",
            "MaxRecvDataSegmentLength may be declared again in full feature phase",
            mrdsl_declared,
        ),
        TestCase::new(
            "ff.text.leading_only_key_refused",
            "RFC 7143 §6.2, §13.10",
            "a login-only key (InitialR2T) in full feature phase is answered Reject or Irrelevant, never taken",
            leading_only_refused,
        ),
        TestCase::new(
            "ff.text.immediate_keeps_cmdsn",
            "RFC 7143 §4.2.2.1",
            "an immediate Text Request does not advance ExpCmdSN",
            immediate_keeps_cmdsn,
        ),
        TestCase::new(
            "ff.text.non_immediate_takes_cmdsn",
            "RFC 7143 §4.2.2.1",
            "a non-immediate Text Request advances ExpCmdSN by one",
            non_immediate_takes_cmdsn,
        ),
    ]
}

async fn send_targets_self(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let answer = probe.text(false, &[KeyValue::new("SendTargets", "")]).await;
    ctx.close(probe).await;
    let keys = answer?.keys;
    let names: Vec<&str> = keys
        .iter()
        .filter(|k| k.key == "TargetName")
        .map(|k| k.value.as_str())
        .collect();
    let own = ctx.primary().target.as_str();
    ensure!(
        names == [own],
        "SendTargets= in a session to {own} listed {names:?}"
    );
    pass()
}

async fn unknown_key(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let answer = probe
        .text(false, &[KeyValue::new("X-org.example.conformance", "1")])
        .await;
    ctx.close(probe).await;
    let keys = answer?.keys;
    match crate::probe::text::last(&keys, "X-org.example.conformance") {
        Some("NotUnderstood") => pass(),
        other => fail(format!("answered {other:?}")),
    }
}

async fn final_ttt(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let req_itt = {
        let answer = probe
            .text(false, &[KeyValue::new("SendTargets", "")])
            .await?;
        let last = answer.responses.last().cloned();
        ctx.close(probe).await;
        last
    };
    let Some(last) = req_itt else {
        return fail("no Text Response");
    };
    ensure!(last.final_, "the last Text Response has no F bit");
    ensure!(
        last.ttt.is_reserved(),
        "the final Text Response has TTT {:?}",
        last.ttt
    );
    pass()
}

async fn mrdsl_declared(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let mine = probe.negotiated.our_mrdsl.to_string();
    let answer = probe
        .text(
            false,
            &[KeyValue::new("MaxRecvDataSegmentLength", mine.as_str())],
        )
        .await;
    let ping = probe.ping(true, bytes::Bytes::new()).await;
    ctx.close(probe).await;
    let keys = answer?.keys;
    if let Some(v @ ("Reject" | "NotUnderstood" | "Irrelevant")) =
        crate::probe::text::last(&keys, "MaxRecvDataSegmentLength")
    {
        return fail(format!("the declaration was answered {v}"));
    }
    ping?;
    pass()
}

async fn leading_only_refused(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let current = if probe.negotiated.initial_r2t {
        "No"
    } else {
        "Yes"
    };
    let answer = probe
        .text(false, &[KeyValue::new("InitialR2T", current)])
        .await;
    ctx.close(probe).await;
    // A Reject PDU or a dropped connection is no answer: the key must be
    // answered in the Text Response (and a target that drops every Text
    // Request must not pass here).
    let keys = answer?.keys;
    match crate::probe::text::last(&keys, "InitialR2T") {
        Some("Reject" | "Irrelevant") => pass(),
        None => fail("InitialR2T in full feature phase was not answered"),
        Some(v) => fail(format!(
            "InitialR2T in full feature phase was negotiated: answered {v:?}"
        )),
    }
}

async fn immediate_keeps_cmdsn(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let next = probe.cmd_sn;
    let answer = probe.text(true, &[KeyValue::new("SendTargets", "")]).await;
    ctx.close(probe).await;
    let answer = answer?;
    let exp = answer.responses.last().map_or(0, |r| r.exp_cmd_sn);
    ensure!(
        exp == next,
        "an immediate Text Request moved ExpCmdSN from {next} to {exp}"
    );
    pass()
}

async fn non_immediate_takes_cmdsn(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let next = probe.cmd_sn;
    let answer = probe.text(false, &[KeyValue::new("SendTargets", "")]).await;
    ctx.close(probe).await;
    let answer = answer?;
    let exp = answer.responses.last().map_or(0, |r| r.exp_cmd_sn);
    let want = next.wrapping_add(answer.responses.len() as u32);
    ensure!(
        exp == want,
        "after {} non-immediate Text Request(s) from CmdSN {next}, ExpCmdSN is {exp}",
        answer.responses.len()
    );
    pass()
}
