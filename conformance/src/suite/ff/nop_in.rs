//! NOP-In pings the target sends on its own (RFC 7143 §11.19) and the
//! NOP-Out that answers them (§11.18). They run on the `--ping-url`
//! target when one is given (a target configured with a short NOP
//! interval), else on the LU under test; a target that sends no ping within
//! the wait is skipped with that reason.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{NopIn, Pdu};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::Probe;
use crate::registry::TestCase;

/// Pings answered before the session is checked to be still alive: more
/// than the few missed pings after which targets drop a connection.
const PINGS_ANSWERED: usize = 3;

/// The tests of this file.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.nop_in.ping_fields",
            "RFC 7143 §11.19.1, §11.19.2",
            "a target-sent NOP-In has ITT 0xffffffff, and carries the next StatSN without taking it",
            ping_fields,
        ),
        TestCase::new(
            "ff.nop_in.answered_ping_keeps_session",
            "RFC 7143 §11.18.1, §11.18.2",
            "NOP-Outs echoing the pings' TTT (ITT 0xffffffff) get no answer and keep the session in full feature phase",
            answered_ping_keeps_session,
        ),
    ]
}

/// The next target-sent NOP-In, or why there is none. Other PDUs are a
/// failure: the session is idle.
async fn next_ping(ctx: &Ctx, probe: &mut Probe) -> Result<Result<NopIn, String>, ProbeError> {
    let wait = ctx.config.nop_in_wait;
    match probe.recv_within("a NOP-In ping", wait).await {
        Ok(Pdu::NopIn(nop)) if nop.itt.is_reserved() => Ok(Ok(nop)),
        Ok(other) => Ok(Err(format!(
            "an idle session received {} instead of a ping",
            other.opcode()
        ))),
        Err(ProbeError::Timeout { .. }) => Ok(Err(String::new())),
        Err(e) => Err(e),
    }
}

fn no_ping(ctx: &Ctx) -> TestResult {
    skip(format!(
        "the target sent no NOP-In within {:?} of idle full feature phase (it sends no pings, or less often: give --ping-url for a target with a short NOP interval, or a longer --nop-in-wait)",
        ctx.config.nop_in_wait
    ))
}

async fn open(ctx: &Ctx) -> Result<Probe, ProbeError> {
    let ep = ctx
        .config
        .pinging
        .clone()
        .unwrap_or_else(|| ctx.primary().clone());
    let (probe, _) = ctx.open_with(&ep, &ctx.spec(&ep)).await?;
    Ok(probe)
}

async fn ping_fields(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    // The target's next StatSN, before the ping moves the probe's copy.
    let next_stat_sn = probe.exp_stat_sn;
    let ping = next_ping(&ctx, &mut probe).await?;
    let ping = match ping {
        Ok(p) => p,
        Err(why) if why.is_empty() => {
            ctx.close(probe).await;
            return no_ping(&ctx);
        }
        Err(why) => {
            ctx.close(probe).await;
            return fail(why);
        }
    };
    if !ping.ttt.is_reserved() {
        let answer = probe.ping_answer(ping.ttt, ping.lun);
        probe.send(&answer).await?;
    }
    // StatSN is not taken: the next response carries the same one.
    let echo = probe.ping(true, Bytes::new()).await;
    ctx.close(probe).await;
    ensure!(
        ping.stat_sn == next_stat_sn,
        "the ping carries StatSN {}, the connection's next StatSN is {next_stat_sn}",
        ping.stat_sn
    );
    let echo = echo?;
    ensure!(
        echo.stat_sn == ping.stat_sn,
        "the ping took StatSN {}: the next response carries {}",
        ping.stat_sn,
        echo.stat_sn
    );
    pass()
}

async fn answered_ping_keeps_session(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = open(&ctx).await?;
    let started = Instant::now();
    let mut wanting_answer = 0;
    for seen in 0..PINGS_ANSWERED {
        match next_ping(&ctx, &mut probe).await? {
            Ok(ping) => {
                if !ping.ttt.is_reserved() {
                    wanting_answer += 1;
                    let answer = probe.ping_answer(ping.ttt, ping.lun);
                    probe.send(&answer).await?;
                }
            }
            Err(why) if why.is_empty() && seen == 0 => {
                ctx.close(probe).await;
                return no_ping(&ctx);
            }
            Err(why) if why.is_empty() => {
                ctx.close(probe).await;
                return fail(format!(
                    "after {seen} answered pings the target sent no more within {:?}",
                    ctx.config.nop_in_wait
                ));
            }
            Err(why) => {
                ctx.close(probe).await;
                return fail(format!("after {seen} answered pings: {why}"));
            }
        }
    }
    if wanting_answer == 0 {
        ctx.close(probe).await;
        return skip(
            "the target's pings all carry TTT 0xffffffff: they want no NOP-Out, so there is nothing to answer",
        );
    }
    // Our answers are no pings of ours: the session must be alive and the
    // first PDU back must answer this ping, not one of those NOP-Outs.
    let ours = probe.nop_out(true, Bytes::new());
    let itt = ours.itt;
    probe.send(&Pdu::NopOut(ours)).await?;
    let answer = probe.recv_reply("the answer to our ping").await;
    ctx.close(probe).await;
    match answer {
        Ok(Pdu::NopIn(n)) if n.itt == itt => pass(),
        Ok(other) => fail(format!(
            "after {wanting_answer} answered pings in {:?}, our ping got {}",
            started.elapsed(),
            other.opcode()
        )),
        Err(e) if e.is_closed() => fail(format!(
            "the target closed the connection although its {wanting_answer} pings were answered"
        )),
        Err(e) => Err(e),
    }
}
