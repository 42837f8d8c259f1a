//! Failover stalls and attach times of a multipath volume, measured against
//! throwaway tgtd and istgt targets; prints one JSON object for
//! `scripts/bench-multipath`, which writes BENCHMARKS.md.
//!
//! - stall: the longest gap between completions of a steady read stream
//!   (4 KiB reads, 4 in flight) while the main path is reset (RST) or
//!   black-holed, with the default NOP keepalive and with 1 s + 1 s;
//! - attach: from `MultipathVolume::open_connection_info` to a usable
//!   volume, 3 live paths, the lists form against the discovery form.
//!
//! Usage: cargo run --release -p riscsi-tests --example multipath_timings -- [ROUNDS]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iscsi_multipath::{MultipathVolume, PathState, VolumeOptions};
use iscsi_session::{BlockDevice, Timeouts};
use riscsi_tests::prelude::*;
use riscsi_tests::volume::{template, volume_info, wait_status};
use serde_json::json;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Reset,
    BlackHole,
}

/// The longest gap between completions of 4 readers while `fault` hits the
/// main path one second in (a black hole lasts until failover plus 2 s).
async fn stall(fault: Fault, nop: Option<Duration>) -> Duration {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(16 << 20))
        .start()
        .unwrap();
    let proxy = FaultProxy::start(tgt.portals()[0]).unwrap();
    let (target, listen) = (tgt.portals()[0], proxy.listen_addr());
    let info = tgt
        .connection_info_spec()
        .map_portals(|p| if p == target { listen } else { p });
    let mut t = template(Duration::from_secs(1));
    t.timeouts = Some(match nop {
        Some(n) => Timeouts {
            nop_interval: n,
            nop_timeout: n,
            ..Timeouts::default()
        },
        None => Timeouts::default(),
    });
    let parsed = volume_info(&info, ConnectionInfoForm::Lists);
    let volume = MultipathVolume::open_connection_info(&parsed, &t, VolumeOptions::default())
        .await
        .unwrap();
    wait_status(&volume, Duration::from_secs(20), "both paths", |s| {
        s.paths[1].state == PathState::Standby
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(std::sync::Mutex::new((Instant::now(), Duration::ZERO)));
    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (volume, stop, last) = (volume.clone(), stop.clone(), last.clone());
        readers.push(tokio::spawn(async move {
            let mut lba = r * 1024;
            while !stop.load(Ordering::Relaxed) {
                volume
                    .read(lba % 32768, 8)
                    .await
                    .expect("no error while a path lives");
                lba += 8;
                let now = Instant::now();
                let mut l = last.lock().unwrap();
                l.1 = l.1.max(now - l.0);
                l.0 = now;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    last.lock().unwrap().1 = Duration::ZERO;
    match fault {
        Fault::Reset => {
            proxy.reset();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Fault::BlackHole => {
            proxy.black_hole();
            wait_status(&volume, Duration::from_secs(60), "failover", |s| {
                s.paths[1].state == PathState::Active
            })
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            proxy.resume();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let gap = last.lock().unwrap().1;
    volume.close().await;
    gap
}

/// Time to a usable volume, time until every path has joined, and the
/// number of paths.
async fn attach(fixture: &impl Fixture, form: ConnectionInfoForm) -> (Duration, Duration, usize) {
    let parsed = volume_info(&fixture.connection_info_spec(), form);
    let t = template(Duration::from_secs(5));
    let started = Instant::now();
    let volume = MultipathVolume::open_connection_info(&parsed, &t, VolumeOptions::default())
        .await
        .unwrap();
    let usable = started.elapsed();
    wait_status(&volume, Duration::from_secs(30), "every path joins", |s| {
        s.paths
            .iter()
            .all(|p| matches!(p.state, PathState::Active | PathState::Standby))
    })
    .await;
    let joined = started.elapsed();
    let paths = volume.status().paths.len();
    volume.close().await;
    (usable, joined, paths)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("ROUNDS is a number"))
        .unwrap_or(3);
    let mut stalls = serde_json::Map::new();
    for (name, fault, nop) in [
        ("rst_default_nop", Fault::Reset, None),
        ("rst_nop_1s", Fault::Reset, Some(Duration::from_secs(1))),
        ("black_hole_default_nop", Fault::BlackHole, None),
        (
            "black_hole_nop_1s",
            Fault::BlackHole,
            Some(Duration::from_secs(1)),
        ),
    ] {
        let mut runs = Vec::new();
        for _ in 0..rounds {
            runs.push(ms(stall(fault, nop).await));
        }
        eprintln!("stall {name}: {runs:?} ms");
        stalls.insert(name.into(), json!(runs));
    }
    let mut attaches = serde_json::Map::new();
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .lun(LunSpec::new(16 << 20))
        .start()
        .unwrap();
    let istgt = Istgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .lun(LunSpec::new(16 << 20))
        .start()
        .unwrap();
    for (name, form) in [
        ("lists", ConnectionInfoForm::Lists),
        ("discovery", ConnectionInfoForm::Singular),
    ] {
        for (target, runs) in [("tgtd", rounds.max(5)), ("istgt", rounds)] {
            let (mut usable, mut joined, mut paths) = (Vec::new(), Vec::new(), 0);
            for _ in 0..runs {
                let (u, j, n) = match target {
                    "tgtd" => attach(&tgt, form).await,
                    _ => attach(&istgt, form).await,
                };
                usable.push(ms(u));
                joined.push(ms(j));
                paths = n;
            }
            eprintln!(
                "attach {target} {name}: usable {usable:?} ms, all joined {joined:?} ms, {paths} paths"
            );
            attaches.insert(
                format!("{target}_{name}"),
                json!({"usable_ms": usable, "joined_ms": joined, "paths": paths}),
            );
        }
    }
    println!("{}", json!({"stall_ms": stalls, "attach": attaches}));
}
