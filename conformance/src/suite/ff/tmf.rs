//! Task management (RFC 7143 §11.5, §11.6; SAM-5 §7).

use std::sync::Arc;

use iscsi_proto::pdu::{Itt, Lun, Pdu, TaskMgmtRequest, TmfFunction, TmfResponse};
use iscsi_proto::scsi::{Cdb, ReportLuns, SelectReport, SenseKey};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::{Probe, ScsiRequest};
use crate::registry::TestCase;
use crate::suite::ff::tur;

/// The task management tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.tmf.abort_task_unknown",
            "RFC 7143 §11.5.1",
            "ABORT TASK of a tag never used, RefCmdSN outside the window: Task does not exist",
            abort_unknown,
        ),
        TestCase::new(
            "ff.tmf.abort_task_completed",
            "RFC 7143 §11.5.1",
            "ABORT TASK of a task already completed: Task does not exist or Function complete",
            abort_completed,
        ),
        TestCase::new(
            "ff.tmf.abort_task_held",
            "RFC 7143 §11.5.1",
            "ABORT TASK of a command held behind a CmdSN gap: Function complete, and the aborted command gets no status",
            abort_held,
        ),
        TestCase::new(
            "ff.tmf.abort_task_set",
            "RFC 7143 §11.5.1, SAM-5 §7.3",
            "ABORT TASK SET: Function complete and the LU keeps working",
            abort_task_set,
        ),
        TestCase::new(
            "ff.tmf.response_itt",
            "RFC 7143 §11.6",
            "the Task Management Response echoes the request's ITT and advances StatSN",
            response_itt,
        ),
        TestCase::new(
            "ff.tmf.task_reassign_erl0",
            "RFC 7143 §11.5.1",
            "TASK REASSIGN at ErrorRecoveryLevel 0: Task allegiance reassignment not supported",
            task_reassign,
        ),
        TestCase::new(
            "ff.tmf.reserved_function",
            "RFC 7143 §11.6.1",
            "a reserved function code (14): Function not supported or Function rejected",
            reserved_function,
        ),
        TestCase::new(
            "ff.tmf.lu_reset_unknown_lun",
            "RFC 7143 §11.6.1",
            "LOGICAL UNIT RESET of a LUN REPORT LUNS does not list: LUN does not exist",
            lu_reset_unknown_lun,
        ),
        TestCase::new(
            "ff.tmf.clear_task_set",
            "RFC 7143 §11.5.1, SAM-5 §7.4",
            "CLEAR TASK SET: Function complete, or Function not supported",
            clear_task_set,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "ff.tmf.lu_reset",
            "RFC 7143 §11.5.1, SAM-5 §7.7",
            "LOGICAL UNIT RESET: Function complete",
            lu_reset,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "ff.tmf.lu_reset_unit_attention",
            "SAM-5 §6.2, SPC-4 §5.14",
            "after LOGICAL UNIT RESET another I_T nexus gets a UNIT ATTENTION (29h/xxh)",
            lu_reset_ua,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "ff.tmf.target_warm_reset",
            "RFC 7143 §11.5.1",
            "TARGET WARM RESET: Function complete (or not supported / not authorized)",
            target_warm_reset,
        )
        .destructive()
        .alone(),
    ]
}

async fn tmf(
    probe: &mut Probe,
    function: TmfFunction,
    lun: Lun,
    referenced: Itt,
    ref_cmd_sn: Option<u32>,
) -> Result<iscsi_proto::pdu::TaskMgmtResponse, crate::ProbeError> {
    let ref_cmd_sn = ref_cmd_sn.unwrap_or(probe.cmd_sn);
    let req = probe.tmf_request(function, lun, referenced, ref_cmd_sn);
    probe.tmf(req).await
}

async fn abort_unknown(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let far = probe.cmd_sn.wrapping_sub(1000);
    let resp = tmf(
        &mut probe,
        TmfFunction::AbortTask,
        lun,
        Itt(0x00de_ad00),
        Some(far),
    )
    .await?;
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::TaskDoesNotExist,
        "answered {:?}",
        resp.response
    );
    pass()
}

async fn abort_completed(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let done = probe.execute(tur(&ctx, &probe)).await?;
    let resp = tmf(
        &mut probe,
        TmfFunction::AbortTask,
        lun,
        done.itt,
        Some(done.cmd_sn),
    )
    .await?;
    ctx.close(probe).await;
    ensure!(
        matches!(
            resp.response,
            TmfResponse::TaskDoesNotExist | TmfResponse::FunctionComplete
        ),
        "answered {:?}",
        resp.response
    );
    pass()
}

async fn abort_held(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let n = probe.cmd_sn;
    // CmdSN n+1 while n is missing: the target holds it (§4.2.2.1).
    let mut held = tur(&ctx, &probe);
    held.cmd_sn = Some(n.wrapping_add(1));
    let held = probe.submit(held).await?;
    let req = TaskMgmtRequest {
        cmd_sn: n,
        ..probe.tmf_request(TmfFunction::AbortTask, lun, held.itt, held.cmd_sn)
    };
    let resp = probe.tmf(req).await?;
    // Fill the gap; the held command must not complete now.
    let mut fill = tur(&ctx, &probe);
    fill.cmd_sn = Some(n);
    let filler = probe.submit(fill).await?;
    probe.cmd_sn = n.wrapping_add(2);
    let done = probe.complete(vec![filler]).await?;
    let late = probe.quiet(ctx.quiet()).await?;
    let stray = probe
        .asides
        .iter()
        .chain(late.iter())
        .any(|p| p.itt() == held.itt);
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::FunctionComplete,
        "ABORT TASK of the held command answered {:?}",
        resp.response
    );
    ensure!(
        done.first().is_some_and(|d| d.is_good()),
        "the command filling the gap failed"
    );
    ensure!(!stray, "the aborted command still got a response");
    pass()
}

async fn abort_task_set(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let resp = tmf(
        &mut probe,
        TmfFunction::AbortTaskSet,
        lun,
        Itt::RESERVED,
        None,
    )
    .await?;
    let after = probe.execute(tur(&ctx, &probe)).await?;
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::FunctionComplete,
        "answered {:?}",
        resp.response
    );
    ensure!(
        after.is_good() || after.is_key(SenseKey::UnitAttention),
        "the next command: {}",
        after.describe()
    );
    pass()
}

async fn response_itt(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let before = probe.exp_stat_sn;
    let req = probe.tmf_request(TmfFunction::AbortTaskSet, lun, Itt::RESERVED, probe.cmd_sn);
    let itt = req.itt;
    let resp = probe.tmf(req).await?;
    ctx.close(probe).await;
    ensure!(
        resp.itt == itt,
        "ITT {:?} for a request with {:?}",
        resp.itt,
        itt
    );
    ensure!(
        resp.stat_sn == before,
        "StatSN {} where {before} was expected",
        resp.stat_sn
    );
    pass()
}

async fn task_reassign(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    if probe.negotiated.error_recovery_level >= 2 {
        ctx.close(probe).await;
        return skip("ErrorRecoveryLevel 2 was agreed: reassignment is allowed");
    }
    let lun = ctx.lun(&probe.endpoint);
    let resp = tmf(
        &mut probe,
        TmfFunction::TaskReassign,
        lun,
        Itt(0x00de_ad01),
        None,
    )
    .await?;
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::ReassignmentNotSupported,
        "answered {:?}",
        resp.response
    );
    pass()
}

async fn reserved_function(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let req = probe.tmf_request(TmfFunction::AbortTaskSet, lun, Itt::RESERVED, probe.cmd_sn);
    let itt = req.itt;
    let mut header = Probe::header_bytes(&Pdu::TaskMgmtRequest(req)).map_err(|e| {
        crate::ProbeError::Precondition {
            portal: probe.portal().to_owned(),
            what: "a TMF header".into(),
            reason: e.to_string(),
        }
    })?;
    header[1] = 0x80 | 14;
    probe.send_header(&header).await?;
    let answer = probe.recv_reply("a Task Management Response").await;
    drop(probe);
    match answer {
        Ok(Pdu::TaskMgmtResponse(r)) if r.itt == itt => {
            ensure!(
                matches!(
                    r.response,
                    TmfResponse::FunctionNotSupported | TmfResponse::FunctionRejected
                ),
                "function 14 answered {:?}",
                r.response
            );
            pass()
        }
        Ok(Pdu::Reject(_)) => {
            fail("a TMF request with a reserved function was rejected as a PDU instead of answered")
        }
        Ok(other) => fail(format!("answered with {}", other.opcode())),
        Err(e) => fail(format!("no answer: {e}")),
    }
}

async fn lu_reset_unknown_lun(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::read(
            lun,
            Cdb::report_luns(SelectReport::All, 4096).to_bytes(),
            4096,
        ))
        .await?;
    let listed = ReportLuns::parse(&out.data)
        .map(|r| r.luns)
        .unwrap_or_default();
    let free = (200u16..400).find(|n| !listed.iter().any(|l| l.number() == Some(*n)));
    let Some(free) = free.and_then(Lun::from_number) else {
        ctx.close(probe).await;
        return skip("no unused LUN in 200..400");
    };
    let resp = tmf(
        &mut probe,
        TmfFunction::LogicalUnitReset,
        free,
        Itt::RESERVED,
        None,
    )
    .await?;
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::LunDoesNotExist,
        "LOGICAL UNIT RESET of an unlisted LUN answered {:?}",
        resp.response
    );
    pass()
}

async fn clear_task_set(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let resp = tmf(
        &mut probe,
        TmfFunction::ClearTaskSet,
        lun,
        Itt::RESERVED,
        None,
    )
    .await?;
    ctx.close(probe).await;
    match resp.response {
        TmfResponse::FunctionComplete => pass(),
        TmfResponse::FunctionNotSupported => skip("CLEAR TASK SET is not supported"),
        other => fail(format!("answered {other:?}")),
    }
}

async fn lu_reset(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let resp = tmf(
        &mut probe,
        TmfFunction::LogicalUnitReset,
        lun,
        Itt::RESERVED,
        None,
    )
    .await?;
    ctx.settle(&mut probe).await?;
    let after = probe.execute(tur(&ctx, &probe)).await?;
    ctx.close(probe).await;
    ensure!(
        resp.response == TmfResponse::FunctionComplete,
        "answered {:?}",
        resp.response
    );
    ensure!(after.is_good(), "after the reset: {}", after.describe());
    pass()
}

async fn lu_reset_ua(ctx: Arc<Ctx>) -> TestResult {
    let ep = ctx.primary().clone();
    let mut watcher = ctx.open(&ep).await?;
    let mut resetter = ctx.open(&ep).await?;
    let lun = ctx.lun(&ep);
    let resp = tmf(
        &mut resetter,
        TmfFunction::LogicalUnitReset,
        lun,
        Itt::RESERVED,
        None,
    )
    .await?;
    ctx.close(resetter).await;
    ensure!(
        resp.response == TmfResponse::FunctionComplete,
        "LOGICAL UNIT RESET answered {:?}",
        resp.response
    );
    let out = watcher.execute(tur(&ctx, &watcher)).await?;
    ctx.close(watcher).await;
    match out.sense_code() {
        Some((SenseKey::UnitAttention, 0x29, _)) => pass(),
        _ => fail(format!(
            "the other nexus's next command: {}, expected UNIT ATTENTION 29h/xxh",
            out.describe()
        )),
    }
}

async fn target_warm_reset(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let resp = tmf(
        &mut probe,
        TmfFunction::TargetWarmReset,
        lun,
        Itt::RESERVED,
        None,
    )
    .await;
    drop(probe);
    match resp {
        Ok(r) => match r.response {
            TmfResponse::FunctionComplete => pass(),
            TmfResponse::FunctionNotSupported => skip("TARGET WARM RESET is not supported"),
            TmfResponse::AuthorizationFailed => {
                skip("TARGET WARM RESET is not authorized for this initiator")
            }
            other => fail(format!("answered {other:?}")),
        },
        // A warm reset may drop the session with everyone else's (§11.5.1).
        Err(e) if e.is_closed() => {
            fail("the connection closed before the Task Management Response")
        }
        Err(e) => Err(e),
    }
}
