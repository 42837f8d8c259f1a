//! Hostile NBD clients against a real `riscsi attach` over a tgtd LUN: a
//! handshake that never ends (silent, or trickled byte by byte), 10,000
//! idle connections, every slot taken, a WRITE announcing 4 GiB, requests
//! after NBD_CMD_DISC, garbage between requests, unknown options and
//! commands, and a client that sends reads and never reads the replies.
//!
//! In every case the server stays up (each test ends with the clean stop),
//! a well-behaved client is served meanwhile (its data checked with SHA-256
//! against the LUN's backing file), and the memory of the attach process
//! stays bounded: its peak RSS (VmHWM, reset through
//! /proc/PID/clear_refs before the case) is asserted.
//!
//! Every wait has a deadline; the machine may be loaded by other tests, so
//! the bounds on time are generous and the bounds on memory are not.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use riscsi_tests::nbd_client::{NbdClient, NbdStream, proto::*, read_greeting};
use riscsi_tests::prelude::*;
use riscsi_tests::{Attach, pattern};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// A state the server reaches by itself.
const SETTLE: Duration = Duration::from_secs(20);
/// What the server may take to answer one request, loaded.
const ANSWER: Duration = Duration::from_secs(30);

/// A one-portal tgtd exporting a pattern-filled LUN of `size` bytes.
fn tgt(size: u64, seed: u64) -> Tgt {
    Tgt::builder()
        .lun(LunSpec::new(size).pattern(seed))
        .start()
        .expect("tgtd starts")
}

fn attach(tgt: &Tgt, args: &[&str]) -> Attach {
    let info = tgt.connection_info(ConnectionInfoForm::Lists);
    Attach::start(&info, args).expect("riscsi attach serves the volume")
}

fn socket(attach: &Attach) -> &Path {
    attach.nbd_socket().expect("a unix socket")
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn backing(tgt: &Tgt, offset: u64, len: u64) -> Vec<u8> {
    tgt.first_lun()
        .read_backing(offset, len as usize)
        .expect("the backing file reads")
}

/// Bytes no fixture starts with.
fn payload(seed: u64, len: u64) -> Vec<u8> {
    pattern::bytes(seed ^ 0x686f_7374_696c_6500, 0, len as usize)
}

/// A well-behaved client: a fresh connection writes 1 MiB at `offset` (FUA),
/// reads it back, and both the reply and the backing file must hash as
/// what was sent.
#[track_caller]
fn well_behaved(attach: &Attach, tgt: &Tgt, offset: u64, seed: u64) {
    let data = payload(seed, MIB);
    let mut c = NbdClient::unix(socket(attach), "", true)
        .unwrap_or_else(|e| panic!("a well-behaved client gets in: {e}"));
    assert_eq!(
        c.write(offset, &data, CMD_FLAG_FUA).unwrap(),
        0,
        "its write"
    );
    let back = c.read(offset, MIB as u32).unwrap().expect("its read");
    assert_eq!(sha256(&back), sha256(&data), "what it reads back");
    assert_eq!(
        sha256(&backing(tgt, offset, MIB)),
        sha256(&data),
        "what reached the LU"
    );
    c.disconnect().unwrap();
}

/// The clean stop every test ends with: exit 0, sockets removed.
fn stop(attach: Attach) -> String {
    attach.stop().unwrap_or_else(|e| panic!("{e}"))
}

/// A `kB` field of /proc/PID/status, in bytes.
fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    kib * 1024
}

/// The peak RSS of `pid` from now on: resets VmHWM to the current RSS and
/// returns that (the baseline).
fn reset_peak_rss(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .unwrap_or_else(|e| panic!("cannot reset the peak RSS of {pid}: {e}"));
    proc_status(pid, "VmRSS")
}

fn peak_rss(pid: u32) -> u64 {
    proc_status(pid, "VmHWM")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Whether the server closed `stream` within `timeout` (what it sent
/// before is ignored).
fn closed_within(stream: &mut NbdStream, timeout: Duration) -> bool {
    stream.read_until_closed(timeout).expect("a read").0
}

fn nbd_clients(attach: &Attach) -> u64 {
    attach
        .status()
        .map(|s| s["nbd_clients"].as_u64().unwrap_or(u64::MAX))
        .unwrap_or(u64::MAX)
}

#[track_caller]
fn wait_clients(attach: &Attach, what: &str, cond: impl Fn(u64) -> bool) -> Value {
    attach
        .wait_status(SETTLE, |s| s["nbd_clients"].as_u64().is_some_and(&cond))
        .unwrap_or_else(|s| panic!("{what}: {s:#}"))
}

fn option(option: u32, data: &[u8]) -> Vec<u8> {
    let mut out = IHAVEOPT.to_be_bytes().to_vec();
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// One option reply: (option, type, data).
fn option_reply(s: &mut NbdStream) -> std::io::Result<(u32, u32, Vec<u8>)> {
    let mut header = [0u8; 20];
    s.read_exact(&mut header)?;
    assert_eq!(&header[..8], &REPLY_MAGIC.to_be_bytes(), "an option reply");
    let word = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap());
    let mut data = vec![0; word(16) as usize];
    s.read_exact(&mut data)?;
    Ok((word(8), word(12), data))
}

/// A request header (28 bytes).
fn request(command: u16, handle: u64, offset: u64, length: u32) -> Vec<u8> {
    let mut v = REQUEST_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&command.to_be_bytes());
    v.extend_from_slice(&handle.to_be_bytes());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(&length.to_be_bytes());
    v
}

/// Sends `bytes` one at a time, `every` apart, from a thread, until they
/// are all sent or the server closes; the thread returns how many went.
fn trickle(stream: &NbdStream, bytes: Vec<u8>, every: Duration) -> thread::JoinHandle<usize> {
    let mut s = stream.try_clone().expect("a second handle");
    thread::spawn(move || {
        for (i, b) in bytes.iter().enumerate() {
            if s.write_all(&[*b]).is_err() {
                return i;
            }
            thread::sleep(every);
        }
        bytes.len()
    })
}

/// A handshake that never finishes, three ways: a client that reads the
/// greeting and says nothing, one that trickles a valid handshake a byte
/// every 500 ms (it would need 20 s), and one that announces a 60 KiB
/// option and trickles its data. The handshake timeout (2 s here) closes
/// each; meanwhile a well-behaved client is served.
#[test]
fn handshakes_that_never_finish_end_at_the_timeout() {
    let tgt = tgt(8 * MIB, 41);
    let attach = attach(&tgt, &["--nbd-handshake-timeout", "2"]);
    let pid = attach.pid();
    let baseline = reset_peak_rss(pid);
    let started = Instant::now();

    let mut silent = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut silent).unwrap();

    let mut slow = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut slow).unwrap();
    let mut handshake = 3u32.to_be_bytes().to_vec();
    let mut go = 0u32.to_be_bytes().to_vec();
    go.extend_from_slice(&0u16.to_be_bytes());
    handshake.extend(option(OPT_GO, &go));
    assert!(handshake.len() > 20);
    let slow_sender = trickle(&slow, handshake, Duration::from_millis(500));

    let mut big = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut big).unwrap();
    big.write_all(&3u32.to_be_bytes()).unwrap();
    let mut header = option(0x7777, &[]);
    header[12..16].copy_from_slice(&(60u32 << 10).to_be_bytes());
    big.write_all(&header).unwrap();
    let big_sender = trickle(&big, vec![0x5a; 60 << 10], Duration::from_millis(20));

    well_behaved(&attach, &tgt, 0, 1);
    for (what, stream) in [
        ("silent", &mut silent),
        ("trickled handshake", &mut slow),
        ("trickled option", &mut big),
    ] {
        assert!(
            closed_within(stream, SETTLE),
            "{what}: still open after {:?}",
            started.elapsed()
        );
        let at = started.elapsed();
        // Not before the timeout: a slow client is not dropped early.
        assert!(
            at >= Duration::from_millis(1900),
            "{what} closed after {at:?}"
        );
    }
    let sent = slow_sender.join().unwrap();
    assert!(
        sent < 25,
        "the trickled handshake was not let finish: {sent} bytes"
    );
    big_sender.join().unwrap();
    wait_clients(&attach, "the three are gone", |n| n == 0);
    well_behaved(&attach, &tgt, MIB, 2);
    let grew = peak_rss(pid).saturating_sub(baseline);
    eprintln!("peak RSS growth: {} KiB", grew >> 10);
    assert!(grew < 16 * MIB, "the RSS grew by {} KiB", grew >> 10);
    stop(attach);
}

/// Raises this process's open file limit to at least `n` (root may raise
/// the hard limit too).
fn allow_open_files(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < n {
        setrlimit(Resource::RLIMIT_NOFILE, n.max(soft), n.max(hard)).unwrap_or_else(|e| {
            panic!("cannot raise RLIMIT_NOFILE to {n} (now {soft}/{hard}): {e}")
        });
    }
}

/// 10,000 connections that say nothing, all held open by the client. The
/// server keeps at most 16 of them (the handshake slots: each newcomer
/// closes the oldest), so its open files stay within a constant of its own
/// (the slots, the 16 accepted ones queued for admission, and evicted ones
/// whose task has not run yet: 49 more was measured) and return to them
/// afterwards, its memory is flat, it logs one line per 10 s about it, and
/// a well-behaved client gets in as soon as the flood is accepted, without
/// waiting for any timeout.
#[test]
fn ten_thousand_idle_connections_leave_room_for_a_client() {
    const FLOOD: usize = 10_000;
    allow_open_files(FLOOD as u64 + 1024);
    let tgt = tgt(8 * MIB, 42);
    let attach = attach(&tgt, &[]);
    let pid = attach.pid();
    let fds_before = open_fds(pid);
    let baseline = reset_peak_rss(pid);
    let started = Instant::now();

    // Connects from a thread, so that a server that stopped accepting
    // fails the test at the deadline instead of blocking it.
    let (tx, rx) = mpsc::channel();
    let path = socket(&attach).to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let flooding = done.clone();
    thread::spawn(move || {
        let mut held = Vec::with_capacity(FLOOD);
        for _ in 0..FLOOD {
            match UnixStream::connect(&path) {
                Ok(s) => held.push(s),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        flooding.store(true, Ordering::SeqCst);
        let _ = tx.send(Ok(held));
    });
    // The server's open files, sampled while the flood lasts.
    let mut most_fds = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        most_fds = most_fds.max(open_fds(pid));
        thread::sleep(Duration::from_millis(20));
    }
    let held = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1))
        .expect("10,000 connects within 3 minutes")
        .expect("every connect succeeds");
    let flood_took = started.elapsed();

    // The flood is in; the next client must get in without waiting for the
    // 30 s handshake timeout.
    let client_at = Instant::now();
    well_behaved(&attach, &tgt, 2 * MIB, 3);
    let client_took = client_at.elapsed();
    most_fds = most_fds.max(open_fds(pid));
    let clients = nbd_clients(&attach);

    // At most the handshake slots' worth of the flood is still open.
    let mut open = 0;
    for s in &held {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let mut r = s;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    open += 1;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    drop(held);
    wait_clients(&attach, "the flood is gone", |n| n == 0);
    let settled = Instant::now() + SETTLE;
    while open_fds(pid) > fds_before && Instant::now() < settled {
        thread::sleep(Duration::from_millis(50));
    }
    let fds_after = open_fds(pid);
    let grew = peak_rss(pid).saturating_sub(baseline);
    let log = attach.stderr();
    let evictions = log.matches("closed the oldest NBD client").count();
    eprintln!(
        "{FLOOD} connections in {flood_took:?}; then a client served in {client_took:?}; \
         server fds {fds_before} before, {most_fds} at most, {fds_after} after; {open} of the flood still open; \
         nbd_clients {clients}; peak RSS growth {} KiB; {evictions} eviction log lines",
        grew >> 10
    );
    assert!(open <= 16, "{open} idle connections kept open");
    assert!(clients <= 16, "nbd_clients {clients}");
    assert!(
        most_fds <= fds_before + 128,
        "the server held {most_fds} files (had {fds_before})"
    );
    assert!(
        fds_after <= fds_before,
        "the server holds {fds_after} files after the flood (had {fds_before})"
    );
    assert!(grew < 32 * MIB, "the RSS grew by {} KiB", grew >> 10);
    assert!(evictions >= 1, "no log line about the flood:\n{log}");
    let periods = (started.elapsed().as_secs() / 10 + 1) as usize;
    assert!(
        evictions <= periods,
        "{evictions} eviction lines in {:?}: not one per 10 s",
        started.elapsed()
    );
    assert!(!log.contains("accept failed"), "{log}");
    stop(attach);
}

/// `--nbd-max-clients 3`, every slot held by a client past its handshake:
/// a fourth connection is closed at once, before any greeting, and a flood
/// of them logs one line. One of the three leaving makes room. A slot held
/// by a client still negotiating is taken from it for a newcomer.
#[test]
fn with_every_slot_taken_new_clients_are_turned_away() {
    let tgt = tgt(8 * MIB, 43);
    let attach = attach(&tgt, &["--nbd-max-clients", "3"]);
    let mut three: Vec<NbdClient> = (0..3)
        .map(|_| NbdClient::unix(socket(&attach), "", false).expect("one of three"))
        .collect();
    wait_clients(&attach, "three clients", |n| n == 3);
    for i in 0..200 {
        let mut s = NbdStream::unix(socket(&attach)).unwrap();
        let (closed, got) = s.read_until_closed(SETTLE).unwrap();
        assert!(closed && got.is_empty(), "connection {i}: {got:?}");
    }
    let log = attach.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("turned away")).collect();
    assert_eq!(lines.len(), 1, "one line for the flood:\n{log}");
    assert!(lines[0].contains("3 clients are connected"), "{}", lines[0]);
    // The three were not disturbed.
    for c in &mut three {
        let data = c.read(0, 4096).unwrap().expect("a read");
        assert_eq!(sha256(&data), sha256(&backing(&tgt, 0, 4096)));
    }
    three.pop().unwrap().disconnect().unwrap();
    wait_clients(&attach, "two left", |n| n == 2);
    // The free slot goes to a client that idles in its handshake; a
    // well-behaved newcomer takes it from that one.
    let mut idle = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut idle).unwrap();
    wait_clients(&attach, "the idle one is in", |n| n == 3);
    well_behaved(&attach, &tgt, 3 * MIB, 4);
    assert!(
        closed_within(&mut idle, SETTLE),
        "the idle handshake is closed"
    );
    for c in three {
        c.disconnect().unwrap();
    }
    wait_clients(&attach, "all gone", |n| n == 0);
    stop(attach);
}

/// A WRITE whose header announces 4 GiB - 1 (the most the field holds):
/// refused with EINVAL at once, from the header alone; the payload the
/// client then sends is skipped as it comes, never buffered (256 MiB of it
/// here, with the RSS watched); a well-behaved client is served meanwhile.
#[test]
fn a_write_announcing_4_gib_is_refused_without_buffering_it() {
    let tgt = tgt(8 * MIB, 44);
    let attach = attach(&tgt, &[]);
    let pid = attach.pid();
    let before = backing(&tgt, 0, 8 * MIB);
    for structured in [true, false] {
        let baseline = reset_peak_rss(pid);
        let (mut tx, mut rx) = NbdClient::unix(socket(&attach), "", structured)
            .unwrap()
            .into_split();
        let handle = tx.next_handle();
        tx.send_bytes(&request(CMD_WRITE, handle, 0, u32::MAX))
            .unwrap();
        let reply = rx.receive().expect("an answer before any payload");
        assert_eq!((reply.handle, reply.error), (handle, EINVAL), "{reply:?}");
        if structured {
            assert!(reply.message.contains("more than"), "{reply:?}");
        }
        let junk = vec![0xee; MIB as usize];
        for _ in 0..256 {
            tx.send_bytes(&junk).unwrap();
        }
        well_behaved(&attach, &tgt, 4 * MIB, 5);
        let grew = peak_rss(pid).saturating_sub(baseline);
        eprintln!(
            "structured {structured}: peak RSS growth {} KiB",
            grew >> 10
        );
        assert!(grew < 16 * MIB, "the RSS grew by {} KiB", grew >> 10);
        // Still skipping: anything else it sends is payload. It leaves.
        drop((tx, rx));
    }
    wait_clients(&attach, "the writers are gone", |n| n == 0);
    let mut expected = before;
    expected[4 << 20..5 << 20].copy_from_slice(&payload(5, MIB));
    assert_eq!(
        sha256(&backing(&tgt, 0, 8 * MIB)),
        sha256(&expected),
        "nothing of the junk reached the LU"
    );
    stop(attach);
}

/// Requests after NBD_CMD_DISC, sent in the same write: the one before is
/// answered, then the server closes without serving any of them (a WRITE
/// among them does not reach the LU).
#[test]
fn requests_after_disconnect_are_not_served() {
    let tgt = tgt(8 * MIB, 45);
    let attach = attach(&tgt, &[]);
    let before = backing(&tgt, 0, 8 * MIB);
    for structured in [false, true] {
        let (mut tx, mut rx) = NbdClient::unix(socket(&attach), "", structured)
            .unwrap()
            .into_split();
        let mut wire = request(CMD_READ, 1, 0, 4096);
        wire.extend(request(CMD_DISC, 2, 0, 0));
        wire.extend(request(CMD_READ, 3, 4096, 4096));
        wire.extend(request(CMD_WRITE, 4, 0, 4096));
        wire.extend(vec![0xee; 4096]);
        wire.extend(request(CMD_FLUSH, 5, 0, 0));
        tx.send_bytes(&wire).unwrap();
        // Raw: the client's own framing expects requests it sent itself.
        let stream = rx.stream_mut();
        let (closed, got) = stream.read_until_closed(SETTLE).unwrap();
        assert!(
            closed,
            "structured {structured}: the server keeps the connection"
        );
        let reply_len = if structured { 20 + 8 + 4096 } else { 16 + 4096 };
        assert_eq!(
            got.len(),
            reply_len,
            "structured {structured}: exactly the reply to the READ before DISC"
        );
        assert_eq!(&got[got.len() - 4096..], &before[..4096]);
    }
    assert_eq!(
        sha256(&backing(&tgt, 0, 8 * MIB)),
        sha256(&before),
        "the WRITE after DISC did not reach the LU"
    );
    well_behaved(&attach, &tgt, MIB, 6);
    stop(attach);
}

/// Garbage between valid requests: what came before is served, the
/// connection is dropped at the garbage, nothing after it is served, and
/// another client connected all along never notices.
#[test]
fn garbage_between_requests_drops_only_that_client() {
    let tgt = tgt(8 * MIB, 46);
    let attach = attach(&tgt, &[]);
    let mut bystander = NbdClient::unix(socket(&attach), "", true).unwrap();
    let before = backing(&tgt, 0, 8 * MIB);
    let mine = payload(7, 4096);
    let garbage: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n\r\n",
        &[0u8; 28],
        &[0xff; 100],
        // A request magic with one bit flipped.
        &[0x25, 0x60, 0x95, 0x12, 0, 0, 0, 0],
    ];
    for (i, junk) in garbage.iter().enumerate() {
        let offset = 2 * MIB + i as u64 * 8192;
        let (mut tx, mut rx) = NbdClient::unix(socket(&attach), "", false)
            .unwrap()
            .into_split();
        let mut wire = request(CMD_WRITE, 1, offset, 4096);
        wire.extend_from_slice(&mine);
        wire.extend_from_slice(junk);
        wire.extend(request(CMD_WRITE, 2, offset + 4096, 4096));
        wire.extend(vec![0xee; 4096]);
        tx.send_bytes(&wire).unwrap();
        let (closed, got) = rx.stream_mut().read_until_closed(SETTLE).unwrap();
        assert!(closed, "garbage {i}: the connection is dropped");
        assert_eq!(got.len(), 16, "garbage {i}: the first write's reply only");
        assert_eq!(&got[..4], &SIMPLE_REPLY_MAGIC.to_be_bytes());
        assert_eq!(&got[4..8], &0u32.to_be_bytes(), "the first write worked");
        assert_eq!(
            backing(&tgt, offset, 4096),
            mine,
            "garbage {i}: first write"
        );
        assert_eq!(
            backing(&tgt, offset + 4096, 4096),
            &before[(offset + 4096) as usize..(offset + 8192) as usize],
            "garbage {i}: nothing after the garbage was written"
        );
        let data = bystander
            .read(0, 4096)
            .unwrap()
            .expect("the bystander reads");
        assert_eq!(sha256(&data), sha256(&before[..4096]));
    }
    bystander.disconnect().unwrap();
    well_behaved(&attach, &tgt, 0, 8);
    stop(attach);
}

/// Options nobody implements here (meta contexts, extended headers, made-up
/// numbers) get NBD_REP_ERR_UNSUP and the haggling goes on; a flood of 300
/// options ends the connection at the 256th; commands nobody negotiated
/// (BLOCK_STATUS without a meta context, made-up numbers) get EINVAL and the
/// connection goes on.
#[test]
fn unknown_options_and_commands_are_refused_and_the_client_goes_on() {
    const REP_ERR_UNSUP: u32 = (1 << 31) | 1;
    let tgt = tgt(8 * MIB, 47);
    let attach = attach(&tgt, &[]);

    let mut s = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut s).unwrap();
    s.write_all(&3u32.to_be_bytes()).unwrap();
    for opt in [0, 4, 9, 10, 11, 12, 0x7fff_ffff, 0xffff_ffff] {
        s.write_all(&option(opt, b"some data")).unwrap();
        let (echo, kind, message) = option_reply(&mut s).unwrap();
        assert_eq!((echo, kind), (opt, REP_ERR_UNSUP), "option {opt:#x}");
        assert!(!message.is_empty(), "option {opt:#x}: a message");
    }
    let mut c = NbdClient::negotiate_after_flags(s, "", true).expect("GO after all that");
    for command in [7u16, 8, 9, 15, 0x100, 0xffff] {
        let reply = c.call(command, 0, 0, 4096, &[]).unwrap();
        assert_eq!(reply.error, EINVAL, "command {command:#x}: {reply:?}");
        assert!(reply.message.contains("unknown command"), "{reply:?}");
        let data = c.read(0, 4096).unwrap().expect("a read after it");
        assert_eq!(sha256(&data), sha256(&backing(&tgt, 0, 4096)));
    }
    c.disconnect().unwrap();

    // 300 unknown options in one go: 256 answers, then the server hangs up.
    let mut s = NbdStream::unix(socket(&attach)).unwrap();
    read_greeting(&mut s).unwrap();
    let mut wire = 3u32.to_be_bytes().to_vec();
    for _ in 0..300 {
        wire.extend(option(0x7777, &[]));
    }
    s.write_all(&wire).unwrap();
    let mut answered = 0;
    while let Ok((_, kind, _)) = option_reply(&mut s) {
        assert_eq!(kind, REP_ERR_UNSUP);
        answered += 1;
    }
    assert_eq!(answered, 256, "answers before the server hung up");
    well_behaved(&attach, &tgt, MIB, 9);
    stop(attach);
}

/// A client that sends 256 reads of 32 MiB and never reads a reply. Before
/// the bound on held data, the server fetched all it could (128 in flight,
/// 4 GiB: 24 of them measured 826 MiB of RSS); now it holds at most 64 MiB
/// of request data per connection and stops reading from that client. A
/// well-behaved client is served while it hangs there.
#[test]
fn a_client_that_never_reads_replies_holds_a_bounded_amount() {
    let tgt = tgt(40 * MIB, 48);
    let attach = attach(&tgt, &[]);
    let pid = attach.pid();
    let baseline = reset_peak_rss(pid);
    for structured in [false, true] {
        let mut hog = NbdClient::unix(socket(&attach), "", structured).unwrap();
        let mut wire = Vec::new();
        for h in 0..256u64 {
            wire.extend(request(CMD_READ, 1000 + h, (h % 8) * MIB, 32 << 20));
        }
        hog.send_bytes(&wire).unwrap();
        // Let it fill what it may: the peak settles.
        let mut last = 0;
        let settled = Instant::now() + ANSWER;
        loop {
            thread::sleep(Duration::from_millis(500));
            let now = peak_rss(pid);
            if now == last || Instant::now() > settled {
                break;
            }
            last = now;
        }
        well_behaved(&attach, &tgt, 36 * MIB, 10 + u64::from(structured));
        let grew = peak_rss(pid).saturating_sub(baseline);
        eprintln!(
            "structured {structured}: peak RSS growth {} MiB with 256 reads of 32 MiB unread",
            grew >> 20
        );
        assert!(
            grew < 128 * MIB,
            "the RSS grew by {} MiB (bound: 64 MiB held, plus slack)",
            grew >> 20
        );
        drop(hog);
        wait_clients(&attach, "the hog is gone", |n| n == 0);
    }
    well_behaved(&attach, &tgt, 0, 12);
    stop(attach);
}
