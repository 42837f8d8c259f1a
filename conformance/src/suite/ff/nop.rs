//! NOP-Out and NOP-In (RFC 7143 §11.18, §11.19).

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, Lun, NopOut, Pdu, Ttt};

use crate::context::{Ctx, pattern};
use crate::ensure;
use crate::outcome::{TestResult, fail, pass};
use crate::registry::TestCase;

/// The NOP tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.nop.ping_immediate",
            "RFC 7143 §11.19",
            "an immediate NOP-Out is answered by a NOP-In with its ITT and a reserved TTT",
            ping_immediate,
        ),
        TestCase::new(
            "ff.nop.ping_non_immediate",
            "RFC 7143 §11.18",
            "a non-immediate NOP-Out takes its CmdSN: ExpCmdSN moves past it",
            ping_non_immediate,
        ),
        TestCase::new(
            "ff.nop.immediate_keeps_cmdsn",
            "RFC 7143 §4.2.2.1",
            "an immediate NOP-Out does not advance ExpCmdSN",
            immediate_keeps_cmdsn,
        ),
        TestCase::new(
            "ff.nop.echo_data",
            "RFC 7143 §11.19.2",
            "4 KiB of ping data come back unchanged",
            echo_data,
        ),
        TestCase::new(
            "ff.nop.echo_empty",
            "RFC 7143 §11.19.2",
            "a ping without data is answered without data",
            echo_empty,
        ),
        TestCase::new(
            "ff.nop.no_answer_wanted",
            "RFC 7143 §11.18.1",
            "a NOP-Out with the reserved ITT gets no answer",
            no_answer_wanted,
        ),
        TestCase::new(
            "ff.nop.stat_sn_advances",
            "RFC 7143 §11.19.5",
            "each answering NOP-In takes the next StatSN",
            stat_sn_advances,
        ),
    ]
}

async fn ping_immediate(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let nop = probe.nop_out(true, Bytes::new());
    let itt = nop.itt;
    probe.send(&Pdu::NopOut(nop)).await?;
    let answer = probe.recv_reply("a NOP-In").await?;
    ctx.close(probe).await;
    match answer {
        Pdu::NopIn(n) => {
            ensure!(
                n.itt == itt,
                "the NOP-In carries ITT {:?}, the ping {:?}",
                n.itt,
                itt
            );
            ensure!(
                n.ttt.is_reserved(),
                "the answering NOP-In has TTT {:?}, not 0xffffffff",
                n.ttt
            );
            pass()
        }
        other => fail(format!("a ping was answered with {}", other.opcode())),
    }
}

async fn ping_non_immediate(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let sent = probe.cmd_sn;
    let n = probe.ping(false, Bytes::new()).await?;
    ctx.close(probe).await;
    ensure!(
        n.exp_cmd_sn == sent.wrapping_add(1),
        "after a ping with CmdSN {sent}, ExpCmdSN is {}",
        n.exp_cmd_sn
    );
    pass()
}

async fn immediate_keeps_cmdsn(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let next = probe.cmd_sn;
    let n = probe.ping(true, Bytes::new()).await?;
    ctx.close(probe).await;
    ensure!(
        n.exp_cmd_sn == next,
        "an immediate ping moved ExpCmdSN from {next} to {}",
        n.exp_cmd_sn
    );
    pass()
}

async fn echo_data(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let len = 4096
        .min(probe.negotiated.their_mrdsl as usize)
        .min(probe.negotiated.our_mrdsl as usize);
    let data = pattern(len);
    let n = probe.ping(true, data.clone()).await?;
    ctx.close(probe).await;
    ensure!(
        n.data == data,
        "{} bytes sent, {} came back{}",
        data.len(),
        n.data.len(),
        if n.data.len() == data.len() {
            " changed"
        } else {
            ""
        }
    );
    pass()
}

async fn echo_empty(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let n = probe.ping(true, Bytes::new()).await?;
    ctx.close(probe).await;
    ensure!(
        n.data.is_empty(),
        "an empty ping came back with {} bytes",
        n.data.len()
    );
    pass()
}

async fn no_answer_wanted(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let nop = NopOut {
        immediate: true,
        lun: Lun::default(),
        itt: Itt::RESERVED,
        ttt: Ttt::RESERVED,
        cmd_sn: probe.cmd_sn,
        exp_stat_sn: probe.exp_stat_sn,
        data: Bytes::new(),
    };
    probe.send(&Pdu::NopOut(nop)).await?;
    let heard = probe.quiet(ctx.quiet()).await?;
    // The session must still be alive.
    let alive = probe.ping(true, Bytes::new()).await;
    ctx.close(probe).await;
    if let Some(pdu) = heard {
        return fail(format!(
            "a NOP-Out with ITT 0xffffffff was answered with {}",
            pdu.opcode()
        ));
    }
    alive?;
    pass()
}

async fn stat_sn_advances(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let a = probe.ping(true, Bytes::new()).await?;
    let b = probe.ping(true, Bytes::new()).await?;
    ctx.close(probe).await;
    ensure!(
        b.stat_sn == a.stat_sn.wrapping_add(1),
        "StatSN {} then {}",
        a.stat_sn,
        b.stat_sn
    );
    pass()
}
