//! What a session gives a multipath layer, against the scripted target:
//! unfinished commands handed back exactly once and marked sent or not, no
//! replay of a command whose caller stopped waiting, a session that exists
//! while its portal is down, reconnect control, permanent login failures
//! that stop the retries, target events, and an LU identity that a
//! transient failure cannot change.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{AsyncEvent, LoginStatus, Lun, Pdu, Residual};
use iscsi_proto::scsi::{Cdb, LuIdentityKind};
use iscsi_session::{
    Command, Delivery, Direction, Error, LuChange, ReconnectPolicy, Recovery, RetryPolicy,
    ScsiExecutor, Session, SessionConfig, SessionState, TargetEvent, TaskFailure,
};
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};

const TARGET: &str = "iqn.2026-11.io.riscsi.test:recovery";
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:initiator";

fn config(portal: SocketAddr, recovery: Recovery) -> SessionConfig {
    let mut c = SessionConfig::new(portal.into(), TARGET, INITIATOR);
    c.timeouts.login = Duration::from_secs(5);
    c.timeouts.command = Duration::from_secs(20);
    c.timeouts.nop_interval = Duration::ZERO;
    c.recovery = recovery;
    c.reconnect = ReconnectPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        multiplier: 2,
    };
    c
}

fn lun0() -> Lun {
    Lun::from_number(0).unwrap()
}

/// A one-block read at `lba`: the LBA tells the target which command it is.
fn read_at(lba: u64) -> Command {
    Command::new(
        lun0(),
        Cdb::read(lba, 1, false),
        Direction::Read { expected_len: 512 },
    )
}

fn lba_of(cdb: &[u8]) -> u64 {
    // READ(10) or READ(16), as Cdb::read picks.
    match cdb[0] {
        0x28 => u64::from(u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]])),
        0x88 => u64::from_be_bytes(cdb[2..10].try_into().unwrap()),
        other => panic!("not a READ: {other:#04x}"),
    }
}

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

/// Commands the target receives within `quiet` of silence.
async fn commands_seen(conn: &mut ScriptedConnection, quiet: Duration) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Some(pdu) = conn.try_recv(quiet).await {
        if let Pdu::ScsiCommand(c) = pdu {
            seen.push(lba_of(&c.cdb));
        }
    }
    seen
}

/// A multipath caller's view: with 32 commands in flight (8 admitted by
/// the window, 24 waiting behind it) the connection dies; every caller gets
/// its command back exactly once, marked sent or never sent, and the
/// session sends none of them again after it logs in anew.
#[tokio::test]
async fn hand_back_returns_every_unfinished_command_once() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        window: 8,
        ..LoginScript::default()
    };
    let cfg = config(target.addr(), Recovery::HandBack);
    let (session, mut conn) = connect(&target, cfg, script.clone()).await;
    let callers: Vec<_> = (0..32u64)
        .map(|lba| {
            let s = session.clone();
            tokio::spawn(async move { s.execute(read_at(lba)).await })
        })
        .collect();
    let mut sent = HashSet::new();
    for _ in 0..8 {
        sent.insert(lba_of(&conn.expect_command().await.cdb));
    }
    assert!(
        conn.try_recv(Duration::from_millis(200)).await.is_none(),
        "the window holds the other 24"
    );
    drop(conn);
    let (mut lost_sent, mut lost_unsent) = (HashSet::new(), HashSet::new());
    for (lba, caller) in callers.into_iter().enumerate() {
        let err = caller.await.unwrap().expect_err("no target answered");
        match &err {
            Error::Command {
                failure: TaskFailure::ConnectionLost { .. },
                ..
            } => {}
            other => panic!("command {lba}: expected a lost connection, got {other:?}"),
        }
        match err.delivery() {
            Some(Delivery::Sent) => lost_sent.insert(lba as u64),
            Some(Delivery::NotSent) => lost_unsent.insert(lba as u64),
            None => panic!("command {lba}: no delivery information"),
        };
    }
    assert_eq!(
        lost_sent, sent,
        "exactly the commands the target saw are marked sent"
    );
    assert_eq!(lost_unsent.len(), 24);
    // The session logs in again but replays nothing.
    let mut again = target.accept().await;
    again.login(&script).await;
    assert_eq!(
        commands_seen(&mut again, Duration::from_millis(500)).await,
        Vec::<u64>::new(),
        "a hand-back session never sends a command twice"
    );
    // And it works again: new commands flow on the new connection.
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(99)).await }
    });
    let cmd = again.expect_command().await;
    let din = again.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![1u8; 512]),
        Some((0, Residual::None)),
    );
    again.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// Without a connection, a hand-back session fails a command at once,
/// unsent, instead of holding it.
#[tokio::test]
async fn hand_back_fails_new_commands_unsent_while_disconnected() {
    let target = ScriptedTarget::bind().await;
    let cfg = config(target.addr(), Recovery::HandBack);
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    drop(conn);
    let mut status = session.watch_status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| !matches!(s.state, SessionState::LoggedIn)),
    )
    .await
    .expect("the session notices the loss")
    .unwrap();
    let started = tokio::time::Instant::now();
    let err = session
        .execute(read_at(1))
        .await
        .expect_err("no connection");
    assert!(started.elapsed() < Duration::from_secs(1), "failed at once");
    assert_eq!(err.delivery(), Some(Delivery::NotSent), "{err:?}");
    assert!(err.to_string().contains("not sent"), "{err}");
}

/// Replay mode (one path): a command whose caller stopped waiting is never
/// sent again on the next connection; the others are, once each.
#[tokio::test]
async fn a_dropped_callers_command_is_never_replayed() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::Replay);
    cfg.timeouts.replacement = Duration::from_secs(10);
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let kept = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(1)).await }
    });
    let abandoned = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(2)).await }
    });
    let mut first = vec![
        lba_of(&conn.expect_command().await.cdb),
        lba_of(&conn.expect_command().await.cdb),
    ];
    first.sort();
    assert_eq!(first, [1, 2]);
    // The caller of LBA 2 gives up (as a multipath layer would before
    // re-issuing it elsewhere), then the connection dies.
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    drop(conn);
    let mut again = target.accept().await;
    again.login(&LoginScript::default()).await;
    let cmd = again.expect_command().await;
    assert_eq!(
        lba_of(&cmd.cdb),
        1,
        "the waiting caller's command is replayed"
    );
    let din = again.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![7u8; 512]),
        Some((0, Residual::None)),
    );
    again.send(din).await;
    assert!(kept.await.unwrap().unwrap().is_good());
    assert_eq!(
        commands_seen(&mut again, Duration::from_millis(500)).await,
        Vec::<u64>::new(),
        "the abandoned command must not reach the target again"
    );
}

/// A portal that is down at start still gives a session object, which keeps
/// trying (attempts counted in its status) and logs in once the portal
/// listens; commands then flow.
#[tokio::test]
async fn a_session_started_while_its_portal_is_down_logs_in_later() {
    let placeholder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = placeholder.local_addr().unwrap();
    drop(placeholder);
    let session = Session::start(config(addr, Recovery::HandBack)).expect("a valid config");
    let mut status = session.watch_status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(
            |s| matches!(s.state, SessionState::Connecting { attempts } if attempts >= 3),
        ),
    )
    .await
    .expect("it keeps trying")
    .unwrap();
    let last = session
        .status()
        .last_error
        .expect("the failure is reported");
    assert!(matches!(last, Error::Connect { .. }), "{last:?}");
    let err = session
        .execute(read_at(0))
        .await
        .expect_err("not logged in");
    assert_eq!(err.delivery(), Some(Delivery::NotSent));

    let target = ScriptedTarget::bind_on(addr).await;
    let mut conn = target.accept().await;
    conn.login(&LoginScript::default()).await;
    session
        .wait_logged_in(Duration::from_secs(5))
        .await
        .expect("logged in once the portal is up");
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(5)).await }
    });
    let cmd = conn.expect_command().await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![5u8; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
    assert_eq!(
        session.status().reconnects,
        0,
        "the first login is not a reconnect"
    );
}

/// A wrong secret stays wrong: an authentication failure stops the login
/// attempts with that error instead of retrying forever; `reconnect_now`
/// tries again.
#[tokio::test]
async fn a_permanent_login_failure_stops_the_retries() {
    let target = ScriptedTarget::bind().await;
    let session = Session::start(config(target.addr(), Recovery::HandBack)).unwrap();
    let mut conn = target.accept().await;
    let req = conn.expect_login().await;
    let refusal = conn.login_failure(&req, LoginStatus::AUTHENTICATION_FAILURE, Bytes::new());
    conn.send(refusal).await;
    let mut status = session.watch_status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == SessionState::Failed),
    )
    .await
    .expect("logins stop")
    .unwrap();
    let err = session
        .wait_logged_in(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LoginGaveUp { .. }), "{err:?}");
    assert!(err.to_string().contains("logins stopped"), "{err}");
    assert!(
        target
            .try_accept(Duration::from_millis(800))
            .await
            .is_none(),
        "no further login attempt on its own (the backoff is 50-200 ms)"
    );
    let cmd_err = session.execute(read_at(0)).await.unwrap_err();
    assert!(cmd_err.to_string().contains("logins stopped"), "{cmd_err}");

    session.reconnect_now();
    let mut again = target
        .try_accept(Duration::from_secs(5))
        .await
        .expect("reconnect_now tries again");
    again.login(&LoginScript::default()).await;
    session
        .wait_logged_in(Duration::from_secs(5))
        .await
        .unwrap();
}

/// `reconnect_now` cuts the backoff short.
#[tokio::test]
async fn reconnect_now_skips_the_backoff() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::HandBack);
    cfg.reconnect = ReconnectPolicy {
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(60),
        multiplier: 2,
    };
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    drop(conn);
    assert!(
        target
            .try_accept(Duration::from_millis(500))
            .await
            .is_none(),
        "waits out its 30 s backoff"
    );
    session.reconnect_now();
    let mut again = target
        .try_accept(Duration::from_secs(5))
        .await
        .expect("reconnect_now logs in at once");
    again.login(&LoginScript::default()).await;
    session
        .wait_logged_in(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(session.status().reconnects, 1);
}

/// UNIT ATTENTIONs and asynchronous messages reach subscribers as events: a
/// capacity change in a command's sense, and a target dropping the
/// connection.
#[tokio::test]
async fn lu_changes_and_target_messages_are_events() {
    let target = ScriptedTarget::bind().await;
    let cfg = config(target.addr(), Recovery::HandBack);
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let mut events = session.target_events();
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(0)).await }
    });
    let cmd = conn.expect_command().await;
    let capacity_changed = [
        0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x09, 0, 0, 0, 0,
    ];
    let resp = conn.response(&cmd, 0x02, Some(&capacity_changed), Residual::None);
    conn.send(resp).await;
    let outcome = reader.await.unwrap().unwrap();
    assert_eq!(outcome.status, 0x02, "execute hands the CHECK CONDITION up");
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(
        event,
        TargetEvent::LunChanged {
            lun: lun0(),
            change: LuChange::CapacityChanged
        }
    );
    let drop_msg = conn.async_message(AsyncEvent::DropConnection, 0, 3, 0, Bytes::new());
    conn.send(drop_msg).await;
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(
        event,
        TargetEvent::DroppingConnection {
            time2wait: Duration::from_secs(3)
        }
    );
}

/// Answers one INQUIRY (VPD) with `page`, or with BUSY when `page` is None.
async fn answer_vpd(conn: &mut ScriptedConnection, expect_page: u8, page: Option<&[u8]>) {
    let cmd = conn.expect_command().await;
    assert_eq!(cmd.cdb[0], 0x12, "an INQUIRY");
    assert_eq!(
        (cmd.cdb[1] & 1, cmd.cdb[2]),
        (1, expect_page),
        "VPD page {expect_page:#04x}"
    );
    match page {
        Some(data) => {
            let din = conn.data_in(
                &cmd,
                0,
                0,
                Bytes::copy_from_slice(data),
                Some((
                    0,
                    Residual::Underflow(cmd.expected_data_transfer_length - data.len() as u32),
                )),
            );
            conn.send(din).await;
        }
        None => {
            let busy = conn.response(&cmd, 0x08, None, Residual::None);
            conn.send(busy).await;
        }
    }
}

const SUPPORTED: &[u8] = &[0x00, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83];
const SERIAL: &[u8] = &[0x00, 0x80, 0x00, 0x04, b'S', b'N', b'4', b'2'];
const DEVICE_ID: &[u8] = &[
    0x00, 0x83, 0x00, 0x0c, // header
    0x01, 0x03, 0x00, 0x08, // binary, NAA, LU association
    0x60, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
];

/// A transient failure reading VPD 83h is an error, not an identity from the
/// serial number (which would read as a different LU); with the page read,
/// the NAA designator is the identity.
#[tokio::test]
async fn lu_identity_is_not_changed_by_a_transient_failure() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::HandBack);
    cfg.retry = RetryPolicy::none();
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let scsi = session.scsi(lun0());
    let (identity, ()) = tokio::join!(scsi.lu_identity(), async {
        answer_vpd(&mut conn, 0x00, Some(SUPPORTED)).await;
        answer_vpd(&mut conn, 0x83, None).await;
    });
    let err = identity.expect_err("a BUSY page 83h is no identity");
    assert!(matches!(err, Error::RetriesExhausted { .. }), "{err:?}");

    let (identity, ()) = tokio::join!(scsi.lu_identity(), async {
        answer_vpd(&mut conn, 0x00, Some(SUPPORTED)).await;
        answer_vpd(&mut conn, 0x83, Some(DEVICE_ID)).await;
    });
    assert_eq!(identity.unwrap().kind(), LuIdentityKind::Naa);

    // A LU without page 83h (not in the supported list) uses its serial.
    let only_serial = [0x00, 0x00, 0x00, 0x02, 0x00, 0x80];
    let (identity, ()) = tokio::join!(scsi.lu_identity(), async {
        answer_vpd(&mut conn, 0x00, Some(&only_serial)).await;
        answer_vpd(&mut conn, 0x80, Some(SERIAL)).await;
    });
    assert_eq!(identity.unwrap().kind(), LuIdentityKind::UnitSerial);
}

/// Plays `rounds` connections that each log in, take the (replayed) read of
/// LBA 7, and fail it with `fail`; returns the last connection.
async fn lose_after_each_login<F, Fut>(
    target: &ScriptedTarget,
    mut conn: ScriptedConnection,
    rounds: usize,
    fail: F,
) -> ScriptedConnection
where
    F: Fn(ScriptedConnection, iscsi_proto::pdu::ScsiCommand) -> Fut,
    Fut: std::future::Future<Output = ScriptedConnection>,
{
    for round in 0..rounds {
        if round > 0 {
            conn = target.accept().await;
            conn.login(&LoginScript::default()).await;
        }
        let cmd = conn.expect_command().await;
        assert_eq!(lba_of(&cmd.cdb), 7, "round {round}: the read, replayed");
        conn = fail(conn, cmd).await;
    }
    conn
}

/// The session after [`lose_after_each_login`]: logins stopped with
/// [`Error::RepeatedFailure`], the read failed with it long before its 60 s
/// replacement timeout, no login on its own; `reconnect_now` tries again
/// and the session works.
async fn assert_reconnects_stopped(
    target: &ScriptedTarget,
    session: &Session,
    reader: tokio::task::JoinHandle<Result<iscsi_session::CommandOutcome, Error>>,
    started: tokio::time::Instant,
    says: &str,
) {
    let err = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the read fails long before the replacement timeout")
        .unwrap()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("reconnects stopped")
            && msg.contains("each of the last 3 connections")
            && msg.contains(says)
            && msg.contains(TARGET),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(session.status().state, SessionState::Failed);
    assert!(
        matches!(
            session.status().last_error,
            Some(Error::RepeatedFailure { count: 3, .. })
        ),
        "{:?}",
        session.status().last_error
    );
    assert!(
        target
            .try_accept(Duration::from_millis(800))
            .await
            .is_none(),
        "no further login on its own"
    );
    // A new command fails at once, with the same reason.
    let now = session.execute(read_at(1)).await.unwrap_err();
    assert!(now.to_string().contains("reconnects stopped"), "{now}");

    session.reconnect_now();
    let mut again = target
        .try_accept(Duration::from_secs(5))
        .await
        .expect("reconnect_now tries again");
    again.login(&LoginScript::default()).await;
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(7)).await }
    });
    let cmd = again.expect_command().await;
    let din = again.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![7u8; 512]),
        Some((0, Residual::None)),
    );
    again.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// A session that logs in fine and then loses every connection the same way
/// before its command completes (here the target never answers the command
/// or our pings: what istgt did when it framed PDUs with digests riscsi had
/// not agreed to) stops reconnecting after three such losses, instead of
/// replaying the command in a loop until the replacement timeout.
#[tokio::test]
async fn the_same_ping_timeout_after_every_login_stops_the_reconnects() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::Replay);
    cfg.timeouts.nop_interval = Duration::from_millis(100);
    cfg.timeouts.nop_timeout = Duration::from_millis(300);
    cfg.timeouts.replacement = Duration::from_secs(60);
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    let started = tokio::time::Instant::now();
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(7)).await }
    });
    lose_after_each_login(&target, conn, 3, |mut conn, _| async move {
        // Silence: the initiator gives up at its ping timeout.
        conn.expect_eof(Duration::from_secs(5)).await;
        conn
    })
    .await;
    assert_reconnects_stopped(&target, &session, reader, started, "NOP-Out ping").await;
}

/// The same with a protocol error right after each login ([`off_by_four`]).
#[tokio::test]
async fn the_same_protocol_error_after_every_login_stops_the_reconnects() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::Replay);
    cfg.timeouts.replacement = Duration::from_secs(60);
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    let started = tokio::time::Instant::now();
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read_at(7)).await }
    });
    lose_after_each_login(&target, conn, 3, off_by_four).await;
    assert_reconnects_stopped(&target, &session, reader, started, "offset 4").await;
}

/// A Data-In four bytes off, as a target framing a header digest we did not
/// expect sends: a protocol error.
async fn off_by_four(
    mut conn: ScriptedConnection,
    cmd: iscsi_proto::pdu::ScsiCommand,
) -> ScriptedConnection {
    let din = conn.data_in(
        &cmd,
        0,
        4,
        Bytes::from(vec![0u8; 508]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    conn.expect_eof(Duration::from_secs(5)).await;
    conn
}

/// Answers the read of LBA 7 on `conn` and checks its caller got it.
async fn answer_the_read(
    conn: &mut ScriptedConnection,
    reader: tokio::task::JoinHandle<Result<iscsi_session::CommandOutcome, Error>>,
) {
    let cmd = conn.expect_command().await;
    assert_eq!(lba_of(&cmd.cdb), 7);
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![7u8; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// Two identical losses, then a connection on which a command completes:
/// the streak ends there, so two more such losses do not stop the session.
#[tokio::test]
async fn a_connection_that_works_ends_the_streak() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(target.addr(), Recovery::Replay);
    cfg.timeouts.replacement = Duration::from_secs(60);
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    let read = |session: &Session| {
        let s = session.clone();
        tokio::spawn(async move { s.execute(read_at(7)).await })
    };
    let reader = read(&session);
    lose_after_each_login(&target, conn, 2, off_by_four).await;
    let mut good = target.accept().await;
    good.login(&LoginScript::default()).await;
    answer_the_read(&mut good, reader).await;

    let reader = read(&session);
    lose_after_each_login(&target, good, 2, off_by_four).await;
    let mut again = target
        .try_accept(Duration::from_secs(5))
        .await
        .expect("two losses since a command worked: the session logs in again");
    again.login(&LoginScript::default()).await;
    answer_the_read(&mut again, reader).await;
    assert_eq!(session.status().state, SessionState::LoggedIn);
}
