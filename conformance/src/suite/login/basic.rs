//! The login phase itself (RFC 7143 §6.3, §11.12, §11.13): what a Login
//! Response must carry, what a target must refuse, and the ways through
//! the stages an initiator may choose.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::LoginStatus;

use crate::context::Ctx;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::{LoginReport, LoginSpec, Probe};
use crate::registry::TestCase;
use crate::suite::support::{refused_or_closed, refused_with};
use crate::{ensure, skip_if};

/// The login tests of this file.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "login.basic.minimal",
            "RFC 7143 §6.3",
            "a login with the required keys reaches full feature phase and the session answers a ping",
            minimal,
        ),
        TestCase::new(
            "login.basic.tsih_assigned",
            "RFC 7143 §11.13.4",
            "the final Login Response of a new session carries a non-zero TSIH",
            tsih_assigned,
        ),
        TestCase::new(
            "login.basic.isid_echoed",
            "RFC 7143 §11.13.3",
            "every Login Response echoes the ISID",
            isid_echoed,
        ),
        TestCase::new(
            "login.basic.itt_echoed",
            "RFC 7143 §11.13",
            "every Login Response echoes the Initiator Task Tag",
            itt_echoed,
        ),
        TestCase::new(
            "login.basic.version_active",
            "RFC 7143 §11.13.2",
            "Version-active is 0 and Version-max at least 0",
            version_active,
        ),
        TestCase::new(
            "login.basic.version_range",
            "RFC 7143 §11.12.4",
            "a Version-min..max range containing 0 is accepted with Version-active 0",
            version_range,
        ),
        TestCase::new(
            "login.basic.unsupported_version",
            "RFC 7143 §11.13.5",
            "Version-min 1 is refused with 0205 (unsupported version)",
            unsupported_version,
        ),
        TestCase::new(
            "login.basic.portal_group_tag",
            "RFC 7143 §13.9",
            "the target declares TargetPortalGroupTag during a normal session's login",
            portal_group_tag,
        ),
        TestCase::new(
            "login.basic.initial_cmdsn",
            "RFC 7143 §4.2.2.1",
            "ExpCmdSN after login equals the CmdSN the login carried, and the window is open",
            initial_cmdsn,
        ),
        TestCase::new(
            "login.basic.missing_initiator_name",
            "RFC 7143 §13.5",
            "a first request without InitiatorName is refused with 0207 (missing parameter)",
            missing_initiator_name,
        ),
        TestCase::new(
            "login.basic.missing_target_name",
            "RFC 7143 §13.4",
            "a normal session's first request without TargetName is refused with 0207",
            missing_target_name,
        ),
        TestCase::new(
            "login.basic.unknown_target",
            "RFC 7143 §11.13.5",
            "a TargetName the target does not have is refused with 0203 (not found)",
            unknown_target,
        ),
        TestCase::new(
            "login.basic.bad_session_type",
            "RFC 7143 §13.21",
            "SessionType=Bogus is answered Reject or refused",
            bad_session_type,
        ),
        TestCase::new(
            "login.basic.unknown_key",
            "RFC 7143 §6.2",
            "an unknown X- key is answered NotUnderstood and the login completes",
            unknown_key,
        ),
        TestCase::new(
            "login.basic.duplicate_key",
            "RFC 7143 §6.2",
            "a key negotiated twice in one login is refused as an initiator error",
            duplicate_key,
        ),
        TestCase::new(
            "login.basic.initiator_alias",
            "RFC 7143 §13.7",
            "the declarative InitiatorAlias needs no answer and the login completes",
            initiator_alias,
        ),
        TestCase::new(
            "login.basic.split_text",
            "RFC 7143 §6.2",
            "the first request's text sent in 32-byte pieces with the C bit is reassembled",
            split_text,
        ),
        TestCase::new(
            "login.basic.skip_operational",
            "RFC 7143 §6.3",
            "a transit from the security stage straight to full feature phase is honoured",
            skip_operational,
        ),
        TestCase::new(
            "login.basic.start_operational",
            "RFC 7143 §6.3",
            "a login starting in the operational stage: accepted without CHAP, refused when the target requires it",
            start_operational,
        ),
        TestCase::new(
            "login.basic.unknown_tsih",
            "RFC 7143 §11.13.5",
            "a non-zero TSIH naming no session is refused with 020A (session does not exist)",
            unknown_tsih,
        ),
        TestCase::new(
            "login.basic.stat_sn_follows",
            "RFC 7143 §11.13.4",
            "StatSN increases by one per Login Response",
            stat_sn_follows,
        ),
    ]
}

/// Connects and logs in with `spec`; the report whatever the end.
pub async fn attempt(
    ctx: &Ctx,
    spec: &LoginSpec,
) -> Result<(Probe, LoginReport), crate::ProbeError> {
    let ep = ctx.primary().clone();
    let mut probe = ctx.connect(&ep).await?;
    let report = probe.login(spec).await?;
    Ok((probe, report))
}

async fn done(ctx: &Ctx, probe: Probe, report: &LoginReport) {
    if report.ok() {
        ctx.close(probe).await;
    }
}

async fn minimal(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (mut probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    ensure!(report.ok(), "{}", report.describe());
    let nop = probe.ping(true, Bytes::from_static(b"hello")).await?;
    ctx.close(probe).await;
    ensure!(
        &nop.data[..] == b"hello",
        "the ping's data came back as {} bytes, not the 5 sent",
        nop.data.len()
    );
    pass()
}

async fn tsih_assigned(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    ensure!(report.ok(), "{}", report.describe());
    let tsih = report.last().map_or(0, |r| r.tsih);
    ctx.close(probe).await;
    ensure!(tsih != 0, "the final Login Response has TSIH 0");
    pass()
}

async fn isid_echoed(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    let isid = probe.isid;
    done(&ctx, probe, &report).await;
    ensure!(!report.responses.is_empty(), "{}", report.describe());
    for (i, r) in report.responses.iter().enumerate() {
        ensure!(
            r.isid == isid,
            "Login Response {i} carries ISID {:?}, the request {:?}",
            r.isid,
            isid
        );
    }
    pass()
}

async fn itt_echoed(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    done(&ctx, probe, &report).await;
    ensure!(!report.responses.is_empty(), "{}", report.describe());
    for (i, r) in report.responses.iter().enumerate() {
        ensure!(
            r.itt == crate::probe::login::LOGIN_ITT,
            "Login Response {i} carries ITT {:?}, the request {:?}",
            r.itt,
            crate::probe::login::LOGIN_ITT
        );
    }
    pass()
}

async fn version_active(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    for (i, r) in report.responses.iter().enumerate() {
        ensure!(
            r.version_active == 0,
            "Login Response {i} has Version-active {}",
            r.version_active
        );
    }
    pass()
}

async fn version_range(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.version_max = 5;
    spec.version_min = 0;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    ensure!(
        report.ok(),
        "Version-max 5, Version-min 0: {}",
        report.describe()
    );
    let active = report.last().map_or(0xff, |r| r.version_active);
    ensure!(active == 0, "Version-active {active}");
    pass()
}

async fn unsupported_version(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.version_max = 2;
    spec.version_min = 1;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    refused_with(&report, LoginStatus::UNSUPPORTED_VERSION)
}

async fn portal_group_tag(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    match report.answer("TargetPortalGroupTag") {
        None => fail("no TargetPortalGroupTag in any Login Response"),
        Some(v) => match crate::probe::negotiated::parse_number(v) {
            Some(n) if n <= 65535 => pass(),
            _ => fail(format!("TargetPortalGroupTag={v:?} is not 0..65535")),
        },
    }
}

async fn initial_cmdsn(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.cmd_sn = 0x1234_5678;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    let last = report
        .last()
        .cloned()
        .ok_or_else(|| crate::ProbeError::Precondition {
            portal: ep.portal_label(),
            what: "login".into(),
            reason: "no response".into(),
        })?;
    ensure!(
        last.exp_cmd_sn == 0x1234_5678,
        "ExpCmdSN {:#x} after a login with CmdSN 0x12345678",
        last.exp_cmd_sn
    );
    let window = last
        .max_cmd_sn
        .wrapping_sub(last.exp_cmd_sn)
        .wrapping_add(1);
    ensure!(
        (1..1 << 31).contains(&window),
        "MaxCmdSN {:#x} with ExpCmdSN {:#x}: the command window is closed",
        last.max_cmd_sn,
        last.exp_cmd_sn
    );
    pass()
}

async fn missing_initiator_name(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.initiator_name = None;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    refused_with(&report, LoginStatus::MISSING_PARAMETER)
}

async fn missing_target_name(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.target_name = None;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    refused_with(&report, LoginStatus::MISSING_PARAMETER)
}

async fn unknown_target(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.target_name = Some(format!("{}.no-such-target", ep.target));
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    refused_with(&report, LoginStatus::NOT_FOUND)
}

async fn bad_session_type(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.session_type = Some("Bogus".into());
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    if report.answer("SessionType") == Some("Reject") {
        return pass();
    }
    refused_or_closed(&report)
}

async fn unknown_key(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let spec = ctx.spec(&ep).set("X-org.example.conformance", "1");
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    match report.answer("X-org.example.conformance") {
        Some("NotUnderstood") => pass(),
        other => fail(format!(
            "the unknown key was answered {other:?}, not NotUnderstood"
        )),
    }
}

async fn duplicate_key(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let spec = ctx
        .spec(&ep)
        .set("MaxBurstLength", "65536")
        .push("MaxBurstLength", "32768");
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    refused_or_closed(&report)
}

async fn initiator_alias(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let spec = ctx.spec(&ep).set("InitiatorAlias", "riscsi conformance");
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    ensure!(
        report.answer("InitiatorAlias").is_none(),
        "the target answered the declaration InitiatorAlias with {:?}",
        report.answer("InitiatorAlias")
    );
    pass()
}

async fn split_text(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.split_first = Some(32);
    let (mut probe, report) = attempt(&ctx, &spec).await?;
    ensure!(report.ok(), "{}", report.describe());
    let nop = probe.ping(true, Bytes::new()).await;
    ctx.close(probe).await;
    nop?;
    pass()
}

async fn skip_operational(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.skip_operational = true;
    // The defaults must then hold: nothing is offered in an operational stage.
    spec.operational.clear();
    let (mut probe, report) = attempt(&ctx, &spec).await?;
    ensure!(
        report.ok(),
        "security -> full feature: {}",
        report.describe()
    );
    let nop = probe.ping(true, Bytes::new()).await;
    ctx.close(probe).await;
    nop?;
    pass()
}

async fn start_operational(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.start_operational = true;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    if ep.chap.is_some() {
        // Skipping the security stage must not skip authentication.
        ensure!(
            !report.ok(),
            "the login skipped the security stage and reached full feature phase although the target was given CHAP credentials"
        );
        return refused_or_closed(&report);
    }
    ensure!(
        report.ok(),
        "operational -> full feature: {}",
        report.describe()
    );
    pass()
}

async fn unknown_tsih(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.tsih = 0x7e57;
    let (probe, report) = attempt(&ctx, &spec).await?;
    done(&ctx, probe, &report).await;
    skip_if!(
        report.ok(),
        "the target has a session with TSIH 0x7e57 (cannot tell)"
    );
    refused_with(&report, LoginStatus::SESSION_DOES_NOT_EXIST)
}

async fn stat_sn_follows(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let (probe, report) = attempt(&ctx, &ctx.spec(&ep)).await?;
    done(&ctx, probe, &report).await;
    ensure!(report.ok(), "{}", report.describe());
    if report.responses.len() < 2 {
        return skip("the login took a single exchange: nothing to compare");
    }
    for pair in report.responses.windows(2) {
        ensure!(
            pair[1].stat_sn == pair[0].stat_sn.wrapping_add(1),
            "StatSN went from {} to {}",
            pair[0].stat_sn,
            pair[1].stat_sn
        );
    }
    pass()
}
