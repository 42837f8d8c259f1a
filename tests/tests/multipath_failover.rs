//! Failover, failback and queueing of a multipath volume against tgtd, the
//! faults injected by proxies in front of its portals: data is always
//! compared with the backing file.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use iscsi_multipath::{
    Failback, MultipathVolume, NoPathRetry, PathState, Policy, VolumeError, VolumeOptions,
};
use iscsi_session::{BlockDevice, CompletionQueue};
use riscsi_tests::prelude::*;
use riscsi_tests::volume::{
    Pass, backing_holds, copy_pass, copy_pass_batched, fast_options, open, wait_status,
    with_fault_at, within,
};

const LONG: Duration = Duration::from_secs(30);
const MIB: u64 = 1 << 20;

/// A tgtd with two portals, a proxy in front of the main one, and the
/// volume opened with both paths usable.
struct Rig {
    tgt: Tgt,
    main: FaultProxy,
    volume: MultipathVolume,
}

async fn rig(lun: LunSpec, options: VolumeOptions) -> Rig {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(lun)
        .start()
        .unwrap();
    let main = FaultProxy::start(tgt.portals()[0]).unwrap();
    let target = tgt.portals()[0];
    let listen = main.listen_addr();
    let info = tgt
        .connection_info_spec()
        .map_portals(|p| if p == target { listen } else { p });
    let volume = open(&info, ConnectionInfoForm::Lists, options).await;
    wait_status(&volume, LONG, "both paths usable", |s| {
        s.paths[0].state == PathState::Active && s.paths[1].state == PathState::Standby
    })
    .await;
    Rig { tgt, main, volume }
}

/// How a pass submits its commands.
#[derive(Clone, Copy)]
enum Submit {
    /// A future per command ([`copy_pass`]).
    Futures,
    /// Batches drained from a completion queue ([`copy_pass_batched`]).
    Batched,
}

async fn pass(
    submit: Submit,
    volume: &MultipathVolume,
    pass: Pass,
    size: u64,
    progress: Arc<AtomicU64>,
) -> Result<riscsi_tests::volume::PassReport, String> {
    match submit {
        Submit::Futures => copy_pass(volume, pass, size, MIB, 8, progress).await,
        Submit::Batched => copy_pass_batched(volume, pass, size, MIB, 8, progress).await,
    }
}

/// 256 MiB written while the main path is reset (RST), then read back and
/// compared while it is black-holed for 3 s: no error, identical data.
async fn copy_under_faults(block_size: u32, submit: Submit) {
    let size = 256 * MIB;
    let r = rig(LunSpec::new(size).block_size(block_size), fast_options()).await;
    let seed = 0x5eed ^ u64::from(block_size);

    let progress = Arc::new(AtomicU64::new(0));
    let written = with_fault_at(
        pass(
            submit,
            &r.volume,
            Pass::Write { seed },
            size,
            progress.clone(),
        ),
        &progress,
        size / 3,
        async { r.main.reset() },
    )
    .await
    .expect("no error while the secondary lives");
    backing_holds(r.tgt.first_lun(), seed, size).expect("every write is on the target");
    let status = r.volume.status();
    assert!(
        status.paths[1].completed > 0,
        "the secondary carried I/O: {status:#?}"
    );
    assert!(
        status.paths[0].failed_over > 0,
        "commands left the main path: {status:#?}"
    );

    // The main path comes back (immediate failback) before the next fault.
    wait_status(&r.volume, LONG, "failback after the reset", |s| {
        s.paths[0].state == PathState::Active
    })
    .await;
    let progress = Arc::new(AtomicU64::new(0));
    let black_hole = async {
        r.main.black_hole();
        tokio::time::sleep(Duration::from_secs(3)).await;
        r.main.resume();
    };
    let read = with_fault_at(
        pass(
            submit,
            &r.volume,
            Pass::Verify { seed },
            size,
            progress.clone(),
        ),
        &progress,
        size / 3,
        black_hole,
    )
    .await
    .expect("identical data, no error, while the main path is black-holed");
    eprintln!(
        "{block_size}-byte blocks: write {:?} (stall {:?}), read {:?} (stall {:?})",
        written.elapsed, written.longest_gap, read.elapsed, read.longest_gap
    );
    wait_status(&r.volume, LONG, "failback after the black hole", |s| {
        s.paths[0].state == PathState::Active
    })
    .await;
    r.volume.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_survives_rst_and_black_hole_on_the_main_path() {
    copy_under_faults(512, Submit::Futures).await;
}

/// Through the batched form: failover starts from a session's completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_survives_rst_and_black_hole_with_4096_byte_blocks() {
    copy_under_faults(4096, Submit::Batched).await;
}

/// A batch whose caller goes away while its commands sit in a black hole:
/// when the main path's connection is declared dead they come back, are not
/// re-issued on the other path for nobody, and leave the path's count of
/// commands in flight; the volume goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_batch_is_not_reissued_and_leaves_no_count_behind() {
    let r = rig(LunSpec::new(16 * MIB).pattern(4), fast_options()).await;
    r.main.black_hole();
    let queue = CompletionQueue::new();
    let reads = (0..16u64)
        .map(|tag| (tag, r.volume.read_command_at(tag * 8, 8)))
        .collect();
    r.volume.submit_batch(reads, queue.sink()).await;
    assert_eq!(r.volume.status().paths[0].in_flight, 16);
    // Time for the driver to send them into the hole (those it has not sent
    // when the queue goes are withdrawn instead: counted out all the same).
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(queue);
    let before = r.volume.status().paths[1].completed;
    wait_status(
        &r.volume,
        LONG,
        "the black-holed connection given up",
        |s| s.paths[0].state != PathState::Active && s.paths[0].in_flight == 0,
    )
    .await;
    // A re-issue would start at once, from the completion that handed the
    // command back: give one the time to finish on the secondary.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = r.volume.status();
    assert_eq!(
        status.paths[1].completed, before,
        "nothing re-issued for a caller that left: {status:#?}"
    );
    assert_eq!(status.paths[1].in_flight, 0, "{status:#?}");
    // Still a working volume, now on the secondary.
    let block = r.volume.read(0, 8).await.expect("read on the secondary");
    assert_eq!(
        &block.to_bytes()[..],
        &r.tgt.first_lun().initial_bytes(0, 8 * 512)[..]
    );
    r.main.resume();
    r.volume.close().await;
}

/// Reads 4 KiB at a time until `stop`, so per-path counters move.
async fn steady_reads(volume: MultipathVolume, stop: Arc<std::sync::atomic::AtomicBool>) {
    let blocks = 4096 / volume.geometry().block_size;
    let mut lba = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        volume
            .read(lba, blocks)
            .await
            .expect("no error while a path lives");
        lba = (lba + u64::from(blocks)) % 1024;
    }
}

/// Cuts the main path (reset and refuse new connections) until `resume`.
async fn cut_main(r: &Rig) {
    r.main.refuse();
    r.main.reset();
    wait_status(&r.volume, LONG, "the main path is down", |s| {
        s.paths[0].state == PathState::Reconnecting && s.paths[1].state == PathState::Active
    })
    .await;
}

/// Counters after the main path recovers: I/O on it again within the
/// checker interval (immediate), not until asked (manual), after N s.
#[tokio::test]
async fn failback_modes_decide_when_the_main_path_carries_io_again() {
    for failback in [
        Failback::Immediate,
        Failback::Manual,
        Failback::After(Duration::from_secs(2)),
    ] {
        let options = VolumeOptions {
            failback,
            ..fast_options()
        };
        let r = rig(LunSpec::new(8 * MIB), options).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn(steady_reads(r.volume.clone(), stop.clone()));
        cut_main(&r).await;
        let before = r.volume.status().paths[0].completed;
        r.main.resume();
        let healthy = wait_status(&r.volume, LONG, "the main path is healthy", |s| {
            matches!(s.paths[0].state, PathState::Active | PathState::Standby)
        })
        .await;
        let healthy_at = tokio::time::Instant::now();
        match failback {
            Failback::Immediate => {
                wait_status(
                    &r.volume,
                    Duration::from_secs(5),
                    "immediate failback",
                    |s| s.paths[0].state == PathState::Active && s.paths[0].completed > before,
                )
                .await;
            }
            Failback::Manual => {
                assert_eq!(healthy.paths[0].state, PathState::Standby);
                tokio::time::sleep(Duration::from_secs(2)).await;
                let s = r.volume.status();
                assert_eq!(s.paths[0].state, PathState::Standby, "{s:#?}");
                assert_eq!(
                    s.paths[0].completed, before,
                    "no I/O on main without failback"
                );
                r.volume.failback();
                wait_status(&r.volume, Duration::from_secs(5), "manual failback", |s| {
                    s.paths[0].completed > before
                })
                .await;
            }
            Failback::After(delay) => {
                wait_status(
                    &r.volume,
                    Duration::from_secs(10),
                    "delayed failback",
                    |s| s.paths[0].completed > before,
                )
                .await;
                let waited =
                    healthy_at.elapsed() + Duration::from_millis(healthy.paths[0].state_ms);
                assert!(
                    waited >= delay - Duration::from_millis(300),
                    "main carried I/O {waited:?} after it was healthy, before its {delay:?}"
                );
            }
            Failback::Followover => unreachable!(),
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.await.unwrap();
        r.volume.close().await;
    }
}

/// Every path down for 5 s, within no_path_retry: queued I/O resumes and
/// nothing is lost. Down beyond no_path_retry: a clear error, then the
/// volume works again once a path returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_paths_down_queues_then_fails_then_recovers() {
    let size = 32 * MIB;
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(size))
        .start()
        .unwrap();
    let proxies: Vec<FaultProxy> = tgt
        .portals()
        .iter()
        .map(|p| FaultProxy::start(*p).unwrap())
        .collect();
    let routes: Vec<_> = proxies
        .iter()
        .map(|p| (p.target_addr(), p.listen_addr()))
        .collect();
    let info = tgt.connection_info_spec().map_portals(|p| {
        routes
            .iter()
            .find(|(t, _)| *t == p)
            .map(|(_, l)| *l)
            .unwrap()
    });
    let options = VolumeOptions {
        no_path_retry: NoPathRetry::For(Duration::from_secs(10)),
        ..fast_options()
    };
    let volume = open(&info, ConnectionInfoForm::Lists, options).await;
    let all_down = || {
        for p in &proxies {
            p.refuse();
            p.reset();
        }
    };
    let all_up = || proxies.iter().for_each(|p| p.resume());

    // Down 5 s while 32 MiB are written: the writes wait, then complete.
    let progress = Arc::new(AtomicU64::new(0));
    let outage = async {
        all_down();
        tokio::time::sleep(Duration::from_secs(5)).await;
        all_up();
    };
    let written = with_fault_at(
        copy_pass(
            &volume,
            Pass::Write { seed: 77 },
            size,
            MIB,
            4,
            progress.clone(),
        ),
        &progress,
        size / 4,
        outage,
    )
    .await
    .expect("queued I/O resumes: no error within no_path_retry");
    assert!(written.longest_gap >= Duration::from_secs(4), "{written:?}");
    backing_holds(tgt.first_lun(), 77, size).expect("nothing lost");

    // Down for longer than a 1 s no_path_retry.
    within(LONG, "close", volume.close()).await;
    let options = VolumeOptions {
        no_path_retry: NoPathRetry::For(Duration::from_secs(1)),
        ..fast_options()
    };
    let volume = open(&info, ConnectionInfoForm::Lists, options).await;
    all_down();
    let started = tokio::time::Instant::now();
    let err = within(LONG, "a read with no path", volume.read(0, 8))
        .await
        .expect_err("no path for longer than 1 s");
    assert!(matches!(err, VolumeError::NoPath { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.contains("no usable path"), "{line}");
    assert!(
        line.contains(&routes[0].1.to_string()),
        "names the paths: {line}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it queued first"
    );
    let again = tokio::time::Instant::now();
    assert!(
        within(LONG, "a second read", volume.read(0, 8))
            .await
            .is_err()
    );
    assert!(
        again.elapsed() < Duration::from_millis(500),
        "then fails at once"
    );
    all_up();
    wait_status(&volume, LONG, "a path returns", |s| {
        s.paths.iter().any(|p| p.state == PathState::Active)
    })
    .await;
    let data = within(LONG, "a read once a path is back", volume.read(0, 8))
        .await
        .expect("the volume works again");
    assert_eq!(
        data.to_bytes(),
        tgt.first_lun().read_backing(0, 4096).unwrap()
    );
    within(LONG, "close", volume.close()).await;
}

/// Each policy spreads or pins I/O as it says, by the per-path counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_spread_or_pin_io() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .lun(LunSpec::new(8 * MIB))
        .start()
        .unwrap();
    let info = tgt.connection_info_spec();
    for policy in [
        Policy::Failover,
        Policy::RoundRobin,
        Policy::QueueLength,
        Policy::ServiceTime,
    ] {
        let options = VolumeOptions {
            policy,
            ..fast_options()
        };
        let volume = open(&info, ConnectionInfoForm::Lists, options).await;
        wait_status(&volume, LONG, "every path usable", |s| {
            s.paths
                .iter()
                .all(|p| matches!(p.state, PathState::Active | PathState::Standby))
        })
        .await;
        let before: Vec<u64> = volume.status().paths.iter().map(|p| p.completed).collect();
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..16u64 {
            let v = volume.clone();
            workers.spawn(async move {
                for i in 0..40u64 {
                    v.read((w * 40 + i) % 2048, 8).await.unwrap();
                }
            });
        }
        while let Some(r) = workers.join_next().await {
            r.unwrap();
        }
        let status = volume.status();
        let done: Vec<u64> = status
            .paths
            .iter()
            .zip(&before)
            .map(|(p, b)| p.completed - b)
            .collect();
        assert_eq!(done.iter().sum::<u64>(), 640, "{policy}: {done:?}");
        match policy {
            Policy::Failover => assert_eq!(done, [640, 0, 0], "failover pins I/O to main"),
            Policy::RoundRobin => {
                for d in &done {
                    assert!(
                        (200..=227).contains(d),
                        "round-robin spreads evenly: {done:?}"
                    );
                }
            }
            Policy::QueueLength | Policy::ServiceTime => {
                assert!(
                    done.iter().all(|d| *d > 0),
                    "{policy} uses every path: {done:?}"
                );
            }
        }
        volume.close().await;
    }
}

/// Writes with FUA and flush go through the volume to the backing file.
#[tokio::test]
async fn fua_writes_and_flush_reach_the_target() {
    let r = rig(LunSpec::new(8 * MIB), fast_options()).await;
    let data = vec![0xa5u8; 8192];
    r.volume
        .write(100, Bytes::from(data.clone()), true)
        .await
        .unwrap();
    r.volume.flush().await.unwrap();
    assert_eq!(
        r.tgt.first_lun().read_backing(100 * 512, 8192).unwrap(),
        data
    );
    r.volume.close().await;
}
