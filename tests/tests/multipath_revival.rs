//! Paths a multipath volume gets back on its own, with no operator action:
//! a path whose session stopped after the same failure ended three
//! connections in a row (scripted targets that frame their answers wrong,
//! then right), and a path lost while no path is usable, which is retried
//! every checker tick instead of after its grown backoff (tgtd behind a
//! fault proxy).

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iscsi_multipath::{MultipathVolume, NoPathRetry, PathState, VolumeOptions, VolumeStatus};
use iscsi_proto::pdu::{Pdu, Residual, ScsiCommand, TmfResponse};
use iscsi_session::{BlockDevice, Error, SessionState};
use riscsi_tests::prelude::*;
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};
use riscsi_tests::volume::{fast_options, open, wait_status};
use riscsi_tests::{ConnectionInfo, IscsiPath};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const IQN: &str = "iqn.2026-11.io.riscsi.test:revival";
const LONG: Duration = Duration::from_secs(20);
const MIB: u64 = 1 << 20;

/// The scripted LU: 512-byte blocks, 1 MiB.
const BLOCK: usize = 512;
const BLOCKS: u64 = 2048;
/// What one Data-In carries at most: the RFC's default
/// MaxRecvDataSegmentLength, within the 256 KiB riscsi declares.
const SEGMENT: usize = 8192;

const GOOD: u8 = 0x00;
const CHECK_CONDITION: u8 = 0x02;

/// A scripted target playing a small disk with a fixed LU identity (so two
/// of them are two paths to one LU), which can be told to frame every
/// answer four bytes off, as a target adding a header digest the initiator
/// did not agree to does.
struct ScriptedLu {
    addr: SocketAddr,
    state: Arc<LuState>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct LuState {
    broken: AtomicBool,
    /// When each login completed.
    logins: Mutex<Vec<Instant>>,
}

impl ScriptedLu {
    async fn start() -> ScriptedLu {
        let target = ScriptedTarget::bind().await;
        let addr = target.addr();
        let state = Arc::new(LuState::default());
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                // The initiator connects whenever it likes; none for an
                // hour is no reason to stop listening.
                if let Some(conn) = target.try_accept(Duration::from_secs(3600)).await {
                    tokio::spawn(serve(conn, shared.clone()));
                }
            }
        });
        ScriptedLu {
            addr,
            state,
            server,
        }
    }

    fn path(&self) -> IscsiPath {
        IscsiPath {
            portal: self.addr,
            iqn: IQN.into(),
            lun: 1,
        }
    }

    fn set_broken(&self, broken: bool) {
        self.state.broken.store(broken, Ordering::SeqCst);
    }

    fn logins(&self) -> Vec<Instant> {
        self.state.logins.lock().unwrap().clone()
    }
}

impl Drop for ScriptedLu {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Plays one connection: login, then every SCSI command answered as a disk
/// does (or broken, see [`ScriptedLu`]), pings answered, logout honoured.
async fn serve(mut conn: ScriptedConnection, state: Arc<LuState>) {
    conn.login(&LoginScript::default()).await;
    state.logins.lock().unwrap().push(Instant::now());
    // The initiator pings every second: a minute of silence means it left.
    while let Some(pdu) = conn.try_recv(Duration::from_secs(60)).await {
        match pdu {
            Pdu::ScsiCommand(cmd) if state.broken.load(Ordering::SeqCst) => {
                let din = conn.data_in(
                    &cmd,
                    0,
                    4,
                    Bytes::from(vec![0u8; BLOCK - 4]),
                    Some((GOOD, Residual::None)),
                );
                conn.send(din).await;
            }
            Pdu::ScsiCommand(cmd) => answer(&mut conn, &cmd).await,
            Pdu::NopOut(n) if !n.itt.is_reserved() => {
                let reply = conn.nop_in_reply(n.itt, n.data);
                conn.send(reply).await;
            }
            Pdu::TaskMgmtRequest(req) => {
                let resp = conn.tmf_response(&req, TmfResponse::FunctionComplete);
                conn.send(resp).await;
            }
            Pdu::LogoutRequest(req) => {
                let resp = conn.logout_response(&req);
                conn.send(resp).await;
                return;
            }
            _ => {}
        }
    }
}

/// The contents of block `lba`.
fn block(lba: u64) -> Vec<u8> {
    vec![(lba % 251) as u8 ^ 0xa5; BLOCK]
}

/// Fixed-format sense data: `key`, `asc`.
fn sense(key: u8, asc: u8) -> Vec<u8> {
    let mut s = vec![0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    s
}

const ILLEGAL_REQUEST: u8 = 0x05;
const INVALID_OPCODE: u8 = 0x20;
const INVALID_FIELD_IN_CDB: u8 = 0x24;

/// Answers what the volume sends: TEST UNIT READY, INQUIRY (standard and
/// the VPD pages of the LU identity), READ CAPACITY, READ, REPORT LUNS;
/// anything else is an invalid opcode.
async fn answer(conn: &mut ScriptedConnection, cmd: &ScsiCommand) {
    let cdb = &cmd.cdb[..];
    let data: Result<Vec<u8>, Vec<u8>> = match cdb[0] {
        0x00 => Ok(Vec::new()),
        0x12 if cdb[1] & 1 == 1 => {
            vpd(cdb[2]).ok_or_else(|| sense(ILLEGAL_REQUEST, INVALID_FIELD_IN_CDB))
        }
        0x12 => {
            let mut d = vec![0x00, 0x00, 0x05, 0x02, 31, 0, 0, 0];
            d.extend_from_slice(b"RISCSI  SCRIPTED LU     0001");
            Ok(d)
        }
        0x25 => {
            let mut d = ((BLOCKS - 1) as u32).to_be_bytes().to_vec();
            d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
            Ok(d)
        }
        0x9e if cdb[1] & 0x1f == 0x10 => {
            let mut d = (BLOCKS - 1).to_be_bytes().to_vec();
            d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
            d.resize(32, 0);
            Ok(d)
        }
        0x28 => {
            let lba = u64::from(u32::from_be_bytes(cdb[2..6].try_into().unwrap()));
            let count = u64::from(u16::from_be_bytes([cdb[7], cdb[8]]));
            Ok((lba..lba + count).flat_map(block).collect())
        }
        0x88 => {
            let lba = u64::from_be_bytes(cdb[2..10].try_into().unwrap());
            let count = u64::from(u32::from_be_bytes(cdb[10..14].try_into().unwrap()));
            Ok((lba..lba + count).flat_map(block).collect())
        }
        // One LUN, 1, in the peripheral addressing method.
        0xa0 => Ok(vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        _ => Err(sense(ILLEGAL_REQUEST, INVALID_OPCODE)),
    };
    match data {
        Ok(data) if cmd.read => send_data(conn, cmd, data).await,
        Ok(_) => {
            let resp = conn.response(cmd, GOOD, None, Residual::None);
            conn.send(resp).await;
        }
        Err(sense) => {
            let resp = conn.response(cmd, CHECK_CONDITION, Some(&sense), Residual::None);
            conn.send(resp).await;
        }
    }
}

/// VPD pages 00h, 80h and 83h (one NAA designator), as every path of the
/// LU reports them.
fn vpd(page: u8) -> Option<Vec<u8>> {
    match page {
        0x00 => Some(vec![0x00, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83]),
        0x80 => {
            let mut d = vec![0x00, 0x80, 0x00, 0x08];
            d.extend_from_slice(b"REVIVE01");
            Some(d)
        }
        0x83 => {
            let mut d = vec![0x00, 0x83, 0x00, 0x14, 0x01, 0x03, 0x00, 0x10];
            d.extend_from_slice(&[
                0x60, 0x01, 0x40, 0x5a, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x00, 0x00,
                0x00, 0x01,
            ]);
            Some(d)
        }
        _ => None,
    }
}

/// `data` in Data-In PDUs, the last with GOOD status and the residual.
async fn send_data(conn: &mut ScriptedConnection, cmd: &ScsiCommand, mut data: Vec<u8>) {
    let expected = cmd.expected_data_transfer_length as usize;
    let residual = match data.len() {
        n if n < expected => Residual::Underflow((expected - n) as u32),
        n if n > expected => Residual::Overflow((n - expected) as u32),
        _ => Residual::None,
    };
    data.truncate(expected);
    if data.is_empty() {
        let resp = conn.response(cmd, GOOD, None, residual);
        conn.send(resp).await;
        return;
    }
    let chunks: Vec<&[u8]> = data.chunks(SEGMENT).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let status = (i + 1 == chunks.len()).then_some((GOOD, residual));
        let din = conn.data_in(
            cmd,
            i as u32,
            (i * SEGMENT) as u32,
            Bytes::copy_from_slice(chunk),
            status,
        );
        conn.send(din).await;
    }
}

/// Reads 8 blocks from `lba` through the volume and checks them.
async fn read_checked(volume: &MultipathVolume, lba: u64) {
    let data = tokio::time::timeout(LONG, volume.read(lba, 8))
        .await
        .expect("the read completes in time")
        .expect("the read succeeds");
    let want: Vec<u8> = (lba..lba + 8).flat_map(block).collect();
    assert!(data.to_bytes()[..] == want[..], "blocks {lba}..+8 differ");
}

/// A fast checker (250 ms) whose slowest pace, the revival of a stopped
/// path, is 2 s.
fn revival_options() -> VolumeOptions {
    VolumeOptions {
        checker_interval: Duration::from_millis(250),
        checker_max_interval: Duration::from_secs(2),
        ..fast_options()
    }
}

/// The path at `index` shows its session stopped after repeated identical
/// failures: failed, naming why, the session in `Failed` on
/// [`Error::RepeatedFailure`].
fn stopped(volume: &MultipathVolume, status: &VolumeStatus, index: usize) -> bool {
    let path = &status.paths[index];
    let session = volume.sessions()[index].status();
    path.state == PathState::Failed
        && path.last_error.as_deref().is_some_and(|e| {
            e.contains("reconnects stopped")
                && e.contains("each of the last 3 connections")
                && e.contains("reads nothing")
        })
        && session.state == SessionState::Failed
        && matches!(
            session.last_error,
            Some(Error::RepeatedFailure { count: 3, .. })
        )
}

/// The main path's target starts framing its answers wrong: the checker's
/// idle TEST UNIT READY breaks the connection, and so does the first
/// command on each new one, until the session stops after three. I/O goes
/// on over the secondary; the checker logs the main path in again every
/// `checker_max_interval` (a broken target is not hammered, every tick),
/// and once the target behaves the main path is checked, restored, and
/// carries I/O again.
#[tokio::test]
async fn a_path_stopped_after_repeated_identical_failures_is_revived() {
    let main = ScriptedLu::start().await;
    let secondary = ScriptedLu::start().await;
    let mut info = ConnectionInfo::new(main.path());
    info.others.push(secondary.path());
    let volume = open(&info, ConnectionInfoForm::Lists, revival_options()).await;
    wait_status(&volume, LONG, "both paths usable", |s| {
        s.paths[0].state == PathState::Active && s.paths[1].state == PathState::Standby
    })
    .await;
    read_checked(&volume, 0).await;

    main.set_broken(true);
    // Logins so far, counted before the status is looked at: while the
    // session is stopped no revival login can have begun.
    let first_stop = Cell::new(0);
    let status = wait_status(&volume, LONG, "the main path stopped", |s| {
        first_stop.set(main.logins().len());
        stopped(&volume, s, 0)
    })
    .await;
    assert_eq!(status.paths[1].state, PathState::Active, "{status:#?}");
    let first_stop = first_stop.get();
    assert!(first_stop >= 4, "the first login and three broken ones");
    let served = status.paths[1].completed;
    read_checked(&volume, 100).await;
    assert!(
        volume.status().paths[1].completed > served,
        "the secondary carries I/O meanwhile"
    );

    // Still broken: each revival is three more logins, then a stop again.
    wait_status(&volume, LONG, "a revival, stopped again", |s| {
        main.logins().len() >= first_stop + 3 && stopped(&volume, s, 0)
    })
    .await;
    let next = tokio::time::timeout(LONG, async {
        while main.logins().len() < first_stop + 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(next.is_ok(), "a second revival");
    // From one revival's first login to the next: at least the 2 s
    // checker_max_interval, less how late the first login was; revivals
    // every tick would start the next one after the three losses (~0.75 s).
    let logins = main.logins();
    let pace = logins[first_stop + 3] - logins[first_stop];
    assert!(
        pace >= Duration::from_millis(1500),
        "revivals come at the checker's slowest pace, not every tick: {pace:?}"
    );

    main.set_broken(false);
    let fixed = Instant::now();
    let status = wait_status(&volume, LONG, "the main path back", |s| {
        s.paths[0].state == PathState::Active && s.paths[0].last_error.is_none()
    })
    .await;
    assert!(
        fixed.elapsed() < Duration::from_secs(10),
        "back within a revival or two: {:?}",
        fixed.elapsed()
    );
    assert_eq!(status.paths[1].state, PathState::Standby, "{status:#?}");
    let session = volume.sessions()[0].status();
    assert_eq!(session.state, SessionState::LoggedIn);
    let completed = status.paths[0].completed;
    read_checked(&volume, 1000).await;
    assert!(
        volume.status().paths[0].completed > completed,
        "the main path carries I/O again: {:#?}",
        volume.status()
    );
    volume.close().await;
}

/// The same with a single path: while its session is stopped the volume
/// has no path, a read waits (no_path_retry queue), and it completes once
/// the checker has logged the path in again against a target that behaves.
#[tokio::test]
async fn a_read_queued_on_a_stopped_only_path_completes_once_it_is_revived() {
    let lu = ScriptedLu::start().await;
    let info = ConnectionInfo::new(lu.path());
    let options = VolumeOptions {
        no_path_retry: NoPathRetry::Queue,
        ..revival_options()
    };
    let volume = open(&info, ConnectionInfoForm::Lists, options).await;
    read_checked(&volume, 0).await;

    lu.set_broken(true);
    let status = wait_status(&volume, LONG, "the path stopped", |s| {
        stopped(&volume, s, 0)
    })
    .await;
    assert!(status.no_path_ms.is_some(), "{status:#?}");
    let reader = tokio::spawn({
        let volume = volume.clone();
        async move { volume.read(40, 8).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished(), "the read waits for a path");

    lu.set_broken(false);
    let fixed = Instant::now();
    let data = tokio::time::timeout(LONG, reader)
        .await
        .expect("the read completes once the path is revived")
        .unwrap()
        .expect("the read succeeds");
    assert!(
        fixed.elapsed() < Duration::from_secs(10),
        "within a revival or two: {:?}",
        fixed.elapsed()
    );
    let want: Vec<u8> = (40..48).flat_map(block).collect();
    assert!(data.to_bytes()[..] == want[..], "the data of blocks 40..48");
    let status = volume.status();
    assert_eq!(status.paths[0].state, PathState::Active, "{status:#?}");
    assert!(status.no_path_ms.is_none(), "{status:#?}");
    volume.close().await;
}

/// While no path is usable, the checker logs lost paths in again every
/// tick: with a 250 ms checker and a 30 s longest backoff, a path whose
/// portal refuses logins for 9 s is tried about every tick (left to its
/// session, at 0.25, 0.75, 1.75, 3.75, 7.75, 15.75 s), and a read queued
/// meanwhile completes within about a tick of the portal coming back,
/// not at the next backoff step, 6 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_usable_path_lost_paths_are_retried_every_tick() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .lun(LunSpec::new(16 * MIB).pattern(11))
        .start()
        .unwrap();
    let proxy = FaultProxy::start(tgt.portals()[0]).unwrap();
    let listen = proxy.listen_addr();
    let info = tgt.connection_info_spec().map_portals(|_| listen);
    let options = VolumeOptions {
        checker_interval: Duration::from_millis(250),
        checker_max_interval: Duration::from_secs(30),
        no_path_retry: NoPathRetry::Queue,
        ..fast_options()
    };
    let volume = open(&info, ConnectionInfoForm::Lists, options).await;
    wait_status(&volume, LONG, "the path usable", |s| {
        s.paths[0].state == PathState::Active
    })
    .await;

    proxy.refuse();
    proxy.reset();
    wait_status(&volume, LONG, "no usable path", |s| s.no_path_ms.is_some()).await;
    let reader = tokio::spawn({
        let volume = volume.clone();
        async move { volume.read(0, 8).await }
    });
    // By now a session left alone would wait 2 s, then 4, then 8.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = proxy.stats().refused;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let tries = proxy.stats().refused - before;
    assert!(
        tries >= 8,
        "logins tried about every 250 ms tick while no path is usable: {tries} in 6 s"
    );
    assert!(!reader.is_finished(), "the read waits for a path");

    proxy.resume();
    let resumed = Instant::now();
    let data = tokio::time::timeout(LONG, reader)
        .await
        .expect("the queued read completes")
        .unwrap()
        .expect("the read succeeds");
    let took = resumed.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "back within about a tick of the portal, not at the next backoff step: {took:?}"
    );
    assert_eq!(
        data.to_bytes(),
        tgt.first_lun().read_backing(0, 4096).unwrap()
    );
    let status = volume.status();
    assert!(status.no_path_ms.is_none(), "{status:#?}");
    volume.close().await;
}
