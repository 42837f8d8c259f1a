//! Command numbering (RFC 7143 §4.2.2): the window, in-order delivery,
//! immediate commands, duplicates, and StatSN.

use std::sync::Arc;

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass};
use crate::registry::TestCase;
use crate::suite::ff::tur;

/// The numbering tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.cmdsn.in_order",
            "RFC 7143 §4.2.2.1",
            "three commands in CmdSN order complete and ExpCmdSN ends past the last",
            in_order,
        ),
        TestCase::new(
            "ff.cmdsn.gap_is_held",
            "RFC 7143 §4.2.2.1",
            "a command after a CmdSN gap is not executed until the gap is filled; then both complete",
            gap_is_held,
        ),
        TestCase::new(
            "ff.cmdsn.outside_window_ignored",
            "RFC 7143 §4.2.2.1",
            "a non-immediate command beyond MaxCmdSN is silently ignored and the session goes on",
            outside_window,
        ),
        TestCase::new(
            "ff.cmdsn.duplicate_ignored",
            "RFC 7143 §4.2.2.1",
            "a non-immediate command reusing a completed CmdSN is silently ignored",
            duplicate_ignored,
        ),
        TestCase::new(
            "ff.cmdsn.immediate_command",
            "RFC 7143 §3.2.2.1",
            "an immediate SCSI command completes without advancing ExpCmdSN",
            immediate_command,
        ),
        TestCase::new(
            "ff.cmdsn.window_open",
            "RFC 7143 §4.2.2.1",
            "every response keeps MaxCmdSN >= ExpCmdSN - 1 and ExpCmdSN never goes back",
            window_open,
        ),
        TestCase::new(
            "ff.cmdsn.queue_of_eight",
            "RFC 7143 §4.2.2.1",
            "as many commands as the window allows (up to 8) outstanding at once all complete",
            queue_of_eight,
        ),
        TestCase::new(
            "ff.statsn.consecutive",
            "RFC 7143 §4.2.2.2",
            "responses carry consecutive StatSNs",
            statsn_consecutive,
        ),
    ]
}

async fn in_order(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let first = probe.cmd_sn;
    let mut pending = Vec::new();
    for _ in 0..3 {
        let req = tur(&ctx, &probe);
        pending.push(probe.submit(req).await?);
    }
    let done = probe.complete(pending).await?;
    let window = probe.window;
    ctx.close(probe).await;
    ensure!(
        done.iter().all(|d| d.is_good()),
        "not all GOOD: {:?}",
        done.iter().map(|d| d.describe()).collect::<Vec<_>>()
    );
    let exp = window.map_or(0, |w| w.0);
    ensure!(
        exp == first.wrapping_add(3),
        "ExpCmdSN {exp} after CmdSN {first}..{}",
        first.wrapping_add(2)
    );
    pass()
}

async fn gap_is_held(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let n = probe.cmd_sn;
    let mut later = tur(&ctx, &probe);
    later.cmd_sn = Some(n.wrapping_add(1));
    let held = probe.submit(later).await?;
    let early = probe.quiet(ctx.quiet()).await?;
    if let Some(pdu) = early {
        drop(probe);
        return fail(format!(
            "CmdSN {} was answered ({}) before CmdSN {n} was sent",
            n.wrapping_add(1),
            pdu.opcode()
        ));
    }
    let mut fill = tur(&ctx, &probe);
    fill.cmd_sn = Some(n);
    let filler = probe.submit(fill).await?;
    probe.cmd_sn = n.wrapping_add(2);
    let done = probe.complete(vec![filler, held]).await?;
    ctx.close(probe).await;
    ensure!(
        done.iter().all(|d| d.is_good()),
        "{:?}",
        done.iter().map(|d| d.describe()).collect::<Vec<_>>()
    );
    pass()
}

async fn outside_window(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, max) = probe.window.unwrap_or((probe.cmd_sn, probe.cmd_sn));
    let mut far = tur(&ctx, &probe);
    far.cmd_sn = Some(max.wrapping_add(1000));
    let _ignored = probe.submit(far).await?;
    let heard = probe.quiet(ctx.quiet()).await;
    let heard = match heard {
        Ok(h) => h,
        Err(e) if e.is_closed() => {
            return fail("the target closed the connection over a command outside the window");
        }
        Err(e) => return Err(e),
    };
    let after = probe.execute(tur(&ctx, &probe)).await;
    ctx.close(probe).await;
    if let Some(pdu) = heard {
        return fail(format!(
            "a command with CmdSN MaxCmdSN+1000 was answered with {}",
            pdu.opcode()
        ));
    }
    let after = after?;
    ensure!(
        after.is_good(),
        "the next in-window command: {}",
        after.describe()
    );
    pass()
}

async fn duplicate_ignored(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let used = probe.execute(tur(&ctx, &probe)).await?;
    ensure!(used.is_good(), "TEST UNIT READY: {}", used.describe());
    let mut dup = tur(&ctx, &probe);
    dup.cmd_sn = Some(used.cmd_sn);
    let _ignored = probe.submit(dup).await?;
    let heard = match probe.quiet(ctx.quiet()).await {
        Ok(h) => h,
        Err(e) if e.is_closed() => {
            return fail(
                "the target closed the connection over a duplicate CmdSN instead of ignoring it",
            );
        }
        Err(e) => return Err(e),
    };
    let after = probe.execute(tur(&ctx, &probe)).await;
    ctx.close(probe).await;
    if let Some(pdu) = heard {
        return fail(format!(
            "a duplicate CmdSN {} was answered with {}",
            used.cmd_sn,
            pdu.opcode()
        ));
    }
    ensure!(
        after?.is_good(),
        "the next command after the duplicate failed"
    );
    pass()
}

async fn immediate_command(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let next = probe.cmd_sn;
    let mut req = tur(&ctx, &probe);
    req.immediate = true;
    let out = probe.execute(req).await?;
    let window = probe.window;
    ctx.close(probe).await;
    ensure!(
        out.is_good(),
        "immediate TEST UNIT READY: {}",
        out.describe()
    );
    let exp = window.map_or(0, |w| w.0);
    ensure!(
        exp == next,
        "an immediate command moved ExpCmdSN from {next} to {exp}"
    );
    pass()
}

fn before(a: u32, b: u32) -> bool {
    // RFC 1982 serial number arithmetic, 32 bits.
    a != b && b.wrapping_sub(a) < 1 << 31
}

async fn window_open(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let mut last_exp: Option<u32> = None;
    for _ in 0..6 {
        let out = probe.execute(tur(&ctx, &probe)).await?;
        let Some(resp) = out.response_pdu else {
            continue;
        };
        let (exp, max) = (resp.exp_cmd_sn, resp.max_cmd_sn);
        if before(max, exp.wrapping_sub(1)) {
            ctx.close(probe).await;
            return fail(format!("MaxCmdSN {max} < ExpCmdSN {exp} - 1"));
        }
        if let Some(prev) = last_exp
            && before(exp, prev)
        {
            ctx.close(probe).await;
            return fail(format!("ExpCmdSN went back from {prev} to {exp}"));
        }
        last_exp = Some(exp);
    }
    ctx.close(probe).await;
    pass()
}

async fn queue_of_eight(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (exp, max) = probe.window.unwrap_or((probe.cmd_sn, probe.cmd_sn));
    let room = max.wrapping_sub(exp).wrapping_add(1).min(8) as usize;
    let mut pending = Vec::new();
    for _ in 0..room.max(1) {
        let req = tur(&ctx, &probe);
        pending.push(probe.submit(req).await?);
    }
    let done = probe.complete(pending).await?;
    ctx.close(probe).await;
    ensure!(
        done.len() == room.max(1) && done.iter().all(|d| d.is_good()),
        "{} of {} commands GOOD",
        done.iter().filter(|d| d.is_good()).count(),
        room.max(1)
    );
    pass()
}

async fn statsn_consecutive(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let mut sns = Vec::new();
    for _ in 0..4 {
        let out = probe.execute(tur(&ctx, &probe)).await?;
        sns.push(out.stat_sn);
    }
    ctx.close(probe).await;
    for w in sns.windows(2) {
        ensure!(w[1] == w[0].wrapping_add(1), "StatSNs {sns:?}");
    }
    pass()
}
