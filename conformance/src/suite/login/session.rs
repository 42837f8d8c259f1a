//! Sessions: ISID and TSIH rules, reinstatement and connection limits
//! (RFC 7143 §4.4.3, §6.3.5, §11.12.5, §11.12.6).

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::LoginStatus;

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::random_isid;
use crate::registry::TestCase;
use crate::suite::login::basic::attempt;
use crate::suite::support::{refused_or_closed, refused_with};

/// The session tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "login.session.two_isids_coexist",
            "RFC 7143 §4.4.3",
            "two sessions with different ISIDs both work, with different TSIHs",
            two_isids,
        ),
        TestCase::new(
            "login.session.reinstatement",
            "RFC 7143 §6.3.5",
            "a new login with a live session's ISID and TSIH 0 succeeds and the old connection is closed",
            reinstatement,
        ),
        TestCase::new(
            "login.session.reinstated_tsih_new",
            "RFC 7143 §6.3.5",
            "the reinstated session gets a TSIH of its own, not the old one's",
            reinstated_tsih,
        ),
        TestCase::new(
            "login.session.connection_limit",
            "RFC 7143 §13.2",
            "with MaxConnections=1, a second connection joining the session is refused with 0206",
            connection_limit,
        ),
        TestCase::new(
            "login.session.tsih_with_other_isid",
            "RFC 7143 §11.12.6",
            "a live session's TSIH with another ISID is refused (ISID and TSIH name a session together)",
            tsih_other_isid,
        ),
        TestCase::new(
            "login.session.same_cid_reinstates_connection",
            "RFC 7143 §6.3.4",
            "with MaxConnections=1, a login with the session's TSIH and the same CID is connection reinstatement or a clean refusal",
            same_cid,
        ),
        TestCase::new(
            "login.session.tsih_only_in_final_response",
            "RFC 7143 §11.13.3",
            "a new session's TSIH is non-zero and appears only in the final Login Response (0 before it)",
            tsih_only_in_final,
        ),
        TestCase::new(
            "login.session.isid_echoed",
            "RFC 7143 §11.13",
            "every Login Response carries the ISID of the Login Request it answers",
            isid_echoed,
        ),
    ]
}

async fn tsih_only_in_final(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    if report.ok() {
        ctx.close(probe).await;
    }
    ensure!(report.ok(), "login: {}", report.describe());
    let Some((last, before)) = report.responses.split_last() else {
        return fail("the login reached full feature phase without a Login Response");
    };
    if let Some((i, r)) = before.iter().enumerate().find(|(_, r)| r.tsih != 0) {
        return fail(format!(
            "Login Response {} of {} (stage {:?}, not final) carries TSIH {:#06x}: a new session's TSIH goes in the final response only",
            i + 1,
            report.responses.len(),
            r.csg,
            r.tsih
        ));
    }
    ensure!(
        last.tsih != 0,
        "the final Login Response of a new session carries TSIH 0"
    );
    pass()
}

async fn isid_echoed(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let isid = random_isid();
    let mut spec = ctx.spec(&ep);
    spec.isid = Some(isid);
    let (probe, report) = attempt(&ctx, &spec).await?;
    if report.ok() {
        ctx.close(probe).await;
    }
    ensure!(report.ok(), "login: {}", report.describe());
    if let Some((i, r)) = report
        .responses
        .iter()
        .enumerate()
        .find(|(_, r)| r.isid != isid)
    {
        return fail(format!(
            "Login Response {} of {} carries ISID {:02x?}, the request {:02x?}",
            i + 1,
            report.responses.len(),
            r.isid.0,
            isid.0
        ));
    }
    pass()
}

async fn two_isids(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (mut a, ra) = attempt(&ctx, &ctx.spec(&ep)).await?;
    ensure!(ra.ok(), "first session: {}", ra.describe());
    let (mut b, rb) = attempt(&ctx, &ctx.spec(&ep)).await?;
    ensure!(rb.ok(), "second session: {}", rb.describe());
    let pa = a.ping(true, Bytes::from_static(b"a")).await;
    let pb = b.ping(true, Bytes::from_static(b"b")).await;
    let (ta, tb) = (a.tsih, b.tsih);
    ctx.close(a).await;
    ctx.close(b).await;
    pa?;
    pb?;
    ensure!(ta != tb, "both sessions got TSIH {ta:#x}");
    pass()
}

async fn reinstatement(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let isid = random_isid();
    let mut spec = ctx.spec(&ep);
    spec.isid = Some(isid);
    let (mut old, r1) = attempt(&ctx, &spec).await?;
    ensure!(r1.ok(), "first login: {}", r1.describe());
    let (mut new, r2) = attempt(&ctx, &spec).await?;
    ensure!(r2.ok(), "the reinstating login: {}", r2.describe());
    let (closed, _) = old.wait_closed(ctx.config.pdu_timeout).await;
    let old_alive = if closed {
        false
    } else {
        old.ping(true, Bytes::new()).await.is_ok()
    };
    let ping = new.ping(true, Bytes::new()).await;
    ctx.close(new).await;
    ensure!(
        !old_alive,
        "the old session's connection still answers after its ISID was reinstated"
    );
    ensure!(
        ping.is_ok(),
        "the reinstated session does not answer: {}",
        ping.err().map(|e| e.to_string()).unwrap_or_default()
    );
    pass()
}

async fn reinstated_tsih(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.isid = Some(random_isid());
    let (old, r1) = attempt(&ctx, &spec).await?;
    ensure!(r1.ok(), "first login: {}", r1.describe());
    let (new, r2) = attempt(&ctx, &spec).await?;
    ensure!(r2.ok(), "the reinstating login: {}", r2.describe());
    let (t1, t2) = (old.tsih, new.tsih);
    drop(old);
    ctx.close(new).await;
    ensure!(t2 != 0, "TSIH 0 for the reinstated session");
    // RFC 7143 §6.3.5: reinstatement is a new session; TSIH reuse while the old
    // one is being torn down would make the two indistinguishable.
    ensure!(t1 != t2, "the new session reuses the old TSIH {t1:#x}");
    pass()
}

async fn connection_limit(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let spec = ctx.spec(&ep).set("MaxConnections", "1");
    let (first, r1) = attempt(&ctx, &spec).await?;
    ensure!(r1.ok(), "first connection: {}", r1.describe());
    if first.negotiated.max_connections != 1 {
        let n = first.negotiated.max_connections;
        ctx.close(first).await;
        return fail(format!("MaxConnections=1 offered, {n} agreed (Min)"));
    }
    let mut join = spec.clone();
    join.isid = Some(first.isid);
    join.tsih = first.tsih;
    join.cid = 1;
    let (second, r2) = attempt(&ctx, &join).await?;
    let joined = r2.ok();
    if joined {
        drop(second);
    }
    ctx.close(first).await;
    ensure!(
        !joined,
        "a second connection joined a session that agreed MaxConnections=1"
    );
    refused_with(&r2, LoginStatus::TOO_MANY_CONNECTIONS)
}

async fn tsih_other_isid(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (first, r1) = attempt(&ctx, &ctx.spec(&ep)).await?;
    ensure!(r1.ok(), "first login: {}", r1.describe());
    let mut other = ctx.spec(&ep);
    other.isid = Some(random_isid());
    other.tsih = first.tsih;
    other.cid = 1;
    let (second, r2) = attempt(&ctx, &other).await?;
    let joined = r2.ok();
    if joined {
        drop(second);
    }
    ctx.close(first).await;
    ensure!(
        !joined,
        "a login with another ISID joined the session by its TSIH alone"
    );
    refused_or_closed(&r2)
}

async fn same_cid(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let spec = ctx.spec(&ep).set("MaxConnections", "1");
    let (mut first, r1) = attempt(&ctx, &spec).await?;
    ensure!(r1.ok(), "first connection: {}", r1.describe());
    let mut again = spec.clone();
    again.isid = Some(first.isid);
    again.tsih = first.tsih;
    again.cid = first.cid;
    let (mut second, r2) = attempt(&ctx, &again).await?;
    if r2.ok() {
        // Connection reinstatement (§6.3.4): the old connection must go.
        let (closed, _) = first.wait_closed(ctx.config.pdu_timeout).await;
        let old_alive = !closed && first.ping(true, Bytes::new()).await.is_ok();
        let new_ok = second.ping(true, Bytes::new()).await.is_ok();
        ctx.close(second).await;
        ensure!(
            !old_alive,
            "after connection reinstatement the old connection still answers"
        );
        ensure!(new_ok, "the reinstated connection does not answer");
        return pass();
    }
    ctx.close(first).await;
    match r2.status() {
        // At ErrorRecoveryLevel 0 a target may refuse connection reinstatement.
        Some(s) if s.class == 2 || s.class == 3 => {
            skip(format!("the target does not reinstate connections: {s}"))
        }
        _ => fail(format!("the reinstating login {}", r2.describe())),
    }
}
