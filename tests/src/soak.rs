//! The soak: `riscsi attach` over two tgtd paths behind fault proxies (the
//! fault matrix's rig), the stamped-block verifier running through NBD, and
//! a random fault on one path every few seconds (reset, black hole, refused
//! connections, added latency), so one path always lives. The attach
//! process's resident memory and open file descriptors are sampled; after
//! the warm-up they must not grow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::Result;
use crate::export::Fixture;
use crate::fault_matrix::{Rig, blocking, connect};
use crate::verifier;

/// Within the rig's LU (`fault_matrix::LUN_BYTES`).
const BLOCKS: u64 = 512;
const WORKERS: u64 = 8;
/// How long a black hole, refusal or delay lasts.
const FAULT_LENGTH: Duration = Duration::from_secs(2);
/// Between two faults: a random wait in this range.
const FAULT_GAP: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(5));
/// Between two samples of the attach process.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// One sample of the attach process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the start of the run.
    pub at: Duration,
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// Entries of /proc/PID/fd.
    pub fds: u64,
}

/// What a soak measured.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// How long I/O ran.
    pub duration: Duration,
    /// Faults injected.
    pub faults: u64,
    /// Writes and reads acknowledged.
    pub writes: u64,
    /// Reads completed.
    pub reads: u64,
    /// Acknowledged writes not on the target.
    pub lost: usize,
    /// Corrupt blocks and wrong reads.
    pub corrupt: usize,
    /// Errors the NBD client saw (one path always lived).
    pub errors: usize,
    /// The longest time without a successful completion.
    pub longest_stall: Duration,
    /// The attach process over time.
    pub samples: Vec<Sample>,
}

impl SoakReport {
    /// Samples of the warm-up (the first fifth, at least 10 s) and of the
    /// last fifth.
    fn phases(&self) -> (Vec<Sample>, Vec<Sample>) {
        let warm_up = (self.duration / 5).max(Duration::from_secs(10));
        let tail_from = self.duration - self.duration / 5;
        let early = self
            .samples
            .iter()
            .filter(|s| s.at <= warm_up)
            .copied()
            .collect();
        let late = self
            .samples
            .iter()
            .filter(|s| s.at >= tail_from)
            .copied()
            .collect();
        (early, late)
    }

    /// Peak RSS (KiB) of the warm-up and of the last fifth.
    pub fn rss_peaks(&self) -> (u64, u64) {
        let (early, late) = self.phases();
        let peak = |v: &[Sample]| v.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        (peak(&early), peak(&late))
    }

    /// Most descriptors open in the warm-up and in the last fifth.
    pub fn fd_peaks(&self) -> (u64, u64) {
        let (early, late) = self.phases();
        let peak = |v: &[Sample]| v.iter().map(|s| s.fds).max().unwrap_or(0);
        (peak(&early), peak(&late))
    }

    /// No growth after the warm-up: the late RSS peak within 4 MiB or 10 %
    /// of the warm-up's (allocator noise), no more descriptors than then
    /// plus the two a reconnect may hold briefly.
    pub fn steady(&self) -> bool {
        let (rss_early, rss_late) = self.rss_peaks();
        let (fd_early, fd_late) = self.fd_peaks();
        let slack = (rss_early / 10).max(4096);
        rss_early > 0 && rss_late <= rss_early + slack && fd_late <= fd_early + 2
    }

    /// Nothing lost, nothing corrupt, no error.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.corrupt == 0 && self.errors == 0
    }

    /// The markdown RELIABILITY.md holds.
    pub fn table(&self) -> String {
        let (rss_early, rss_late) = self.rss_peaks();
        let (fd_early, fd_late) = self.fd_peaks();
        let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
        format!(
            "| run | faults | writes acked | reads | acked writes lost | corrupt | client errors | longest stall | RSS peak: warm-up / last fifth | fds: warm-up / last fifth | steady |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n\
             | {:.0} s | {} | {} | {} | {} | {} | {} | {:.2} s | {} / {} | {} / {} | {} |\n",
            self.duration.as_secs_f64(),
            self.faults,
            self.writes,
            self.reads,
            self.lost,
            self.corrupt,
            self.errors,
            self.longest_stall.as_secs_f64(),
            mib(rss_early),
            mib(rss_late),
            fd_early,
            fd_late,
            if self.steady() && self.holds() {
                "yes"
            } else {
                "**no**"
            },
        )
    }
}

/// Reads VmRSS (KiB) and the descriptor count of `pid`.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// Runs the soak for `duration`.
pub async fn run(duration: Duration) -> Result<SoakReport> {
    let args = ["--nop-interval", "1", "--nop-timeout", "1"];
    let rig = blocking(move || Rig::start(&args, false)).await?;
    let pid = rig.attach()?.pid();
    let client = connect(&rig.nbd_socket()?).await?;
    let controls: Vec<_> = rig.proxies.iter().map(|p| p.control()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let verifier = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move { verifier::run(&client, BLOCKS, WORKERS, stop).await }
    });
    let faults = Arc::new(AtomicU64::new(0));
    let injector = tokio::spawn({
        let (stop, faults) = (stop.clone(), faults.clone());
        async move {
            // Let every path log in and carry I/O first.
            tokio::time::sleep(Duration::from_secs(2)).await;
            while !stop.load(Ordering::Relaxed) {
                let (path, kind, gap, delay) = {
                    let mut rng = rand::thread_rng();
                    let gap = rng.gen_range(FAULT_GAP.0..FAULT_GAP.1);
                    let delay = Duration::from_millis(rng.gen_range(50..300));
                    (
                        rng.gen_range(0..controls.len()),
                        rng.gen_range(0..4u8),
                        gap,
                        delay,
                    )
                };
                let proxy = &controls[path];
                match kind {
                    0 => proxy.reset(),
                    1 => proxy.black_hole(),
                    2 => {
                        proxy.refuse();
                        proxy.reset();
                    }
                    _ => proxy.delay(delay),
                }
                faults.fetch_add(1, Ordering::Relaxed);
                if kind != 0 {
                    tokio::time::sleep(FAULT_LENGTH).await;
                    proxy.resume();
                }
                tokio::time::sleep(gap).await;
            }
            for proxy in &controls {
                proxy.resume();
            }
        }
    });
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        if let Some((rss_kib, fds)) = sample(pid) {
            samples.push(Sample {
                at: started.elapsed(),
                rss_kib,
                fds,
            });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = injector.await;
    let run = verifier.await.expect("verifier");
    let lun = rig.tgt.first_lun().clone();
    let audit = verifier::audit(&run, |offset, len| {
        lun.read_backing(offset, len).unwrap_or_default()
    });
    client.disconnect().await;
    let mut rig = rig;
    if let Some(attach) = rig.attach.take() {
        blocking(move || attach.stop()).await?;
    }
    Ok(SoakReport {
        duration: started.elapsed(),
        faults: faults.load(Ordering::Relaxed),
        writes: run.writes,
        reads: run.reads,
        lost: audit.lost.len(),
        corrupt: audit.corrupt.len() + run.bad_reads.len(),
        errors: run.errors.len(),
        longest_stall: run.longest_stall,
        samples,
    })
}
