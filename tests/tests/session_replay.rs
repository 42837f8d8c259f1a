//! Session-level replay ([`Recovery::Replay`], the default) with a deep
//! queue, against the scripted target: the target drops the connection with
//! 32 reads outstanding, and after the session logs in again the target
//! receives each of them exactly once, answers them, and every caller gets
//! its own data. ERL 0 (RFC 7143 §7.1.1): a new login, nothing recovered
//! within the old connection, so the initiator must send them all again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{Lun, Pdu, Residual, ScsiCommand};
use iscsi_proto::scsi::Cdb;
use iscsi_session::{
    Command, Direction, ReconnectPolicy, Recovery, Session, SessionConfig, SessionState,
};
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};

const TARGET: &str = "iqn.2026-11.io.riscsi.test:replay";
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:initiator";

/// Reads outstanding when the connection drops.
const IN_FLIGHT: u64 = 32;

fn config(portal: SocketAddr) -> SessionConfig {
    let mut c = SessionConfig::new(portal.into(), TARGET, INITIATOR);
    assert_eq!(c.recovery, Recovery::Replay, "the default");
    c.timeouts.login = Duration::from_secs(5);
    c.timeouts.command = Duration::from_secs(20);
    c.timeouts.nop_interval = Duration::ZERO;
    // Long enough for the reconnect below (a backoff of 50 ms), short
    // enough that a lost command fails the test instead of hanging it.
    c.timeouts.replacement = Duration::from_secs(5);
    c.reconnect = ReconnectPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        multiplier: 2,
    };
    c
}

/// A one-block read at `lba`: the LBA tells the target which command it is.
fn read_at(lba: u64) -> Command {
    Command::new(
        Lun::from_number(0).unwrap(),
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

/// The block at `lba`, as this target serves it: distinct per command.
fn block(lba: u64) -> Vec<u8> {
    (0..512u64).map(|i| (lba * 7 + i) as u8).collect()
}

/// Receives SCSI commands until `count` distinct LBAs arrived, failing on a
/// duplicate; then checks nothing more comes within `quiet`.
async fn receive_each_once(
    conn: &mut ScriptedConnection,
    count: u64,
    quiet: Duration,
) -> HashMap<u64, ScsiCommand> {
    let mut seen: HashMap<u64, ScsiCommand> = HashMap::new();
    while (seen.len() as u64) < count {
        match conn.recv().await {
            Pdu::ScsiCommand(cmd) => {
                let lba = lba_of(&cmd.cdb);
                assert!(
                    seen.insert(lba, cmd).is_none(),
                    "LBA {lba} received twice on the new connection"
                );
            }
            other => panic!("expected a SCSI Command, got {other:?}"),
        }
    }
    if let Some(pdu) = conn.try_recv(quiet).await {
        panic!("nothing more was expected, got {pdu:?}");
    }
    seen
}

/// `window` is the command window of the first connection: 64 lets all 32
/// reads onto the wire before the drop, 8 holds 24 of them back unsent, so
/// the replay covers commands sent and never sent alike.
async fn dropped_with_32_reads_outstanding(window: u32) {
    let target = ScriptedTarget::bind().await;
    let first_script = LoginScript {
        window,
        ..LoginScript::default()
    };
    let (session, mut conn) = tokio::join!(Session::connect(config(target.addr())), async {
        let mut conn = target.accept().await;
        conn.login(&first_script).await;
        conn
    });
    let session = session.expect("login");
    let callers: Vec<_> = (0..IN_FLIGHT)
        .map(|lba| {
            let s = session.clone();
            tokio::spawn(async move { s.execute(read_at(lba)).await })
        })
        .collect();
    let on_the_wire = u64::from(window).min(IN_FLIGHT);
    let first = receive_each_once(&mut conn, on_the_wire, Duration::from_millis(300)).await;
    assert_eq!(first.len() as u64, on_the_wire);

    // The target drops the connection without answering any of them.
    drop(conn);

    let mut again = target.accept().await;
    again.login(&LoginScript::default()).await;
    let replayed = receive_each_once(&mut again, IN_FLIGHT, Duration::from_millis(300)).await;
    let mut lbas: Vec<u64> = replayed.keys().copied().collect();
    lbas.sort_unstable();
    assert_eq!(lbas, (0..IN_FLIGHT).collect::<Vec<_>>());

    // Answered in reverse order: each caller must get its own block back,
    // matched by task tag, not by arrival.
    for lba in (0..IN_FLIGHT).rev() {
        let cmd = &replayed[&lba];
        let din = again.data_in(
            cmd,
            0,
            0,
            Bytes::from(block(lba)),
            Some((0, Residual::None)),
        );
        again.send(din).await;
    }
    for (lba, caller) in callers.into_iter().enumerate() {
        let lba = lba as u64;
        let outcome = caller
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("read of LBA {lba} failed after the replay: {e}"));
        assert!(outcome.is_good(), "LBA {lba}: {outcome:?}");
        assert!(
            outcome.data.to_bytes() == block(lba),
            "LBA {lba}: another command's data"
        );
    }
    let status = session.status();
    assert_eq!(status.state, SessionState::LoggedIn);
    assert_eq!(status.reconnects, 1, "{status:?}");
    if let Some(pdu) = again.try_recv(Duration::from_millis(300)).await {
        panic!("nothing is sent a third time, got {pdu:?}");
    }
}

#[tokio::test]
async fn thirty_two_reads_sent_then_dropped_are_replayed_once_each() {
    dropped_with_32_reads_outstanding(64).await;
}

#[tokio::test]
async fn reads_sent_and_held_by_the_window_are_replayed_once_each() {
    dropped_with_32_reads_outstanding(8).await;
}
