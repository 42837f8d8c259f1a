//! Reject (RFC 7143 §11.17) and PDUs a target must refuse.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{DataOut, Itt, Pdu, RejectReason, SnackRequest, SnackType, Ttt};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass};
use crate::registry::TestCase;

/// The reject tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.reject.reserved_opcode",
            "RFC 7143 §11.17.1",
            "a PDU with a reserved initiator opcode (0x0f) is rejected (Command not supported or Protocol error) and the session survives",
            reserved_opcode,
        ),
        TestCase::new(
            "ff.reject.carries_header",
            "RFC 7143 §11.17.3",
            "a Reject carries the rejected PDU's header in its data segment",
            carries_header,
        ),
        TestCase::new(
            "ff.reject.snack_erl0",
            "RFC 7143 §11.16, §7.1.1",
            "a SNACK at ErrorRecoveryLevel 0 is rejected or ends the connection",
            snack_erl0,
        ),
        TestCase::new(
            "ff.reject.data_out_unknown_task",
            "RFC 7143 §11.7, §11.17.1",
            "a Data-Out for a task that does not exist is rejected or ends the connection, never taken",
            data_out_unknown,
        ),
    ]
}

fn reserved_header(itt: Itt, cmd_sn: u32, exp_stat_sn: u32) -> [u8; 48] {
    let mut h = [0u8; 48];
    h[0] = 0x40 | 0x0f; // immediate, opcode 0x0f (reserved)
    h[1] = 0x80;
    h[16..20].copy_from_slice(&itt.0.to_be_bytes());
    h[24..28].copy_from_slice(&cmd_sn.to_be_bytes());
    h[28..32].copy_from_slice(&exp_stat_sn.to_be_bytes());
    h
}

async fn reserved_opcode(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let itt = probe.itt();
    probe
        .send_header(&reserved_header(itt, probe.cmd_sn, probe.exp_stat_sn))
        .await?;
    let answer = probe.recv_reply("a Reject").await;
    let alive = probe.ping(true, Bytes::new()).await.is_ok();
    ctx.close(probe).await;
    match answer {
        Ok(Pdu::Reject(r)) => {
            ensure!(
                matches!(
                    r.reason,
                    RejectReason::CommandNotSupported | RejectReason::ProtocolError
                ),
                "rejected with {:?}",
                r.reason
            );
            ensure!(alive, "the session did not answer a ping after the Reject");
            pass()
        }
        Ok(other) => fail(format!(
            "a reserved opcode was answered with {}",
            other.opcode()
        )),
        Err(e) => fail(format!("no Reject: {e}")),
    }
}

async fn carries_header(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let itt = probe.itt();
    probe
        .send_header(&reserved_header(itt, probe.cmd_sn, probe.exp_stat_sn))
        .await?;
    let answer = probe.recv_reply("a Reject").await;
    drop(probe);
    match answer {
        Ok(Pdu::Reject(r)) => {
            ensure!(
                r.rejected_itt() == Some(itt),
                "the Reject's data carry ITT {:?}, the rejected PDU had {:?}",
                r.rejected_itt(),
                itt
            );
            ensure!(
                r.rejected_bhs().is_some_and(|h| h[0] & 0x3f == 0x0f),
                "the Reject's data do not hold the rejected header"
            );
            pass()
        }
        Ok(other) => fail(format!("answered with {}", other.opcode())),
        Err(e) => fail(format!("no Reject: {e}")),
    }
}

async fn snack_erl0(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    if probe.negotiated.error_recovery_level > 0 {
        ctx.close(probe).await;
        return crate::outcome::skip("ErrorRecoveryLevel above 0 was agreed");
    }
    let snack = SnackRequest {
        kind: SnackType::Status,
        lun: ctx.lun(&probe.endpoint),
        itt: Itt::RESERVED,
        ttt: Ttt::RESERVED,
        exp_stat_sn: probe.exp_stat_sn,
        beg_run: probe.exp_stat_sn.wrapping_sub(1),
        run_length: 1,
    };
    probe.send(&Pdu::SnackRequest(snack)).await?;
    let answer = probe.recv_reply("a Reject").await;
    drop(probe);
    match answer {
        Ok(Pdu::Reject(_)) => pass(),
        Ok(other) => fail(format!(
            "a SNACK at ErrorRecoveryLevel 0 was answered with {}",
            other.opcode()
        )),
        Err(e) if e.is_closed() => pass(),
        Err(e) => fail(format!("neither a Reject nor a closed connection: {e}")),
    }
}

async fn data_out_unknown(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let pdu = DataOut {
        final_: true,
        lun: ctx.lun(&probe.endpoint),
        itt: Itt(0x00be_ef00),
        ttt: Ttt(0x1234_5678),
        exp_stat_sn: probe.exp_stat_sn,
        data_sn: 0,
        buffer_offset: 0,
        data: Bytes::from(vec![0u8; 512]),
    };
    probe.send(&Pdu::DataOut(pdu)).await?;
    let answer = probe.recv_reply("a Reject").await;
    drop(probe);
    match answer {
        Ok(Pdu::Reject(_)) => pass(),
        Ok(other) => fail(format!(
            "a stray Data-Out was answered with {}",
            other.opcode()
        )),
        Err(e) if e.is_closed() => pass(),
        Err(e) => fail(format!("neither a Reject nor a closed connection: {e}")),
    }
}
