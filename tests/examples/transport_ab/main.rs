//! Times the io_uring and epoll transports of `riscsi_tests::transport_ab`
//! (the same sans-IO connection and loop, only the socket calls differ) on
//! a read pattern. Prints one JSON object like `riscsi bench --json`
//! (bytes, elapsed_seconds, cpu_seconds, iops) plus the system calls per
//! command; `scripts/bench-transport` runs it beside `riscsi bench` and
//! iscsi-perf and writes BENCHMARKS.md.
//!
//! Usage: transport_ab URL epoll|epoll-nagle|uring|uring-plain seq-read|rand-read BLOCK DEPTH SECONDS

use std::time::{Duration, Instant};

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::Cdb;
use iscsi_session::{Command, ConnectionEvent, Direction, IscsiUrl};
use rand::Rng;
use riscsi_tests::transport_ab::{Failure, Path, Transport};
use serde_json::json;

fn main() {
    if let Err(e) = run() {
        eprintln!("transport_ab: {e}");
        std::process::exit(1);
    }
}

struct Args {
    url: IscsiUrl,
    transport: Transport,
    random: bool,
    block: u32,
    depth: usize,
    seconds: u64,
}

fn args() -> Result<Args, Failure> {
    let usage = "usage: transport_ab URL epoll|epoll-nagle|uring|uring-plain seq-read|rand-read BLOCK DEPTH SECONDS";
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [url, transport, pattern, block, depth, seconds] = a.as_slice() else {
        return Err(usage.into());
    };
    let random = match pattern.as_str() {
        "seq-read" => false,
        "rand-read" => true,
        _ => return Err(usage.into()),
    };
    Ok(Args {
        url: url.parse()?,
        transport: transport.parse()?,
        random,
        block: block.parse()?,
        depth: depth.parse()?,
        seconds: seconds.parse()?,
    })
}

fn run() -> Result<(), Failure> {
    let a = args()?;
    let config = a
        .url
        .session_config("iqn.2026-11.io.riscsi.bench:transport-ab", None)?;
    let lun = Lun::from_number(a.url.lun.unwrap_or(1)).ok_or("the URL's LUN is out of range")?;
    let mut path = Path::log_in(config, a.transport)?;
    let capacity = path.read_capacity(lun)?;
    let report = load(&mut path, lun, capacity, &a)?;
    println!("{report}");
    Ok(())
}

fn cpu_seconds() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    usage.map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Keeps `depth` reads in flight for the given time; checks each status.
fn load(
    path: &mut Path,
    lun: Lun,
    (blocks, block_size): (u64, u32),
    a: &Args,
) -> Result<serde_json::Value, Failure> {
    if a.block == 0 || !a.block.is_multiple_of(block_size) {
        return Err(format!("BLOCK must be a multiple of {block_size}").into());
    }
    let per_io = u64::from(a.block / block_size);
    let slots = blocks / per_io;
    if slots == 0 {
        return Err("the LU is smaller than one block".into());
    }
    let mut rng = rand::thread_rng();
    let mut next_seq = 0u64;
    let mut next_read = |rng: &mut rand::rngs::ThreadRng| {
        let slot = if a.random {
            rng.gen_range(0..slots)
        } else {
            next_seq = (next_seq + 1) % slots;
            next_seq
        };
        let cdb = Cdb::read(slot * per_io, per_io as u32, false);
        Command::new(
            lun,
            cdb,
            Direction::Read {
                expected_len: a.block,
            },
        )
    };
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let syscalls_before = path.wire.syscalls();
    let stop = started + Duration::from_secs(a.seconds);
    let (mut in_flight, mut ios, mut bytes) = (0usize, 0u64, 0u64);
    let mut last_progress = started;
    loop {
        let now = Instant::now();
        while now < stop && in_flight < a.depth {
            path.submit(next_read(&mut rng), 0)?;
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        if now - last_progress > Duration::from_secs(30) {
            return Err("no read completed for 30 s".into());
        }
        path.turn(now + Duration::from_secs(1))?;
        while let Some(event) = path.conn.poll_event() {
            match event {
                ConnectionEvent::CommandComplete { result, .. } => {
                    let outcome = result.map_err(|e| e.to_string())?;
                    if !outcome.is_good() || outcome.data.len() != a.block as usize {
                        return Err(format!(
                            "a read failed: status {:#x}, {} bytes",
                            outcome.status,
                            outcome.data.len()
                        )
                        .into());
                    }
                    in_flight -= 1;
                    ios += 1;
                    bytes += u64::from(a.block);
                    last_progress = Instant::now();
                }
                ConnectionEvent::Closed { error, .. } => {
                    return Err(format!("connection closed: {error:?}").into());
                }
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let syscalls = path.wire.syscalls() - syscalls_before;
    Ok(json!({
        "transport": format!("{:?}", a.transport),
        "bytes": bytes,
        "elapsed_seconds": elapsed,
        "cpu_seconds": cpu,
        "iops": ios as f64 / elapsed,
        "syscalls_per_io": syscalls as f64 / ios.max(1) as f64,
    }))
}
