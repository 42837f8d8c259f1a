//! `riscsi bench VOLUME`: `--depth` I/Os kept in flight until the time is
//! up, through the batched submission API by default (`batched`), or by
//! `--depth` workers with a future per I/O each (`--submit futures`), each
//! recording its latencies; the figures are merged at the end.
//!
//! The per-I/O path is kept to what riscsi itself costs: no allocation (the
//! write buffer is one shared `Bytes`, histograms are sized up front), no
//! lock (per-worker histograms, one relaxed atomic for sequential offsets).

mod batched;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use iscsi_session::{BlockDevice, Session};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::task::JoinSet;

use super::Context;
use crate::cli::VolumeArgs;
use crate::cpu_time::process_cpu_time;
use crate::error::{CliError, Result};
use crate::size::parse_size;
use crate::volume::{Volume, VolumeSpec, parse_volume};
use report::{BenchReport, Totals};

/// How the benchmark hands its I/Os to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Submit {
    /// One loop, completions drained in bursts, refills in one batch.
    Batched,
    /// A worker task per slot, a future per I/O.
    Futures,
}

/// Largest I/O a benchmark issues.
const MAX_BLOCK: u64 = 64 << 20;
/// Latencies above this are recorded as this (the command timeout is far lower).
const MAX_LATENCY_NS: u64 = 600_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    SeqRead,
    RandRead,
    SeqWrite,
    RandWrite,
}

impl Pattern {
    fn writes(self) -> bool {
        matches!(self, Pattern::SeqWrite | Pattern::RandWrite)
    }

    fn sequential(self) -> bool {
        matches!(self, Pattern::SeqRead | Pattern::SeqWrite)
    }

    fn name(self) -> &'static str {
        match self {
            Pattern::SeqRead => "seq-read",
            Pattern::RandRead => "rand-read",
            Pattern::SeqWrite => "seq-write",
            Pattern::RandWrite => "rand-write",
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The volume: iscsi://[user[%secret]@]host[:port]/target-iqn/lun, or
    /// @FILE with the connection_info JSON (@- for standard input).
    pub volume: String,
    /// Access pattern.
    #[arg(long, value_enum, default_value = "seq-read")]
    pub pattern: Pattern,
    /// Bytes per I/O (4k, 128k, 1m or plain bytes; a multiple of the block size).
    #[arg(long, value_parser = parse_size, default_value = "128k", value_name = "SIZE")]
    pub block: u64,
    /// I/Os in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub depth: u32,
    /// How long to run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seconds: u64,
    /// Limit the I/O to the first BYTES of the volume.
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub size: Option<u64>,
    /// Required for write patterns: they overwrite the volume's data.
    #[arg(long)]
    pub allow_write: bool,
    /// How I/Os are submitted: in batches drained from a completion queue,
    /// or a future per I/O (what the future-based API costs).
    #[arg(long, value_enum, default_value = "batched")]
    pub submit: Submit,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Bench through one plain session instead of the multipath volume
    /// (URL volumes only), to measure what the multipath layer costs.
    #[arg(long)]
    pub single_session: bool,
    #[command(flatten)]
    pub options: VolumeArgs,
}

/// Where the workers may go, in I/O-sized slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    io_blocks: u32,
    slots: u64,
}

impl Region {
    fn bytes(&self, block_size: u32) -> u64 {
        self.slots * u64::from(self.io_blocks) * u64::from(block_size)
    }
}

fn region(
    io_bytes: u64,
    size: Option<u64>,
    block_size: u32,
    volume_bytes: u64,
    max_transfer_blocks: u32,
) -> Result<Region> {
    let bs = u64::from(block_size);
    if io_bytes == 0 || !io_bytes.is_multiple_of(bs) {
        return Err(CliError::usage(format!(
            "--block {io_bytes} is not a positive multiple of the {bs}-byte block size"
        )));
    }
    if io_bytes > MAX_BLOCK {
        return Err(CliError::usage(format!(
            "--block {io_bytes} is larger than {MAX_BLOCK}"
        )));
    }
    let io_blocks = (io_bytes / bs) as u32;
    if max_transfer_blocks != 0 && io_blocks > max_transfer_blocks {
        return Err(CliError::usage(format!(
            "--block {io_bytes} is larger than the target's maximum transfer of {} bytes",
            u64::from(max_transfer_blocks) * bs
        )));
    }
    let region_bytes = match size {
        Some(s) if s > volume_bytes => {
            return Err(CliError::usage(format!(
                "--size {s} is larger than the {volume_bytes}-byte volume"
            )));
        }
        Some(s) => s,
        None => volume_bytes,
    };
    let slots = region_bytes / io_bytes;
    if slots == 0 {
        return Err(CliError::usage(format!(
            "the region ({region_bytes} bytes) is smaller than one {io_bytes}-byte I/O"
        )));
    }
    Ok(Region { io_blocks, slots })
}

pub async fn run(ctx: &Context, args: BenchArgs) -> Result<()> {
    if args.pattern.writes() && !args.allow_write {
        return Err(CliError::usage(format!(
            "{} overwrites the volume's data; add --allow-write if that is intended",
            args.pattern.name()
        )));
    }
    let spec = parse_volume(&args.volume, &args.options.auth, crate::auth::env_secret)?;
    let report = if args.single_session {
        let VolumeSpec::Url(url) = spec else {
            return Err(CliError::usage(
                "--single-session takes a URL volume: one session goes through one path",
            ));
        };
        let session = Session::connect(url.session_config(&ctx.initiator_name, None)?).await?;
        let lun = session.open_lun(url.lun.unwrap_or_default()).await;
        let result = match lun {
            Ok(lun) => bench(&lun, &args).await,
            Err(e) => Err(e.into()),
        };
        let _ = session.logout().await;
        result?
    } else {
        let volume = Volume::open(spec, &args.options.multipath, &ctx.initiator_name).await?;
        let result = match args.pattern.writes() {
            true => volume.check_writable(),
            false => Ok(()),
        };
        let result = match result {
            Ok(()) => bench(&volume.device, &args).await,
            Err(e) => Err(e),
        };
        volume.close().await;
        result?
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

async fn bench<B>(device: &B, args: &BenchArgs) -> Result<BenchReport>
where
    B: BlockDevice + Clone + 'static,
    CliError: From<B::Error>,
{
    let g = device.geometry();
    let region = region(
        args.block,
        args.size,
        g.block_size,
        g.size_bytes(),
        g.max_transfer_blocks,
    )?;
    let write_buffer = args.pattern.writes().then(|| {
        let mut buf = vec![0u8; args.block as usize];
        rand::thread_rng().fill_bytes(&mut buf);
        Bytes::from(buf)
    });
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let latencies = match args.submit {
        Submit::Batched => {
            let mut latencies = new_histogram()?;
            let run = batched::BatchedRun {
                pattern: args.pattern,
                region,
                depth: args.depth as usize,
                write_buffer,
                deadline,
            };
            // In a task of its own: tokio polls the `block_on` future only
            // after parking the runtime, an epoll_wait per wake-up.
            let device = device.clone();
            let loop_task = tokio::spawn(async move {
                batched::run(&device, run, &mut latencies).await?;
                Ok::<_, B::Error>(latencies)
            });
            loop_task.await??
        }
        Submit::Futures => with_workers(device, args, region, write_buffer, deadline).await?,
    };
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    Ok(BenchReport::new(
        args.pattern.name(),
        args.block,
        args.depth,
        args.seconds,
        region.bytes(g.block_size),
        Totals {
            elapsed,
            cpu,
            latencies_ns: &latencies,
        },
    ))
}

/// `--submit futures`: a worker task per slot of the depth.
async fn with_workers<B>(
    device: &B,
    args: &BenchArgs,
    region: Region,
    write_buffer: Option<Bytes>,
    deadline: Instant,
) -> Result<Histogram<u64>>
where
    B: BlockDevice + Clone + 'static,
    CliError: From<B::Error>,
{
    let lun = Arc::new(device.clone());
    let next_slot = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..args.depth {
        let worker = Worker {
            lun: Arc::clone(&lun),
            pattern: args.pattern,
            region,
            next_slot: Arc::clone(&next_slot),
            write_buffer: write_buffer.clone(),
            rng: StdRng::seed_from_u64(rand::random()),
            latencies: new_histogram()?,
        };
        workers.spawn(worker.run(deadline));
    }
    let mut latencies = new_histogram()?;
    let mut first_error = None;
    while let Some(done) = workers.join_next().await {
        match done? {
            Ok(h) => latencies
                .add(&h)
                .map_err(|e| CliError::Internal(format!("histogram: {e}")))?,
            Err(e) => {
                // Stop the others at once: the run is void.
                workers.abort_all();
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(latencies),
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|e| CliError::Internal(format!("histogram: {e}")))
}

/// One worker: one I/O in flight at a time.
struct Worker<B> {
    lun: Arc<B>,
    pattern: Pattern,
    region: Region,
    next_slot: Arc<AtomicU64>,
    write_buffer: Option<Bytes>,
    rng: StdRng,
    /// Sized up front so that recording never allocates.
    latencies: Histogram<u64>,
}

impl<B: BlockDevice> Worker<B> {
    async fn run(mut self, deadline: Instant) -> Result<Histogram<u64>, B::Error> {
        let io_blocks = u64::from(self.region.io_blocks);
        let mut now = Instant::now();
        while now < deadline {
            let slot = if self.pattern.sequential() {
                self.next_slot.fetch_add(1, Ordering::Relaxed) % self.region.slots
            } else {
                self.rng.gen_range(0..self.region.slots)
            };
            let lba = slot * io_blocks;
            match &self.write_buffer {
                Some(data) => self.lun.write(lba, data.clone(), false).await?,
                None => drop(self.lun.read(lba, self.region.io_blocks).await?),
            }
            let end = Instant::now();
            self.latencies
                .saturating_record(end.duration_since(now).as_nanos() as u64);
            now = end;
        }
        Ok(self.latencies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn bench_args(extra: &[&str]) -> BenchArgs {
        let argv = ["riscsi", "bench", "iscsi://h/iqn.a:b/0"]
            .into_iter()
            .chain(extra.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Bench(b) => b,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_and_sizes() {
        let a = bench_args(&[]);
        assert_eq!(a.pattern, Pattern::SeqRead);
        assert_eq!((a.block, a.depth, a.seconds), (128 * 1024, 32, 10));
        assert_eq!(a.submit, Submit::Batched);
        assert_eq!(bench_args(&["--submit", "futures"]).submit, Submit::Futures);
        let a = bench_args(&[
            "--pattern",
            "rand-write",
            "--block",
            "4k",
            "--depth",
            "1",
            "--size",
            "1g",
        ]);
        assert_eq!(a.pattern, Pattern::RandWrite);
        assert_eq!((a.block, a.depth, a.size), (4096, 1, Some(1 << 30)));
        assert!(!a.allow_write);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let argv = |extra: &[&str]| {
            Cli::try_parse_from(
                ["riscsi", "bench", "iscsi://h/iqn.a:b/0"]
                    .into_iter()
                    .chain(extra.iter().copied()),
            )
        };
        assert!(argv(&["--pattern", "random"]).is_err());
        assert!(argv(&["--depth", "0"]).is_err());
        assert!(argv(&["--seconds", "0"]).is_err());
        assert!(argv(&["--block", "4q"]).is_err());
    }

    #[tokio::test]
    async fn writes_need_permission_before_any_connection() {
        let ctx = Context {
            initiator_name: "iqn.2026-11.test:i".into(),
        };
        // Port 1 on loopback: if the check came after connecting, this would
        // fail with a connection error instead.
        let mut args = bench_args(&["--pattern", "seq-write"]);
        args.volume = "iscsi://127.0.0.1:1/iqn.a:b/0".into();
        let e = run(&ctx, args).await.unwrap_err();
        assert!(e.to_string().contains("--allow-write"), "{e}");
    }

    #[test]
    fn region_rules() {
        let r = region(128 << 10, None, 512, 1 << 30, 0).unwrap();
        assert_eq!(
            r,
            Region {
                io_blocks: 256,
                slots: 8192
            }
        );
        assert_eq!(r.bytes(512), 1 << 30);
        let r = region(4096, Some(1 << 20), 512, 1 << 30, 0).unwrap();
        assert_eq!(r.slots, 256);
        // A partial last slot is left out, never overrun.
        let r = region(4096, Some(10_000), 512, 1 << 30, 0).unwrap();
        assert_eq!(r.slots, 2);
        assert!(region(1000, None, 512, 1 << 30, 0).is_err());
        assert!(region(4096, Some(2048), 512, 1 << 30, 0).is_err());
        assert!(region(4096, Some(2 << 30), 512, 1 << 30, 0).is_err());
        assert!(region(1 << 20, None, 512, 1 << 30, 1024).is_err());
        assert!(region(128 << 20, None, 512, 1 << 40, 0).is_err());
    }
}
