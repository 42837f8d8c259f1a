//! Hostile targets, played by the scripted target: one test per way a target
//! can break the protocol or abuse the initiator, each naming the RFC 7143
//! section it relates to. Every case must end in a clean error or a
//! recovery within a bounded time, never a panic, a hang or unbounded
//! memory:
//!
//! - time: every wait for the session is wrapped in [`within`], so a hang is
//!   a test failure with a reason, and where the bound is the point of the
//!   case (a timeout, a backoff) the elapsed time is checked on both sides;
//! - memory: each case that could make the session hold memory on the
//!   target's behalf asserts on what the session holds, not on the process's
//!   resident set (which the scripted target in the same process, the
//!   allocator and the other tests running in parallel all move): the
//!   NOP-In flood counts the echoes the session answered (each is queued
//!   until written) and checks the count stops at the session's write cap
//!   while the target keeps trying; an announced oversized segment must fail
//!   the connection from its header alone, before any of it is buffered; an
//!   oversized CHAP text must be refused before the 64 KiB text limit is
//!   passed.
//!
//! The inventory: case, the test here, and what covered it before at the
//! sans-IO level (here the driver, its timers and its reconnect loop run
//! too):
//!
//! - DataSegmentLength beyond our MaxRecvDataSegmentLength:
//!   [`data_segment_beyond_max_recv_data_segment_length`], and during login
//!   [`login_response_segment_beyond_8192_bytes`]; before: iscsi-proto
//!   `codec::tests::oversized_segment_refused_before_buffering`;
//! - Data-In beyond the expected length, overlapping, repeated DataSN:
//!   [`data_in_beyond_the_expected_length_or_overlapping`]; before:
//!   `connection::tests::data_in_protocol_violations_close_the_connection`;
//! - responses for unknown ITTs: [`responses_for_unknown_itts_are_ignored`];
//!   before: `responses_naming_a_task_of_another_kind_lose_nothing` (another
//!   kind's ITT) and the `hostile_bytes_after_login_never_panic` proptest;
//! - StatSN gaps and repeats, the ExpStatSN we send back:
//!   [`stat_sn_gaps_and_repeats`]; before: `sequencing::tests::stat_sn_gaps_resynchronise`;
//! - MaxCmdSN closing the window for good: [`window_closed_for_good`];
//!   before: `command_waiting_for_the_window_times_out_without_a_pdu`;
//! - an R2T asking for more than the write: [`r2t_beyond_the_write`];
//!   before: `scsi_task::tests::r2t_answer_is_split_and_bounded`;
//! - a flood of NOP-In pings: [`nop_in_flood_is_answered_within_a_bound`];
//!   before: single pings only (`target_ping_is_answered_with_its_ttt`);
//! - a 1024-byte CHAP challenge: [`chap_challenge_of_1024_bytes_works`], and
//!   larger ones: [`chap_challenges_over_1024_bytes_are_refused`]; before:
//!   `login::tests::chap_challenge_of_1024_bytes_is_accepted` and
//!   `chap_challenge_of_1025_bytes_is_refused`;
//! - a CHAP_A we did not offer: [`chap_algorithm_we_did_not_offer_is_refused`];
//!   before: `login::tests::chap_algorithm_refusal_is_reported_as_such`;
//! - a login that never answers: [`silent_login_times_out`]; before:
//!   `silent_target_fails_the_login_at_its_timeout`, and session_scripted's
//!   `silent_login_times_out`;
//! - a PDU trickled one byte at a time: [`trickled_pdu_is_decoded`], and a
//!   trickled login response:
//!   [`trickled_login_response_is_bounded_by_the_login_timeout`]; before:
//!   iscsi-proto `codec::tests::byte_at_a_time_decoding_with_digests`;
//! - a target that closes right after login:
//!   [`target_closing_right_after_login_is_retried_on_the_backoff`]; before:
//!   none (session_recovery covers single losses);
//! - mutual CHAP answered wrongly (another secret, no CHAP_R, another
//!   name): [`mutual_chap_refuses_a_target_that_answers_wrongly`]; before:
//!   `login::tests::mutual_chap_refuses_a_wrong_or_missing_target_answer`.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::Digests;
use iscsi_proto::pdu::{Itt, LoginRequest, LoginStatus, Lun, Pdu, Residual, Stage, Ttt};
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::{Policy, TextLimits, parse_pairs};
use iscsi_session::{
    ChapAlgorithm, ChapConfig, ChapCredentials, Command, CommandOutcome, Direction, Error,
    ReconnectPolicy, Recovery, Session, SessionConfig, SessionState, TaskFailure,
};
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const TARGET: &str = "iqn.2026-11.io.riscsi.test:hostile";
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:initiator";
const CHAP_USER: &str = "alice";
const CHAP_SECRET: &str = "alice-secret-1";

/// Our MaxRecvDataSegmentLength (the default) and the target's declaration
/// in [`LoginScript::default`].
const SEGMENT: u32 = 256 * 1024;

fn config(target: &ScriptedTarget, recovery: Recovery) -> SessionConfig {
    let mut c = SessionConfig::new(target.portal(), TARGET, INITIATOR);
    c.timeouts.login = Duration::from_secs(5);
    c.timeouts.command = Duration::from_secs(5);
    c.timeouts.nop_interval = Duration::ZERO;
    c.timeouts.replacement = Duration::from_secs(5);
    c.recovery = recovery;
    c.reconnect = ReconnectPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        multiplier: 2,
    };
    c
}

fn chap_config(target: &ScriptedTarget, algorithms: Vec<ChapAlgorithm>) -> SessionConfig {
    let mut c = config(target, Recovery::HandBack);
    let mut chap = ChapConfig::one_way(ChapCredentials::new(CHAP_USER, CHAP_SECRET));
    chap.algorithms = algorithms;
    c.chap = Some(chap);
    c
}

/// Awaits `fut`, failing the test when it takes longer than `bound`: a hang
/// becomes a failure that says what hung.
async fn within<T>(bound: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no end within {bound:?}"))
}

fn lun0() -> Lun {
    Lun::from_number(0).unwrap()
}

fn read(len: u32) -> Command {
    Command::new(
        lun0(),
        Cdb::read(0, len.div_ceil(512), false),
        Direction::Read { expected_len: len },
    )
}

fn write(data: Bytes) -> Command {
    let blocks = (data.len() as u32).div_ceil(512);
    Command::new(
        lun0(),
        Cdb::write(0, blocks, false),
        Direction::Write { data },
    )
}

fn spawn_execute(session: &Session, command: Command) -> JoinHandle<Result<CommandOutcome, Error>> {
    let s = session.clone();
    tokio::spawn(async move { s.execute(command).await })
}

/// The outcome of a spawned command, within `bound`.
async fn outcome(
    bound: Duration,
    command: JoinHandle<Result<CommandOutcome, Error>>,
) -> Result<CommandOutcome, Error> {
    within(bound, "the command", command)
        .await
        .expect("the command task")
}

/// The reason of a command that the connection's failure handed back after
/// it was sent (Recovery::HandBack).
fn lost_after_sending(result: Result<CommandOutcome, Error>) -> String {
    match result {
        Err(Error::Command {
            failure: TaskFailure::ConnectionLost { reason, sent: true },
            ..
        }) => reason,
        other => panic!("expected a command lost with its connection, got {other:?}"),
    }
}

/// Connects a session while the script logs it in.
async fn connect(
    target: &ScriptedTarget,
    config: SessionConfig,
    script: LoginScript,
) -> (Session, ScriptedConnection) {
    let (session, mut conn) = tokio::join!(
        within(
            Duration::from_secs(10),
            "the login",
            Session::connect(config)
        ),
        async {
            let mut conn = target.accept().await;
            conn.login(&script).await;
            conn
        }
    );
    // Segments up to what each side declared, both ways.
    conn.configure(Digests::default(), SEGMENT, SEGMENT);
    (session.expect("login"), conn)
}

/// The session's next login on `target` (a reconnect) with `script`,
/// played to the end and seen by the session.
async fn relogin_with(
    session: &Session,
    target: &ScriptedTarget,
    script: &LoginScript,
) -> ScriptedConnection {
    let mut conn = target.accept().await;
    conn.login(script).await;
    conn.configure(Digests::default(), SEGMENT, SEGMENT);
    // The last Login Response is sent; a command issued before the session
    // has read it would find no connection (Recovery::HandBack fails it).
    session
        .wait_logged_in(Duration::from_secs(5))
        .await
        .expect("logged in again");
    conn
}

async fn relogin(session: &Session, target: &ScriptedTarget) -> ScriptedConnection {
    relogin_with(session, target, &LoginScript::default()).await
}

/// A read served normally: the session works on this connection.
async fn read_works(session: &Session, conn: &mut ScriptedConnection) {
    let reader = spawn_execute(session, read(512));
    let cmd = conn.expect_command().await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![0x42; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    let done = outcome(Duration::from_secs(5), reader).await.unwrap();
    assert!(done.is_good());
    assert_eq!(done.data.to_bytes(), vec![0x42; 512]);
}

/// Sets the 24-bit DataSegmentLength of an encoded BHS (bytes 5..8,
/// RFC 7143 §11.2.1), so that the header announces more than follows.
fn announce_data_segment(header: &mut BytesMut, len: u32) {
    header[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
}

/// §13.12: a target must not send a data segment longer than the
/// MaxRecvDataSegmentLength we declared. The header alone tells: the
/// connection fails at once, with the header's 48 bytes and nothing else
/// received, so the session neither waits for nor buffers the 16 MiB it
/// announces (a session that did would hang here until the command
/// timeout). The command comes back as lost and the session logs in again.
/// UNH-IOL: Login #14.1
#[tokio::test]
async fn data_segment_beyond_max_recv_data_segment_length() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(
        &target,
        config(&target, Recovery::HandBack),
        LoginScript::default(),
    )
    .await;
    assert_eq!(
        session.params().unwrap().max_recv_data_segment_length,
        SEGMENT
    );
    let reader = spawn_execute(&session, read(4096));
    let cmd = conn.expect_command().await;
    let din = conn.data_in(&cmd, 0, 0, Bytes::new(), None);
    let mut header = conn.encode(din);
    announce_data_segment(&mut header, 0xff_ffff);
    conn.send_raw(&header).await;
    let reason = lost_after_sending(outcome(Duration::from_secs(2), reader).await);
    assert!(
        reason.contains("16777215-byte data segment") && reason.contains("limit of 262144"),
        "{reason}"
    );
    conn.expect_eof(Duration::from_secs(2)).await;

    let mut again = relogin(&session, &target).await;
    read_works(&session, &mut again).await;
}

/// §13.12: during login the limit is 8192 bytes both ways. A Login Response
/// announcing more is refused from its header, as a protocol error of an
/// iSCSI target (its first byte is a Login Response's), not as a peer that
/// does not speak iSCSI.
#[tokio::test]
async fn login_response_segment_beyond_8192_bytes() {
    let target = ScriptedTarget::bind().await;
    let started = Instant::now();
    let (result, _conn) = tokio::join!(
        within(
            Duration::from_secs(3),
            "the login",
            Session::connect(config(&target, Recovery::HandBack))
        ),
        async {
            let mut conn = target.accept().await;
            let req = conn.expect_login().await;
            let resp = conn.login_failure(&req, LoginStatus::SUCCESS, Bytes::new());
            let mut header = conn.encode(resp);
            announce_data_segment(&mut header, 8193);
            conn.send_raw(&header).await;
            conn
        }
    );
    let err = result.expect_err("an oversized login response");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("8193") && text.contains("8192"),
        "names both sizes: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused from the header, not at the 5 s login timeout"
    );
}

/// §4.2.2.3 and §11.7.4-§11.7.6: with DataPDUInOrder=Yes every Data-In
/// continues the last one, within the expected transfer length. A Data-In
/// running past the read, one repeating an offset (overlapping data) and
/// one repeating a DataSN each fail the connection at once (at ERL 0 the
/// data sequence cannot be repaired); nothing past the read's length is
/// kept. The command comes back as lost; the session logs in again.
#[tokio::test]
async fn data_in_beyond_the_expected_length_or_overlapping() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(
        &target,
        config(&target, Recovery::HandBack),
        LoginScript::default(),
    )
    .await;
    // (DataSN, offset, length) of a second Data-In after 512 bytes at 0,
    // and what the session's error must say.
    let cases = [
        (
            (1u32, 512u32, 1024usize),
            "runs to byte 1536 of a 1024-byte read",
        ),
        ((1, 0, 512), "offset 0 where 512 was expected"),
        ((0, 512, 512), "DataSN 0 where 1 was expected"),
    ];
    for ((data_sn, offset, len), expected) in cases {
        let reader = spawn_execute(&session, read(1024));
        let cmd = conn.expect_command().await;
        let first = conn.data_in(&cmd, 0, 0, Bytes::from(vec![1; 512]), None);
        conn.send(first).await;
        let status = Some((0, Residual::None));
        let second = conn.data_in(&cmd, data_sn, offset, Bytes::from(vec![2; len]), status);
        conn.send(second).await;
        let reason = lost_after_sending(outcome(Duration::from_secs(2), reader).await);
        assert!(reason.contains(expected), "{expected}: {reason}");
        conn.expect_eof(Duration::from_secs(2)).await;
        conn = relogin(&session, &target).await;
    }
    read_works(&session, &mut conn).await;
}

/// §11.4 and §11.7 (a response names its task by ITT) and §11.8: PDUs for
/// tasks we do not have (never had, or already completed: a late duplicate)
/// are dropped: no task is touched, no Data-Out answers an unknown R2T, the
/// connection stays up and its commands complete.
#[tokio::test]
async fn responses_for_unknown_itts_are_ignored() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(
        &target,
        config(&target, Recovery::HandBack),
        LoginScript::default(),
    )
    .await;
    let reader = spawn_execute(&session, read(512));
    let cmd = conn.expect_command().await;
    let mut stranger = cmd.clone();
    stranger.itt = Itt(cmd.itt.0.wrapping_add(0x0100_0000));
    let resp = conn.response(&stranger, 0, None, Residual::None);
    conn.send(resp).await;
    let din = conn.data_in(&stranger, 0, 0, Bytes::from(vec![9; 64 * 1024]), None);
    conn.send(din).await;
    let r2t = conn.r2t(&stranger, 0, 0x77, 0, 4096);
    conn.send(r2t).await;
    let mut nop = conn.nop_in(Ttt::RESERVED, Bytes::new());
    nop.itt = stranger.itt;
    conn.send(nop).await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![5; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    let done = outcome(Duration::from_secs(2), reader).await.unwrap();
    assert!(done.is_good());
    assert_eq!(
        done.data.to_bytes(),
        vec![5; 512],
        "the stranger's data is not ours"
    );
    // A late duplicate for the command just completed.
    let late = conn.response(&cmd, 0x02, None, Residual::None);
    conn.send(late).await;
    assert!(
        conn.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing answers a PDU for an unknown task (no Data-Out, no Reject)"
    );
    read_works(&session, &mut conn).await;
    assert_eq!(session.status().reconnects, 0, "the connection stayed up");
}

/// §4.2.2.2: ExpStatSN acknowledges the target's StatSN. A gap (the target
/// skipped numbers; over TCP at ERL 0 nothing was lost) is acknowledged
/// past, as the StatSN we expect next; a repeated or older StatSN never
/// moves ExpStatSN back. Either way the statuses are delivered and the
/// session goes on (the RFC's recovery threshold is ours to choose up to
/// 2^31 - 1, and serial arithmetic never sees more).
/// UNH-IOL: FFP #5.1
#[tokio::test]
async fn stat_sn_gaps_and_repeats() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(
        &target,
        config(&target, Recovery::HandBack),
        LoginScript::default(),
    )
    .await;
    // (StatSN the target answers with, ExpStatSN we must send next).
    let start = conn.stat_sn;
    let steps = [
        (start, start + 1),
        (start + 11, start + 12),
        (start + 11, start + 12),
        (start.wrapping_sub(1000), start + 12),
        (start + 12, start + 13),
    ];
    let mut expected_ack = start;
    for (stat_sn, next_ack) in steps {
        let reader = spawn_execute(&session, read(512));
        let cmd = conn.expect_command().await;
        assert_eq!(
            cmd.exp_stat_sn, expected_ack,
            "ExpStatSN before StatSN {stat_sn}"
        );
        conn.stat_sn = stat_sn;
        let resp = conn.response(&cmd, 0, None, Residual::Underflow(512));
        conn.send(resp).await;
        let done = outcome(Duration::from_secs(2), reader).await.unwrap();
        assert!(done.is_good());
        expected_ack = next_ack;
    }
    let reader = spawn_execute(&session, read(512));
    let cmd = conn.expect_command().await;
    assert_eq!(cmd.exp_stat_sn, expected_ack);
    drop(reader);
    assert_eq!(session.status().reconnects, 0);
}

/// §4.2.2.1: the target consumes the window and never opens it again
/// (MaxCmdSN stays put while ExpCmdSN reaches it; a later, lower MaxCmdSN
/// is ignored as the RFC says). Commands then wait without a PDU and fail
/// at their timeout, never sent, instead of hanging; a command that timed
/// out is not kept for replay. Once the window opens, commands flow again.
#[tokio::test]
async fn window_closed_for_good() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::Replay);
    cfg.timeouts.command = Duration::from_millis(600);
    let script = LoginScript {
        window: 2,
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, cfg, script).await;
    let first = [
        spawn_execute(&session, read(512)),
        spawn_execute(&session, read(512)),
    ];
    let cmds = [conn.expect_command().await, conn.expect_command().await];
    // The window shrinks to zero: MaxCmdSN = ExpCmdSN - 1 from now on.
    conn.window = 0;
    for cmd in &cmds {
        let resp = conn.response(cmd, 0, None, Residual::Underflow(512));
        conn.send(resp).await;
    }
    for reader in first {
        assert!(
            outcome(Duration::from_secs(2), reader)
                .await
                .unwrap()
                .is_good()
        );
    }
    let mut lower = conn.nop_in(Ttt::RESERVED, Bytes::new());
    lower.max_cmd_sn = lower.max_cmd_sn.wrapping_sub(5);
    lower.exp_cmd_sn = lower.max_cmd_sn.wrapping_add(1);
    conn.send(lower).await;

    let started = Instant::now();
    let waiting = [
        spawn_execute(&session, read(512)),
        spawn_execute(&session, read(512)),
    ];
    for reader in waiting {
        match outcome(Duration::from_secs(3), reader).await {
            Err(Error::Command {
                failure: TaskFailure::Timeout(after),
                ..
            }) => assert_eq!(after, Duration::from_millis(600)),
            other => panic!("expected a command timeout, got {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(550),
        "failed after {waited:?}, before its 600 ms timeout"
    );
    assert!(
        conn.try_recv(Duration::from_millis(200)).await.is_none(),
        "nothing went out through the closed window"
    );
    conn.window = 1;
    let open = conn.nop_in(Ttt::RESERVED, Bytes::new());
    conn.send(open).await;
    read_works(&session, &mut conn).await;
}

/// §11.8 and §13.13: an R2T may ask only for bytes of the write not yet
/// asked for, within MaxBurstLength. One asking past the end of the write
/// (here 1 MiB, then 4 GiB, of a 16 KiB write) is a protocol violation: no
/// Data-Out goes out (there is nothing to send, and an initiator that
/// padded it out would let one 48-byte PDU cost gigabytes), the connection
/// fails, the write comes back as sent, and the session logs in again.
#[tokio::test]
async fn r2t_beyond_the_write() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("InitialR2T", "Yes")
            .unwrap()
            .with("FirstBurstLength", "4096")
            .unwrap(),
        ..LoginScript::default()
    };
    let (session, mut conn) =
        connect(&target, config(&target, Recovery::HandBack), script.clone()).await;
    for ask in [1u32 << 20, u32::MAX] {
        let writer = spawn_execute(&session, write(Bytes::from(vec![3; 16384])));
        let cmd = conn.expect_command().await;
        assert_eq!(
            cmd.data.len(),
            4096,
            "immediate data up to FirstBurstLength"
        );
        let r2t = conn.r2t(&cmd, 0, 0x10, 4096, ask);
        conn.send(r2t).await;
        let reason = lost_after_sending(outcome(Duration::from_secs(2), writer).await);
        assert!(reason.contains("R2T for bytes 4096.."), "{reason}");
        if let Some(pdu) = conn.try_recv(Duration::from_secs(2)).await {
            panic!("the initiator answered an R2T beyond the write with {pdu:?}");
        }
        conn = relogin_with(&session, &target, &script).await;
    }
    read_works(&session, &mut conn).await;
}

/// §11.19 and §11.18: each NOP-In ping (TTT set) is answered with a NOP-Out
/// echoing its data. A target that floods pings and reads nothing back must
/// not make the session queue echoes without end: past its cap on bytes
/// queued for the socket (64 MiB) the session stops reading the target, so
/// the flood backs up into the target's own socket.
///
/// The memory bound is checked on the session's own count of pings
/// answered (every answer is an echo queued until the socket takes it):
/// with 256 KiB pings it stops at about 64 MiB / 256 KiB = 256, plus one
/// receive buffer's worth decoded past the cap (16) and what the kernel's
/// socket buffers took (a few dozen), and it stays there while the target
/// is blocked. A session without the cap would answer all 1024 pings the
/// target tries (256 MiB of queued echoes) and the target would never
/// block. The stuck connection then ends by the keepalive: no PDU decoded
/// for a NOP interval, our ping unanswered for the NOP timeout, and the
/// session logs in again.
#[tokio::test]
async fn nop_in_flood_is_answered_within_a_bound() {
    const PING: usize = 256 * 1024;
    const TRIES: usize = 1024;
    // 96 MiB of echoes: the cap, a receive buffer and the kernel's buffers.
    const MOST_ANSWERED: u64 = 384;
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::HandBack);
    cfg.timeouts.nop_interval = Duration::from_secs(1);
    cfg.timeouts.nop_timeout = Duration::from_secs(1);
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let ping = conn.nop_in(Ttt(1), Bytes::from_static(b"are you there"));
    conn.send(ping).await;
    match conn.recv().await {
        Pdu::NopOut(n) => assert_eq!((n.ttt, &n.data[..]), (Ttt(1), &b"are you there"[..])),
        other => panic!("expected the ping's echo, got {other:?}"),
    }

    let ping = conn.nop_in(Ttt(2), Bytes::from(vec![0x5a; PING]));
    let flood = conn.encode(ping);
    let mut sent = 0;
    while sent < TRIES {
        match conn.try_send_raw(&flood, Duration::from_millis(500)).await {
            Ok(true) => sent += 1,
            Ok(false) => break,
            Err(e) => panic!("the connection failed during the flood: {e}"),
        }
    }
    let answered = within(Duration::from_secs(1), "stats", session.stats())
        .await
        .unwrap()
        .target_pings_answered;
    assert!(
        sent < TRIES,
        "the session kept reading: {sent} pings of 256 KiB taken, {answered} answered"
    );
    assert!(
        answered <= MOST_ANSWERED,
        "{answered} echoes of 256 KiB queued; the cap allows about 300"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = within(Duration::from_secs(1), "stats", session.stats())
        .await
        .unwrap()
        .target_pings_answered;
    assert_eq!(later, answered, "no more answers while the target is stuck");

    // The stuck connection ends by the keepalive, and the session recovers.
    let mut status = session.watch_status();
    within(
        Duration::from_secs(5),
        "the keepalive ending the stuck connection",
        status.wait_for(|s| !matches!(s.state, SessionState::LoggedIn)),
    )
    .await
    .unwrap();
    let last = session.status().last_error.expect("why it reconnects");
    assert!(
        matches!(
            last,
            Error::Timeout {
                what: "NOP-Out ping",
                ..
            }
        ),
        "{last:?}"
    );
    drop(conn);
    let mut again = relogin(&session, &target).await;
    read_works(&session, &mut again).await;
}

/// Mutual CHAP (§12.1.3): after answering the target's challenge we
/// challenge it, and its CHAP_N and CHAP_R must prove it knows the target
/// secret. The right answer logs in (the control); a CHAP_R computed with
/// another secret, none, or the right one under another CHAP_N fails the
/// login as a permanent authentication error saying what was wrong, with
/// no operational stage, no retry, and no secret in the error.
#[tokio::test]
async fn mutual_chap_refuses_a_target_that_answers_wrongly() {
    const TARGET_USER: &str = "array";
    const TARGET_SECRET: &str = "array-secret-2";
    const FORGED: &str = "forged-secret-3";
    let cases: [(&str, Option<&str>, &str, Option<&str>); 4] = [
        ("the right answer", Some(TARGET_SECRET), TARGET_USER, None),
        (
            "another secret",
            Some(FORGED),
            TARGET_USER,
            Some("the target's CHAP response is wrong (mutual CHAP)"),
        ),
        (
            "no CHAP_R",
            None,
            TARGET_USER,
            Some("the target sent no valid CHAP_R"),
        ),
        (
            "another name",
            Some(TARGET_SECRET),
            "impostor",
            Some("the target authenticated as \"impostor\", expected \"array\""),
        ),
    ];
    for (case, secret, name, refusal) in cases {
        let target = ScriptedTarget::bind().await;
        let mut cfg = chap_config(&target, vec![ChapAlgorithm::Sha256]);
        if let Some(chap) = cfg.chap.as_mut() {
            chap.target = Some(ChapCredentials::new(TARGET_USER, TARGET_SECRET));
        }
        let (result, conn) = tokio::join!(
            within(Duration::from_secs(10), "the login", Session::connect(cfg)),
            async {
                let mut conn = target.accept().await;
                let offer = chap_offer_of(&mut conn, "CHAP").await;
                let pairs = [("CHAP_A", "7"), ("CHAP_I", "3"), ("CHAP_C", "0x0a0b0c0d")];
                answer(&mut conn, &offer, text(&pairs), false).await;
                let ours = conn.expect_login().await;
                let identifier: u8 = value(&ours, "CHAP_I")
                    .and_then(|v| v.parse().ok())
                    .expect("mutual CHAP sends CHAP_I");
                let challenge = unhex(&value(&ours, "CHAP_C").expect("mutual CHAP sends CHAP_C"));
                let chap_r = secret.map(|secret| {
                    let mut h = Sha256::new();
                    h.update([identifier]);
                    h.update(secret.as_bytes());
                    h.update(&challenge);
                    hex(&h.finalize())
                });
                let mut pairs = vec![("CHAP_N", name)];
                if let Some(r) = &chap_r {
                    pairs.push(("CHAP_R", r.as_str()));
                }
                let mut accepted = conn.login_failure(&ours, LoginStatus::SUCCESS, text(&pairs));
                accepted.transit = true;
                accepted.nsg = Stage::Operational;
                conn.send(accepted).await;
                if refusal.is_some() {
                    if let Some(pdu) = conn.try_recv(Duration::from_secs(2)).await {
                        panic!("{case}: the initiator went on with {pdu:?}");
                    }
                    return None;
                }
                let operational = conn.expect_login().await;
                conn.login_from(&LoginScript::default(), operational).await;
                conn.configure(Digests::default(), SEGMENT, SEGMENT);
                Some(conn)
            }
        );
        match (refusal, result, conn) {
            (None, Ok(session), Some(mut conn)) => read_works(&session, &mut conn).await,
            (Some(reason), Err(err), None) => {
                assert!(
                    matches!(err, Error::Authentication { .. }),
                    "{case}: {err:?}"
                );
                assert!(err.is_permanent_login_failure(), "{case}: {err:?}");
                let shown = format!("{err} {err:?}");
                assert!(shown.contains(reason), "{case}: {shown}");
                for secret in [CHAP_SECRET, TARGET_SECRET, FORGED] {
                    assert!(!shown.contains(secret), "{case}: a secret in {shown}");
                }
                assert!(
                    target
                        .try_accept(Duration::from_millis(300))
                        .await
                        .is_none(),
                    "{case}: a second login"
                );
            }
            (_, result, _) => panic!("{case}: {:?}", result.map(|_| "logged in")),
        }
    }
}

fn unhex(value: &str) -> Vec<u8> {
    let digits = value.strip_prefix("0x").expect("a hex value");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Login text as a hostile target writes it: no key table checks.
fn text(pairs: &[(&str, &str)]) -> Bytes {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    Bytes::from(out)
}

fn value(req: &LoginRequest, key: &str) -> Option<String> {
    parse_pairs(&req.data, TextLimits::DEFAULT)
        .expect("our login text parses")
        .into_iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value)
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

/// A security-stage Login Response to `req` carrying `data`; `continue_`
/// says more text follows in the next one.
async fn answer(conn: &mut ScriptedConnection, req: &LoginRequest, data: Bytes, continue_: bool) {
    let mut resp = conn.login_failure(req, LoginStatus::SUCCESS, data);
    resp.continue_ = continue_;
    conn.send(resp).await;
}

/// Plays the security stage up to our CHAP_A offer: answers AuthMethod=CHAP
/// and returns the request that carries the offer.
async fn chap_offer(conn: &mut ScriptedConnection) -> LoginRequest {
    chap_offer_of(conn, "CHAP,None").await
}

/// [`chap_offer`] where our AuthMethod offer is `methods` (mutual CHAP
/// offers CHAP alone: None would let the target skip proving itself).
async fn chap_offer_of(conn: &mut ScriptedConnection, methods: &str) -> LoginRequest {
    let req = conn.expect_login().await;
    assert_eq!(value(&req, "AuthMethod").as_deref(), Some(methods));
    answer(conn, &req, text(&[("AuthMethod", "CHAP")]), false).await;
    conn.expect_login().await
}

/// §12.1.3: CHAP_C may be up to 1024 bytes. A target using all of them (2050
/// characters of hex in one login PDU) gets the right response (here
/// SHA-256 over identifier, secret and challenge, recomputed by hand), and
/// the session logs in and works.
/// UNH-IOL: CHAP #3.1
#[tokio::test]
async fn chap_challenge_of_1024_bytes_works() {
    let target = ScriptedTarget::bind().await;
    let challenge: Vec<u8> = (0..1024u32).map(|i| (i * 7 % 256) as u8).collect();
    let cfg = chap_config(&target, vec![ChapAlgorithm::Sha256]);
    let (session, conn) = tokio::join!(
        within(Duration::from_secs(10), "the login", Session::connect(cfg)),
        async {
            let mut conn = target.accept().await;
            let offer = chap_offer(&mut conn).await;
            assert_eq!(value(&offer, "CHAP_A").as_deref(), Some("7"));
            let chap_c = hex(&challenge);
            assert_eq!(chap_c.len(), 2050);
            let pairs = [
                ("CHAP_A", "7"),
                ("CHAP_I", "42"),
                ("CHAP_C", chap_c.as_str()),
            ];
            answer(&mut conn, &offer, text(&pairs), false).await;
            let resp = conn.expect_login().await;
            assert_eq!(value(&resp, "CHAP_N").as_deref(), Some(CHAP_USER));
            let mut h = Sha256::new();
            h.update([42u8]);
            h.update(CHAP_SECRET.as_bytes());
            h.update(&challenge);
            assert_eq!(value(&resp, "CHAP_R"), Some(hex(&h.finalize())));
            assert!(resp.transit && resp.nsg == Stage::Operational);
            let mut accepted = conn.login_failure(&resp, LoginStatus::SUCCESS, Bytes::new());
            accepted.transit = true;
            accepted.nsg = Stage::Operational;
            conn.send(accepted).await;
            let operational = conn.expect_login().await;
            conn.login_from(&LoginScript::default(), operational).await;
            conn.configure(Digests::default(), SEGMENT, SEGMENT);
            conn
        }
    );
    let session = session.expect("a 1024-byte challenge is allowed");
    let mut conn = conn;
    assert_eq!(session.status().chap_algorithm, Some(ChapAlgorithm::Sha256));
    read_works(&session, &mut conn).await;
}

/// §12.1.3: a CHAP_C over 1024 bytes is refused, as a failed authentication
/// (permanent: no retry), without a CHAP_R: 1025 bytes in one PDU, 16 KiB
/// spread over continued Login Responses (§6.3: C bit), and a 48 KiB one
/// whose 96 KiB of text pass the 64 KiB login text limit, which must end
/// the login as soon as the limit is passed rather than after the whole
/// text is buffered.
/// UNH-IOL: CHAP #3.3
#[tokio::test]
async fn chap_challenges_over_1024_bytes_are_refused() {
    const PIECE: usize = 8192;
    for (bytes, most_pieces) in [(1025usize, 1usize), (16 * 1024, 5), (48 * 1024, 9)] {
        let target = ScriptedTarget::bind().await;
        let cfg = chap_config(&target, vec![ChapAlgorithm::Sha256]);
        let challenge = hex(&vec![0x5a; bytes]);
        let (result, pieces) = tokio::join!(
            within(Duration::from_secs(5), "the login", Session::connect(cfg)),
            async {
                let mut conn = target.accept().await;
                let offer = chap_offer(&mut conn).await;
                let whole = text(&[("CHAP_A", "7"), ("CHAP_I", "1"), ("CHAP_C", &challenge)]);
                let mut req = offer;
                let mut pieces = 0;
                for (i, piece) in whole.chunks(PIECE).enumerate() {
                    let more = (i + 1) * PIECE < whole.len();
                    answer(&mut conn, &req, Bytes::copy_from_slice(piece), more).await;
                    pieces += 1;
                    match conn.try_recv(Duration::from_secs(3)).await {
                        // §6.3: a continued response is acknowledged with an
                        // empty request.
                        Some(Pdu::LoginRequest(next)) if more && next.data.is_empty() => req = next,
                        None => return pieces,
                        Some(other) => panic!("{bytes}-byte challenge answered with {other:?}"),
                    }
                }
                panic!("the initiator kept the connection open after the whole challenge")
            }
        );
        let err = result.expect_err("a challenge over 1024 bytes");
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{bytes}: {err:?}"
        );
        assert!(err.is_permanent_login_failure(), "{bytes}: {err:?}");
        assert!(
            pieces <= most_pieces,
            "{bytes}: {pieces} pieces of text taken before the refusal"
        );
    }
}

/// §12.1.3 and §6.2.1 (a list answer must be one of the values offered): a
/// target that picks a CHAP_A we did not offer (another known algorithm, or
/// a number nobody assigned) gets no CHAP_R: answering it would be the
/// downgrade the offer ruled out. The login fails at once as a failed
/// authentication naming the answer, which also stops the retries (not a
/// refused list, so no MD5 fallback either): one login, never a loop.
/// UNH-IOL: CHAP #1.2.1
#[tokio::test]
async fn chap_algorithm_we_did_not_offer_is_refused() {
    let cases = [
        (vec![ChapAlgorithm::Sha256], "5"),
        (vec![ChapAlgorithm::Sha256, ChapAlgorithm::Md5], "6"),
        (vec![ChapAlgorithm::Sha256, ChapAlgorithm::Md5], "99"),
    ];
    for (algorithms, picked) in cases {
        let target = ScriptedTarget::bind().await;
        let cfg = chap_config(&target, algorithms.clone());
        let (result, ()) = tokio::join!(
            within(Duration::from_secs(5), "the login", Session::connect(cfg)),
            async {
                let mut conn = target.accept().await;
                let offer = chap_offer(&mut conn).await;
                let pairs = [
                    ("CHAP_A", picked),
                    ("CHAP_I", "9"),
                    ("CHAP_C", "0x0102030405"),
                ];
                answer(&mut conn, &offer, text(&pairs), false).await;
                if let Some(pdu) = conn.try_recv(Duration::from_secs(3)).await {
                    panic!("CHAP_A={picked} not offered, answered with {pdu:?}");
                }
            }
        );
        let err = result.expect_err("an algorithm we did not offer");
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{algorithms:?}: {err:?}"
        );
        assert!(err.is_permanent_login_failure(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("illegal answer \"{picked}\"")) && text.contains("CHAP_A"),
            "{text}"
        );
        assert!(
            target
                .try_accept(Duration::from_millis(300))
                .await
                .is_none(),
            "{algorithms:?}: a second login"
        );
    }
}

/// §6.3: a target that takes the connection and never answers the Login
/// Request fails the login at the login timeout, neither before nor long
/// after.
#[tokio::test]
async fn silent_login_times_out() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::HandBack);
    cfg.timeouts.login = Duration::from_millis(400);
    let started = Instant::now();
    let (result, _conn) = tokio::join!(
        within(Duration::from_secs(3), "the login", Session::connect(cfg)),
        async {
            let mut conn = target.accept().await;
            conn.expect_login().await;
            conn
        }
    );
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout { what: "login", .. })),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_millis(380) && waited < Duration::from_secs(2),
        "gave up after {waited:?} on a 400 ms login timeout"
    );
}

/// §11.7 over TCP (a PDU may arrive in any number of pieces): a Data-In
/// written one byte per TCP segment, header and data, is decoded as if it
/// had come whole.
#[tokio::test]
async fn trickled_pdu_is_decoded() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(
        &target,
        config(&target, Recovery::HandBack),
        LoginScript::default(),
    )
    .await;
    let reader = spawn_execute(&session, read(512));
    let cmd = conn.expect_command().await;
    let data: Vec<u8> = (0..200u8).collect();
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(data.clone()),
        Some((0, Residual::Underflow(312))),
    );
    let bytes = conn.encode(din);
    for byte in bytes.iter() {
        conn.send_raw(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let done = outcome(Duration::from_secs(5), reader).await.unwrap();
    assert!(done.is_good());
    assert_eq!(done.data.to_bytes(), data);
    read_works(&session, &mut conn).await;
}

/// §6.3: the login timeout bounds the whole login, not the wait for each
/// byte: a Login Response trickled at a byte per 50 ms (it would take
/// seconds) fails the login at the 500 ms login timeout, as a timeout (its
/// first byte is a Login Response's: this is a slow iSCSI target, not
/// another protocol).
#[tokio::test]
async fn trickled_login_response_is_bounded_by_the_login_timeout() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::HandBack);
    cfg.timeouts.login = Duration::from_millis(500);
    let started = Instant::now();
    let login = tokio::spawn(Session::connect(cfg));
    let mut conn = target.accept().await;
    let req = conn.expect_login().await;
    let mut resp = conn.login_failure(&req, LoginStatus::SUCCESS, text(&[("AuthMethod", "None")]));
    resp.transit = true;
    resp.nsg = Stage::Operational;
    let bytes = conn.encode(resp);
    let trickle = tokio::spawn(async move {
        for byte in bytes.iter() {
            if !matches!(
                conn.try_send_raw(&[*byte], Duration::from_secs(1)).await,
                Ok(true)
            ) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let result = within(Duration::from_secs(3), "the login", login)
        .await
        .unwrap();
    let waited = started.elapsed();
    trickle.abort();
    assert!(
        matches!(result, Err(Error::Timeout { what: "login", .. })),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_millis(480) && waited < Duration::from_secs(2),
        "gave up after {waited:?} on a 500 ms login timeout"
    );
}

/// §6.3.5 (session reinstatement) and the session's ReconnectPolicy: a
/// target that completes every login and closes the connection at once. A
/// connection lost right after its login is no recovery, so the session
/// logs in again on the growing backoff (50, 100, 200, 400 ms...), not at
/// the first delay forever. Idle, such losses say nothing about the two
/// sides' understanding, so the session keeps trying.
#[tokio::test]
async fn target_closing_right_after_login_is_retried_on_the_backoff() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::Replay);
    let policy = ReconnectPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        multiplier: 2,
    };
    cfg.reconnect = policy.clone();
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    drop(conn);
    let mut logins = Vec::new();
    for _ in 0..6 {
        let mut conn = within(Duration::from_secs(5), "a reconnect", target.accept()).await;
        conn.login(&LoginScript::default()).await;
        logins.push(Instant::now());
        drop(conn);
    }
    let gaps: Vec<Duration> = logins.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().enumerate() {
        // The gap after loss n+1 includes the wait before attempt n+2.
        let least = policy.delay(i as u32 + 2, Duration::ZERO);
        assert!(
            *gap + Duration::from_millis(20) >= least,
            "login {} came {gap:?} after the one before; the backoff says at least {least:?} \
             (all gaps: {gaps:?})",
            i + 2
        );
        assert!(
            *gap < least + Duration::from_millis(500),
            "login {} came {gap:?} after the one before, long past the backoff's {least:?}",
            i + 2
        );
    }
    // The last login may still be on its way through the session.
    let mut watch = session.watch_status();
    let status = within(
        Duration::from_secs(2),
        "the sixth reconnect",
        watch.wait_for(|s| s.reconnects >= 6),
    )
    .await
    .unwrap()
    .clone();
    assert!(
        matches!(status.last_error, Some(Error::ConnectionLost { .. })),
        "{:?}",
        status.last_error
    );
}

/// The same target with a command waiting: each connection ends before the
/// command completes, the same way; after three such losses the session
/// stops (it would replay the command into the same failure until the
/// replacement timeout hid why), fails the command saying so, and logs in
/// again only when asked.
#[tokio::test]
async fn target_closing_right_after_login_with_a_command_waiting_stops() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target, Recovery::Replay);
    cfg.timeouts.replacement = Duration::from_secs(30);
    cfg.reconnect = ReconnectPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        multiplier: 2,
    };
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let reader = spawn_execute(&session, read(512));
    // The command reaches the target before its connection is closed.
    within(Duration::from_secs(5), "the read", conn.expect_command()).await;
    drop(conn);
    for _ in 0..2 {
        let mut conn = within(Duration::from_secs(5), "a reconnect", target.accept()).await;
        conn.login(&LoginScript::default()).await;
        let _ = conn.try_recv(Duration::from_millis(200)).await;
        drop(conn);
    }
    let started = Instant::now();
    match outcome(Duration::from_secs(5), reader).await {
        Err(e) if e.to_string().contains("reconnects stopped") => {}
        other => panic!("expected the repeated failure to stop the session, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        target.try_accept(Duration::from_secs(1)).await.is_none(),
        "logged in again without being asked"
    );
    let status = session.status();
    assert!(
        matches!(
            status.last_error,
            Some(Error::RepeatedFailure { count: 3, .. })
        ),
        "{:?}",
        status.last_error
    );
    session.reconnect_now();
    let mut conn = within(
        Duration::from_secs(5),
        "the asked-for login",
        target.accept(),
    )
    .await;
    conn.login(&LoginScript::default()).await;
}
