//! Full feature phase cases of the UNH-IOL initiator plan that the other
//! scripted-target tests leave open: the command window at its sizes, the
//! unsolicited-data matrix of ImmediateData and InitialR2T, empty Data-In
//! segments, R2Ts of parallel writes, the iSCSI sense codes and the SCSI
//! statuses a command may end with, text request fields, and a target
//! dropping every connection. Each case names the RFC 7143 section it
//! checks and the plan items it covers.

use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{AsyncEvent, DataOut, Itt, Lun, Pdu, Residual, TextResponse, Ttt};
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::{KeyValue, Policy, TextLimits, encode_pairs, parse_pairs};
use iscsi_session::{Command, Direction, Error, Recovery, Session, SessionConfig, TargetEvent};
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};
use tokio::task::JoinHandle;

const TARGET: &str = "iqn.2026-11.io.riscsi.test:scripted";
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:initiator";

/// How long the target listens to be sure the initiator sends nothing.
const QUIET: Duration = Duration::from_millis(300);

fn config(target: &ScriptedTarget) -> SessionConfig {
    let mut c = SessionConfig::new(target.portal(), TARGET, INITIATOR);
    c.timeouts.login = Duration::from_secs(5);
    c.timeouts.command = Duration::from_secs(5);
    c.timeouts.replacement = Duration::ZERO;
    c
}

fn lun0() -> Lun {
    Lun::from_number(0).unwrap()
}

fn read(len: u32) -> Command {
    Command::new(
        lun0(),
        Cdb::read(0, len / 512, false),
        Direction::Read { expected_len: len },
    )
}

fn write(data: Bytes) -> Command {
    let blocks = (data.len() / 512) as u32;
    Command::new(
        lun0(),
        Cdb::write(0, blocks, false),
        Direction::Write { data },
    )
}

/// Connects a session while the script logs it in.
async fn connect(
    target: &ScriptedTarget,
    config: SessionConfig,
    script: LoginScript,
) -> (Session, ScriptedConnection) {
    let (session, conn) = tokio::join!(Session::connect(config), async {
        let mut conn = target.accept().await;
        conn.login(&script).await;
        conn
    });
    (session.expect("login"), conn)
}

fn spawn(
    session: &Session,
    command: Command,
) -> JoinHandle<Result<iscsi_session::CommandOutcome, Error>> {
    let s = session.clone();
    tokio::spawn(async move { s.execute(command).await })
}

fn spawn_checked(
    session: &Session,
    command: Command,
) -> JoinHandle<Result<iscsi_session::CommandOutcome, Error>> {
    let s = session.clone();
    tokio::spawn(async move { s.execute_checked(command).await })
}

/// Answers a read with one Data-In carrying its data and the status.
async fn answer_read(conn: &mut ScriptedConnection, cmd: &iscsi_proto::pdu::ScsiCommand, fill: u8) {
    let len = cmd.expected_data_transfer_length as usize;
    let din = conn.data_in(
        cmd,
        0,
        0,
        Bytes::from(vec![fill; len]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
}

fn data_out(pdu: Pdu) -> DataOut {
    match pdu {
        Pdu::DataOut(d) => d,
        other => panic!("expected a Data-Out, got {other:?}"),
    }
}

/// §4.2.2.1: a window of 64 lets 16 reads out at once, before any answer,
/// each non-immediate and numbered one after the other.
/// UNH-IOL: FFP #1.1, FFP #3.2
#[tokio::test]
async fn a_large_window_lets_every_command_out_numbered_in_sequence() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let readers: Vec<_> = (0..16).map(|_| spawn(&session, read(512))).collect();
    let mut cmds = Vec::new();
    for _ in 0..16 {
        cmds.push(conn.expect_command().await);
    }
    let first = cmds[0].cmd_sn;
    for (i, cmd) in cmds.iter().enumerate() {
        assert!(!cmd.immediate);
        assert_eq!(cmd.cmd_sn, first.wrapping_add(i as u32), "command {i}");
        assert!(
            cmds[..i].iter().all(|other| other.itt != cmd.itt),
            "ITT {:?} used twice",
            cmd.itt
        );
    }
    for cmd in &cmds {
        answer_read(&mut conn, cmd, 3).await;
    }
    for reader in readers {
        assert!(reader.await.unwrap().unwrap().is_good());
    }
}

/// §4.2.2.1: with MaxCmdSN = ExpCmdSN the window admits one command; the
/// next waits until a response moves the window on.
/// UNH-IOL: FFP #3.3
#[tokio::test]
async fn a_window_of_one_lets_one_command_out_at_a_time() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        window: 1,
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let readers: Vec<_> = (0..3).map(|_| spawn(&session, read(512))).collect();
    let mut last_cmd_sn = None;
    for _ in 0..3 {
        let cmd = conn.expect_command().await;
        assert!(
            conn.try_recv(QUIET).await.is_none(),
            "a second command went out through a window of one"
        );
        if let Some(prev) = last_cmd_sn {
            assert_eq!(cmd.cmd_sn, u32::wrapping_add(prev, 1));
        }
        last_cmd_sn = Some(cmd.cmd_sn);
        answer_read(&mut conn, &cmd, 1).await;
    }
    for reader in readers {
        assert!(reader.await.unwrap().unwrap().is_good());
    }
}

/// §11.4.7.3 and §4.2.2.1: the MaxCmdSN of a SCSI Response counts like any
/// other: a response closing the window (MaxCmdSN = ExpCmdSN - 1) holds
/// the next command back until a NOP-In opens it again.
/// UNH-IOL: FFP #16.5, FFP #3.1
#[tokio::test]
async fn a_response_closing_the_window_holds_the_next_command() {
    let target = ScriptedTarget::bind().await;
    // One command admitted; its response moves ExpCmdSN on but not MaxCmdSN
    // (a lower MaxCmdSN would be ignored), which closes the window.
    let script = LoginScript {
        window: 1,
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let first = spawn(&session, read(512));
    let cmd = conn.expect_command().await;
    conn.window = 0;
    answer_read(&mut conn, &cmd, 1).await;
    assert!(first.await.unwrap().unwrap().is_good());

    let second = spawn(&session, read(512));
    assert!(
        conn.try_recv(QUIET).await.is_none(),
        "a command went out after the response closed the window"
    );
    conn.window = 1;
    let update = conn.nop_in(Ttt::RESERVED, Bytes::new());
    conn.send(update).await;
    let next = conn.expect_command().await;
    assert_eq!(next.cmd_sn, cmd.cmd_sn.wrapping_add(1));
    answer_read(&mut conn, &next, 2).await;
    assert!(second.await.unwrap().unwrap().is_good());
}

/// One write of `len` bytes under the ImmediateData and InitialR2T values
/// the target forces, with FirstBurstLength 8192 and the target's
/// MaxRecvDataSegmentLength 4096: checks the command's fields, the
/// unsolicited data (immediate, then Data-Out with the TTT reserved), then
/// answers the rest with one R2T and checks the target got every byte.
async fn write_with(immediate_data: bool, initial_r2t: bool) {
    const LEN: usize = 20_000;
    const FIRST_BURST: usize = 8192;
    const SEGMENT: usize = 4096;
    let yes_no = |b: bool| if b { "Yes" } else { "No" };
    let case = format!(
        "ImmediateData={} InitialR2T={}",
        yes_no(immediate_data),
        yes_no(initial_r2t)
    );
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("ImmediateData", yes_no(immediate_data))
            .unwrap()
            .with("InitialR2T", yes_no(initial_r2t))
            .unwrap()
            .with("FirstBurstLength", &FIRST_BURST.to_string())
            .unwrap()
            .with("MaxBurstLength", "65536")
            .unwrap(),
        declarations: vec![("MaxRecvDataSegmentLength".into(), SEGMENT.to_string())],
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let params = session.params().expect("params");
    assert_eq!(params.immediate_data, immediate_data, "{case}");
    assert_eq!(params.initial_r2t, initial_r2t, "{case}");

    let payload: Bytes = (0..LEN)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    let expected_stat_sn = conn.stat_sn;
    let writer = spawn(&session, write(payload.clone()));
    let cmd = conn.expect_command().await;
    assert!(cmd.write && !cmd.read, "{case}");
    assert!(!cmd.immediate, "{case}");
    assert_eq!(cmd.lun, lun0(), "{case}");
    assert_eq!(
        cmd.expected_data_transfer_length as usize, LEN,
        "{case}: EDTL"
    );
    assert_eq!(cmd.exp_stat_sn, expected_stat_sn, "{case}: ExpStatSN");
    assert_eq!(cmd.cdb[0], 0x2a, "{case}: the WRITE(10) CDB as given");

    let immediate = if immediate_data { SEGMENT } else { 0 };
    assert_eq!(cmd.data.len(), immediate, "{case}: immediate data");
    let mut received = cmd.data.to_vec();
    let unsolicited_total = if initial_r2t { immediate } else { FIRST_BURST };
    assert_eq!(
        cmd.final_,
        unsolicited_total == immediate,
        "{case}: F set exactly when no unsolicited Data-Out follows"
    );
    let mut data_sn = 0;
    while received.len() < unsolicited_total {
        let d = data_out(conn.recv().await);
        assert_eq!(
            d.ttt,
            Ttt::RESERVED,
            "{case}: unsolicited Data-Out has no TTT"
        );
        assert_eq!(d.itt, cmd.itt, "{case}");
        assert_eq!(d.buffer_offset as usize, received.len(), "{case}: offset");
        assert_eq!(d.data_sn, data_sn, "{case}: DataSN");
        assert!(
            d.data.len() <= SEGMENT,
            "{case}: within the target's segment size"
        );
        received.extend_from_slice(&d.data);
        assert!(
            received.len() <= unsolicited_total,
            "{case}: past FirstBurstLength"
        );
        assert_eq!(
            d.final_,
            received.len() == unsolicited_total,
            "{case}: F on the last unsolicited Data-Out"
        );
        data_sn += 1;
    }
    assert!(
        conn.try_recv(QUIET).await.is_none(),
        "{case}: data beyond the unsolicited burst before any R2T"
    );

    let offset = received.len() as u32;
    let rest = LEN as u32 - offset;
    let r2t = conn.r2t(&cmd, 0, 0x77, offset, rest);
    conn.send(r2t).await;
    let mut data_sn = 0;
    while received.len() < LEN {
        let d = data_out(conn.recv().await);
        assert_eq!(d.ttt, Ttt(0x77), "{case}");
        assert_eq!(d.buffer_offset as usize, received.len(), "{case}");
        assert_eq!(d.data_sn, data_sn, "{case}: DataSN restarts per R2T");
        received.extend_from_slice(&d.data);
        assert_eq!(d.final_, received.len() == LEN, "{case}");
        data_sn += 1;
    }
    assert_eq!(received, payload.to_vec(), "{case}: the data");
    let resp = conn.response(&cmd, 0, None, Residual::None);
    conn.send(resp).await;
    assert!(writer.await.unwrap().unwrap().is_good(), "{case}");
}

/// §11.3, §13.10, §13.11, §13.14 and §4.2.5.2: each combination of
/// ImmediateData and InitialR2T sends exactly the unsolicited data it
/// allows (none, immediate only, Data-Out only, or both up to
/// FirstBurstLength), F marking the end of it, and the rest on R2T.
/// UNH-IOL: FFP #8.1, FFP #8.2, FFP #8.3, FFP #11.2.1, FFP #16.1.1, FFP #16.1.2
/// UNH-IOL: FFP #16.2.1, FFP #16.2.2, FFP #16.2.3, FFP #16.2.4, FFP #16.3.1, FFP #16.6
#[tokio::test]
async fn unsolicited_data_follows_immediate_data_and_initial_r2t() {
    for immediate_data in [true, false] {
        for initial_r2t in [true, false] {
            write_with(immediate_data, initial_r2t).await;
        }
    }
}

/// §11.7.7: a Data-In may carry no data; one at the start and one that
/// only brings the status are accepted, and the read gets its bytes.
/// UNH-IOL: FFP #11.1.2
#[tokio::test]
async fn data_in_with_an_empty_segment_is_accepted() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = spawn(&session, read(1024));
    let cmd = conn.expect_command().await;
    let empty = conn.data_in(&cmd, 0, 0, Bytes::new(), None);
    conn.send(empty).await;
    let full = conn.data_in(&cmd, 1, 0, Bytes::from(vec![5u8; 1024]), None);
    conn.send(full).await;
    let status = conn.data_in(&cmd, 2, 1024, Bytes::new(), Some((0, Residual::None)));
    conn.send(status).await;
    let outcome = reader.await.unwrap().unwrap();
    assert!(outcome.is_good());
    assert_eq!(outcome.data.to_bytes(), Bytes::from(vec![5u8; 1024]));
}

/// Receives Data-Out until the burst `ttt` asked of `itt` is complete;
/// every PDU must belong to that task and burst.
async fn burst(
    conn: &mut ScriptedConnection,
    itt: Itt,
    ttt: u32,
    offset: u32,
    len: u32,
) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len as usize {
        let d = data_out(conn.recv().await);
        assert_eq!(
            (d.itt, d.ttt),
            (itt, Ttt(ttt)),
            "Data-Out for the R2T just sent"
        );
        assert_eq!(d.buffer_offset, offset + got.len() as u32);
        got.extend_from_slice(&d.data);
        assert_eq!(d.final_, got.len() == len as usize);
    }
    got
}

/// §11.8: R2Ts of two writes in flight, interleaved, are each answered
/// for their own task: ITT, TTT, offsets and data of that write.
/// UNH-IOL: FFP #12.4
#[tokio::test]
async fn parallel_writes_answer_each_r2t_for_its_own_task() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("ImmediateData", "No")
            .unwrap()
            .with("InitialR2T", "Yes")
            .unwrap(),
        declarations: vec![("MaxRecvDataSegmentLength".into(), "4096".into())],
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let a_data = Bytes::from(vec![0xaa; 8192]);
    let b_data = Bytes::from(vec![0xbb; 8192]);
    // A is submitted, and on the wire, before B is submitted.
    let a = spawn(&session, write(a_data.clone()));
    let cmd_a = conn.expect_command().await;
    let b = spawn(&session, write(b_data.clone()));
    let cmd_b = conn.expect_command().await;
    assert!(
        cmd_a.data.is_empty() && cmd_b.data.is_empty(),
        "ImmediateData=No"
    );

    let r2t = conn.r2t(&cmd_b, 0, 0x20, 0, 4096);
    conn.send(r2t).await;
    let r2t = conn.r2t(&cmd_a, 0, 0x10, 0, 8192);
    conn.send(r2t).await;
    // Both bursts may interleave on the wire: gather per task.
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let mut finished = 0;
    while finished < 2 {
        let d = data_out(conn.recv().await);
        let (so_far, expected_ttt, len) = if d.itt == cmd_a.itt {
            (&mut got_a, Ttt(0x10), 8192)
        } else if d.itt == cmd_b.itt {
            (&mut got_b, Ttt(0x20), 4096)
        } else {
            panic!("Data-Out for an unknown task {:?}", d.itt)
        };
        assert_eq!(d.ttt, expected_ttt, "the TTT of that task's R2T");
        assert_eq!(d.buffer_offset as usize, so_far.len());
        so_far.extend_from_slice(&d.data);
        assert_eq!(d.final_, so_far.len() == len);
        if d.final_ {
            finished += 1;
        }
    }
    let r2t = conn.r2t(&cmd_b, 1, 0x21, 4096, 4096);
    conn.send(r2t).await;
    got_b.extend(burst(&mut conn, cmd_b.itt, 0x21, 4096, 4096).await);
    assert_eq!(got_a, a_data.to_vec());
    assert_eq!(got_b, b_data.to_vec());
    for cmd in [&cmd_a, &cmd_b] {
        let resp = conn.response(cmd, 0, None, Residual::None);
        conn.send(resp).await;
    }
    assert!(a.await.unwrap().unwrap().is_good());
    assert!(b.await.unwrap().unwrap().is_good());
}

/// Fixed-format sense: ABORTED COMMAND with this ASC/ASCQ.
fn aborted_command(asc: u8, ascq: u8) -> [u8; 18] {
    [
        0x70, 0, 0x0b, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
    ]
}

/// §11.4.7.2: the iSCSI transport's ABORTED COMMAND senses (protocol
/// service CRC error 47h/05h, unexpected unsolicited data 0Ch/0Ch, not
/// enough unsolicited data 0Ch/0Dh) reach the caller whole, as a failure
/// of this path (not retried on it: a multipath layer re-issues it on
/// another), and the connection goes on serving commands.
/// UNH-IOL: FFP #16.4.1, FFP #16.4.3, FFP #16.4.4
#[tokio::test]
async fn iscsi_aborted_command_senses_fail_the_command_and_the_session_goes_on() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    for (asc, ascq) in [(0x47, 0x05), (0x0c, 0x0c), (0x0c, 0x0d)] {
        let reader = spawn_checked(&session, read(512));
        let cmd = conn.expect_command().await;
        let sense = aborted_command(asc, ascq);
        let resp = conn.response(&cmd, 0x02, Some(&sense), Residual::None);
        conn.send(resp).await;
        match reader.await.unwrap() {
            Err(Error::Scsi {
                status,
                sense: Some(got),
                ..
            }) => {
                assert_eq!(status, 0x02);
                assert_eq!(
                    &got[..],
                    &sense[..],
                    "{asc:02x}/{ascq:02x}: the sense as sent"
                );
            }
            other => panic!("{asc:02x}/{ascq:02x}: expected a SCSI error, got {other:?}"),
        }
        assert!(
            conn.try_recv(QUIET).await.is_none(),
            "{asc:02x}/{ascq:02x}: re-issued on the path that failed it"
        );
    }
    let reader = spawn(&session, read(512));
    let cmd = conn.expect_command().await;
    answer_read(&mut conn, &cmd, 4).await;
    assert!(reader.await.unwrap().unwrap().is_good());
    assert_eq!(session.status().reconnects, 0);
}

/// SAM BUSY (08h), reported by §11.4.2's status field: the command is
/// issued again after a pause, as a new command (its own CmdSN, not a
/// retry of the old one), and the caller gets the second attempt's data.
/// UNH-IOL: FFP #16.4.5
#[tokio::test]
async fn busy_is_issued_again_as_a_new_command() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = spawn_checked(&session, read(512));
    let busy = conn.expect_command().await;
    let resp = conn.response(&busy, 0x08, None, Residual::None);
    conn.send(resp).await;
    let again = conn.expect_command().await;
    assert_eq!(again.cdb, busy.cdb, "the same command");
    assert_eq!(again.cmd_sn, busy.cmd_sn.wrapping_add(1), "a new CmdSN");
    answer_read(&mut conn, &again, 6).await;
    let outcome = reader.await.unwrap().unwrap();
    assert!(outcome.is_good());
    assert_eq!(outcome.data.to_bytes(), Bytes::from(vec![6u8; 512]));
}

/// SAM RESERVATION CONFLICT (18h): another initiator holds the LU; waiting
/// on this path will not change that, so the caller hears of it at once,
/// with the status, and the command is not issued again.
/// UNH-IOL: FFP #16.4.6
#[tokio::test]
async fn reservation_conflict_is_reported_and_not_reissued() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = spawn_checked(&session, read(512));
    let cmd = conn.expect_command().await;
    let resp = conn.response(&cmd, 0x18, None, Residual::None);
    conn.send(resp).await;
    match reader.await.unwrap() {
        Err(Error::Scsi { status: 0x18, .. }) => {}
        other => panic!("expected RESERVATION CONFLICT, got {other:?}"),
    }
    assert!(conn.try_recv(QUIET).await.is_none(), "re-issued");
}

/// The next Text Request; answers NOP-Out pings on the way.
async fn expect_text(conn: &mut ScriptedConnection) -> iscsi_proto::pdu::TextRequest {
    loop {
        match conn.recv().await {
            Pdu::TextRequest(t) => return t,
            Pdu::NopOut(n) if !n.itt.is_reserved() => {
                let reply = conn.nop_in_reply(n.itt, n.data);
                conn.send(reply).await;
            }
            other => panic!("expected a Text Request, got {other:?}"),
        }
    }
}

/// §11.10 and §11.11: text requests in full feature phase: key=value text
/// with F set, an ITT of its own each, the TTT reserved to start an
/// exchange (and again after one finished), CmdSN and ExpStatSN as for
/// any request.
/// UNH-IOL: FFP #18.1, FFP #18.2, FFP #18.3.1, FFP #18.4, FFP #18.5
#[tokio::test]
async fn text_requests_carry_their_own_itt_and_a_reserved_ttt() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let mut previous: Option<iscsi_proto::pdu::TextRequest> = None;
    for round in 0..2u8 {
        let asker = {
            let s = session.clone();
            tokio::spawn(async move { s.text(&[("SendTargets", "All")]).await })
        };
        let expected_stat_sn = conn.stat_sn;
        let req = expect_text(&mut conn).await;
        assert!(
            req.final_ && !req.continue_,
            "round {round}: one complete text"
        );
        assert_eq!(req.ttt, Ttt::RESERVED, "round {round}: a new exchange");
        assert!(!req.itt.is_reserved());
        assert_eq!(
            req.exp_stat_sn, expected_stat_sn,
            "round {round}: ExpStatSN"
        );
        let sent = parse_pairs(&req.data, TextLimits::DEFAULT).expect("our text parses");
        assert_eq!(sent, vec![KeyValue::new("SendTargets", "All")]);
        if let Some(prev) = &previous {
            assert_ne!(req.itt, prev.itt, "each request has an ITT of its own");
            let step = u32::from(!prev.immediate);
            assert_eq!(req.cmd_sn, prev.cmd_sn.wrapping_add(step), "CmdSN");
        }
        let answer = encode_pairs(&[
            KeyValue::new("TargetName", TARGET),
            KeyValue::new("TargetAddress", "127.0.0.1:3260,1"),
        ])
        .expect("encode");
        let resp = TextResponse {
            final_: true,
            continue_: false,
            lun: Lun::default(),
            itt: req.itt,
            ttt: Ttt::RESERVED,
            stat_sn: conn.next_stat_sn(),
            exp_cmd_sn: conn.exp_cmd_sn,
            max_cmd_sn: conn.max_cmd_sn(),
            data: Bytes::from(answer),
        };
        conn.send(resp).await;
        let pairs = asker.await.unwrap().expect("text answer");
        assert!(
            pairs.contains(&KeyValue::new("TargetName", TARGET)),
            "{pairs:?}"
        );
        previous = Some(req);
    }
}

/// §11.9.1 AsyncEvent 3: the target drops every connection of the session.
/// We hear of it, close the connection, log in again (same ISID, TSIH 0:
/// a new session in place of the old), and the read that was in flight is
/// sent again there and completes.
/// UNH-IOL: FFP #20.3
#[tokio::test]
async fn async_drop_of_all_connections_is_followed_by_a_new_login() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    cfg.recovery = Recovery::Replay;
    cfg.timeouts.replacement = Duration::from_secs(10);
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let mut events = session.target_events();
    let reader = spawn(&session, read(512));
    let cmd = conn.expect_command().await;
    let msg = conn.async_message(AsyncEvent::DropAllConnections, 0, 0, 0, Bytes::new());
    conn.send(msg).await;
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(
        event,
        TargetEvent::DroppingConnection {
            time2wait: Duration::ZERO
        }
    );
    conn.expect_eof(Duration::from_secs(2)).await;

    let mut again = target.accept().await;
    let (first, _) = again.login(&LoginScript::default()).await;
    assert_eq!(first.isid, conn.isid, "same ISID");
    assert_eq!(first.tsih, 0, "a new session");
    let replayed = again.expect_command().await;
    assert_eq!(replayed.cdb, cmd.cdb);
    answer_read(&mut again, &replayed, 8).await;
    let outcome = reader.await.unwrap().unwrap();
    assert_eq!(outcome.data.to_bytes(), Bytes::from(vec![8u8; 512]));
}
