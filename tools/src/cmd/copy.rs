//! `riscsi copy SRC DST`: volume to file or stdout, file or stdin to volume.
//!
//! Reads and writes on the volume are pipelined (`--depth` I/Os of
//! `--io-size` bytes in flight). Local file I/O is blocking and runs on the
//! command's own thread while the session and the I/O tasks run on the
//! runtime's workers, so the two overlap.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use clap::Args;
use iscsi_session::{BlockDevice, ReadData};
use tokio::task::{JoinHandle, JoinSet};
use tracing::info;

use super::Context;
use crate::cli::VolumeArgs;
use crate::error::{CliError, Result};
use crate::io_util::{read_full, stdin_file, stdout_file, write_all_vectored};
use crate::progress::Progress;
use crate::size::parse_size;
use crate::volume::{Volume, is_volume_arg, parse_volume};

/// Largest I/O accepted: bounds the memory one request holds.
const MAX_IO_SIZE: u64 = 64 << 20;
/// Bound on `depth * io_size`, the memory the pipeline holds at once.
const MAX_BYTES_IN_FLIGHT: u64 = 1 << 30;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: a volume (iscsi:// URL or @connection_info.json), a file,
    /// or - for standard input.
    pub src: String,
    /// Destination: a volume (iscsi:// URL or @connection_info.json), a
    /// file, or - for standard output.
    pub dst: String,
    /// Bytes to copy (a multiple of the block size); default: the whole volume
    /// (volume to file) or the whole input (file to volume).
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub length: Option<u64>,
    /// Where in the volume to start, in bytes (a multiple of the block size).
    #[arg(long, value_parser = parse_size, default_value = "0", value_name = "BYTES")]
    pub offset: u64,
    /// Bytes per SCSI command (a multiple of the block size).
    #[arg(long, value_parser = parse_size, default_value = "1m", value_name = "BYTES")]
    pub io_size: u64,
    /// Commands in flight.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub depth: u32,
    #[command(flatten)]
    pub options: VolumeArgs,
}

/// Which way the bytes go.
#[derive(Debug, PartialEq, Eq)]
enum Plan<'a> {
    /// Volume URL to a file path or `-`.
    ToLocal { volume: &'a str, local: &'a str },
    /// File path or `-` to a volume URL.
    ToVolume { local: &'a str, volume: &'a str },
}

fn plan<'a>(src: &'a str, dst: &'a str) -> Result<Plan<'a>> {
    match (is_volume_arg(src), is_volume_arg(dst)) {
        (true, true) => Err(CliError::usage(
            "copying from one volume to another is not supported yet; go through a file or a pipe",
        )),
        (false, false) => Err(CliError::usage(
            "one side of copy must be a volume: an iscsi:// URL or @connection_info.json",
        )),
        (true, false) => Ok(Plan::ToLocal {
            volume: src,
            local: dst,
        }),
        (false, true) => Ok(Plan::ToVolume {
            local: src,
            volume: dst,
        }),
    }
}

pub async fn run(ctx: &Context, args: CopyArgs) -> Result<()> {
    let plan = plan(&args.src, &args.dst)?;
    let volume_arg = match plan {
        Plan::ToLocal { volume, .. } | Plan::ToVolume { volume, .. } => volume,
    };
    let spec = parse_volume(volume_arg, &args.options.auth, crate::auth::env_secret)?;
    if spec.uses_stdin() && matches!(plan, Plan::ToVolume { local: "-", .. }) {
        return Err(CliError::usage(
            "standard input cannot hold both the connection_info (@-) and the data (-)",
        ));
    }
    // Local checks that need no volume come first: fail before logging in.
    let local = match plan {
        Plan::ToLocal { local, .. } => Local::output(local)?,
        Plan::ToVolume { local, .. } => Local::input(local)?,
    };
    let volume = Volume::open(spec, &args.options.multipath, &ctx.initiator_name).await?;
    let started = Instant::now();
    let result = match local {
        Local::Output { file, name } => to_local(&volume.device, &args, file, &name).await,
        Local::Input { file, name, size } => match volume.check_writable() {
            Ok(()) => to_volume(&volume.device, &args, file, &name, size).await,
            Err(e) => Err(e),
        },
    };
    volume.close().await;
    let copied = result?;
    let secs = started.elapsed().as_secs_f64();
    info!(
        bytes = copied,
        seconds = secs,
        mb_per_s = copied as f64 / secs.max(1e-9) / 1e6,
        "copy done"
    );
    eprintln!("copied {copied} bytes");
    Ok(())
}

/// The local side, opened.
#[derive(Debug)]
enum Local {
    Output {
        file: File,
        name: String,
    },
    Input {
        file: File,
        name: String,
        /// Known for regular files; `None` for pipes, terminals and devices.
        size: Option<u64>,
    },
}

impl Local {
    fn output(arg: &str) -> Result<Local> {
        let file = if arg == "-" {
            stdout_file().map_err(|e| CliError::file("cannot use", Path::new("stdout"), e))?
        } else {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(arg)
                .map_err(|e| CliError::file("cannot create", Path::new(arg), e))?
        };
        Ok(Local::Output {
            file,
            name: display_name(arg, "standard output"),
        })
    }

    fn input(arg: &str) -> Result<Local> {
        let file = if arg == "-" {
            stdin_file().map_err(|e| CliError::file("cannot use", Path::new("stdin"), e))?
        } else {
            File::open(arg).map_err(|e| CliError::file("cannot open", Path::new(arg), e))?
        };
        let meta = file
            .metadata()
            .map_err(|e| CliError::file("cannot stat", Path::new(arg), e))?;
        let size = meta.is_file().then_some(meta.len());
        Ok(Local::Input {
            file,
            name: display_name(arg, "standard input"),
            size,
        })
    }
}

/// How errors name the local side.
fn display_name(arg: &str, stream: &str) -> String {
    match arg {
        "-" => stream.to_owned(),
        path => path.to_owned(),
    }
}

/// The I/O size to use: a whole number of blocks, within the target's
/// maximum transfer length when it reports one.
fn io_blocks(io_size: u64, depth: u32, block_size: u32, max_transfer_blocks: u32) -> Result<u32> {
    let bs = u64::from(block_size);
    if io_size == 0 || !io_size.is_multiple_of(bs) {
        return Err(CliError::usage(format!(
            "--io-size {io_size} is not a positive multiple of the {bs}-byte block size"
        )));
    }
    if io_size > MAX_IO_SIZE {
        return Err(CliError::usage(format!(
            "--io-size {io_size} is larger than {MAX_IO_SIZE}"
        )));
    }
    if io_size.saturating_mul(u64::from(depth)) > MAX_BYTES_IN_FLIGHT {
        return Err(CliError::usage(format!(
            "--io-size times --depth is more than {MAX_BYTES_IN_FLIGHT} bytes in flight"
        )));
    }
    // io_size <= 64 MiB and bs >= 1, so this fits.
    let blocks = (io_size / bs) as u32;
    Ok(match max_transfer_blocks {
        0 => blocks,
        max => blocks.min(max),
    })
}

/// Checks `--offset` and `--length` against the block size; returns the
/// first block.
fn check_alignment(offset: u64, length: Option<u64>, block_size: u32) -> Result<u64> {
    let bs = u64::from(block_size);
    if !offset.is_multiple_of(bs) {
        return Err(CliError::usage(format!(
            "--offset {offset} is not a multiple of the {bs}-byte block size"
        )));
    }
    if let Some(len) = length
        && len % bs != 0
    {
        return Err(CliError::usage(format!(
            "--length {len} is not a multiple of the {bs}-byte block size"
        )));
    }
    Ok(offset / bs)
}

/// Bytes of the volume to read for volume -> file.
fn read_extent(offset: u64, length: Option<u64>, volume_bytes: u64) -> Result<u64> {
    let room = volume_bytes.checked_sub(offset).ok_or_else(|| {
        CliError::usage(format!(
            "--offset {offset} is past the end of the {volume_bytes}-byte volume"
        ))
    })?;
    match length {
        None => Ok(room),
        Some(len) if len <= room => Ok(len),
        Some(len) => Err(CliError::usage(format!(
            "--length {len} from offset {offset} goes past the end of the {volume_bytes}-byte volume"
        ))),
    }
}

/// How much to take from the input for file -> volume, and whether more
/// input than that is an overflow (true) or simply left unread (false).
fn write_extent(
    input: &str,
    input_size: Option<u64>,
    offset: u64,
    length: Option<u64>,
    volume_bytes: u64,
) -> Result<(u64, bool)> {
    let room = volume_bytes.checked_sub(offset).ok_or_else(|| {
        CliError::usage(format!(
            "--offset {offset} is past the end of the {volume_bytes}-byte volume"
        ))
    })?;
    let too_large = |input_bytes| CliError::InputTooLarge {
        input: input.to_owned(),
        input_bytes,
        room_bytes: room,
        offset,
        volume_bytes,
    };
    match (length, input_size) {
        (Some(len), _) if len > room => Err(too_large(len)),
        (Some(len), Some(size)) if size < len => Err(CliError::Short {
            done: 0,
            wanted: len,
            why: format!("{input} holds only {size} bytes"),
        }),
        (Some(len), _) => Ok((len, false)),
        (None, Some(size)) if size > room => Err(too_large(size)),
        (None, Some(size)) => Ok((size, false)),
        // A stream: take what fits, and complain if there is more.
        (None, None) => Ok((room, true)),
    }
}

/// Aborts the reads still in flight when the copy stops early.
struct InFlight<E>(VecDeque<JoinHandle<Result<ReadData, E>>>);

impl<E> Drop for InFlight<E> {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

async fn to_local<B>(device: &B, args: &CopyArgs, mut out: File, name: &str) -> Result<u64>
where
    B: BlockDevice + Clone + 'static,
    CliError: From<B::Error>,
{
    let geometry = device.geometry();
    let bs = geometry.block_size;
    let first_lba = check_alignment(args.offset, args.length, bs)?;
    let total = read_extent(args.offset, args.length, geometry.size_bytes())?;
    let io_blocks = io_blocks(args.io_size, args.depth, bs, geometry.max_transfer_blocks)?;
    let blocks_total = total / u64::from(bs);
    let lun = Arc::new(device.clone());
    let progress = Progress::new(Some(total));
    let mut in_flight = InFlight(VecDeque::with_capacity(args.depth as usize));
    let mut next_block = 0u64;
    let mut written = 0u64;
    loop {
        while in_flight.0.len() < args.depth as usize && next_block < blocks_total {
            let n = u64::from(io_blocks).min(blocks_total - next_block) as u32;
            let lun = Arc::clone(&lun);
            let lba = first_lba + next_block;
            in_flight
                .0
                .push_back(tokio::spawn(async move { lun.read(lba, n).await }));
            next_block += u64::from(n);
        }
        let Some(handle) = in_flight.0.pop_front() else {
            break;
        };
        let data = handle.await??;
        // Blocking write on this thread; the reads behind it keep going.
        write_all_vectored(&mut out, data.segments())
            .map_err(|e| CliError::file("cannot write to", Path::new(name), e))?;
        written += data.len() as u64;
        progress.advance(data.len() as u64);
    }
    progress.finish();
    if written != total {
        return Err(CliError::Short {
            done: written,
            wanted: total,
            why: "the volume returned less data than asked".into(),
        });
    }
    Ok(written)
}

async fn to_volume<B>(
    device: &B,
    args: &CopyArgs,
    mut input: File,
    name: &str,
    input_size: Option<u64>,
) -> Result<u64>
where
    B: BlockDevice + Clone + 'static,
    CliError: From<B::Error>,
{
    let geometry = device.geometry();
    let bs = geometry.block_size;
    let first_lba = check_alignment(args.offset, args.length, bs)?;
    let (limit, overflow_is_error) = write_extent(
        name,
        input_size,
        args.offset,
        args.length,
        geometry.size_bytes(),
    )?;
    let io_bytes = u64::from(io_blocks(
        args.io_size,
        args.depth,
        bs,
        geometry.max_transfer_blocks,
    )?) * u64::from(bs);
    let lun = Arc::new(device.clone());
    let progress = Progress::new(Some(limit));
    let mut writes: JoinSet<Result<u64, B::Error>> = JoinSet::new();
    let mut taken = 0u64;
    while taken < limit {
        let want = io_bytes.min(limit - taken) as usize;
        // A fresh buffer per chunk: the previous ones belong to writes in flight.
        let mut buf = BytesMut::zeroed(want);
        let n = read_full(&mut input, &mut buf)
            .map_err(|e| CliError::file("cannot read", Path::new(name), e))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let chunk = buf.freeze();
        let lba = first_lba + taken / u64::from(bs);
        let whole = n - n % bs as usize;
        if whole > 0 {
            let data = chunk.slice(..whole);
            let lun = Arc::clone(&lun);
            writes.spawn(async move {
                let len = data.len() as u64;
                lun.write(lba, data, false).await.map(|()| len)
            });
        }
        if whole < n {
            // A partial block only comes at the end of the input; no other
            // write touches that block, so merging it now is safe.
            let tail_lba = lba + (whole / bs as usize) as u64;
            merge_partial_block(&*lun, tail_lba, chunk.slice(whole..)).await?;
            progress.advance((n - whole) as u64);
        }
        taken += n as u64;
        while writes.len() >= args.depth as usize {
            progress.advance(join_one(&mut writes).await?);
        }
        if n < want {
            break;
        }
    }
    while !writes.is_empty() {
        progress.advance(join_one(&mut writes).await?);
    }
    progress.finish();
    let overflowed = overflow_is_error && taken == limit && has_more(&mut input, name)?;
    // Make what was written durable even when reporting an overflow.
    lun.flush().await?;
    if overflowed {
        return Err(CliError::InputOverflow {
            input: name.to_owned(),
            room_bytes: limit,
            offset: args.offset,
        });
    }
    if !overflow_is_error && taken < limit {
        return Err(CliError::Short {
            done: taken,
            wanted: limit,
            why: format!("{name} ended early"),
        });
    }
    Ok(taken)
}

async fn join_one<E: 'static>(writes: &mut JoinSet<Result<u64, E>>) -> Result<u64>
where
    CliError: From<E>,
{
    match writes.join_next().await {
        Some(done) => Ok(done??),
        None => Ok(0),
    }
}

/// True when the input has at least one more byte.
fn has_more(input: &mut File, name: &str) -> Result<bool> {
    let mut probe = [0u8; 1];
    let n = read_full(input, &mut probe)
        .map_err(|e| CliError::file("cannot read", Path::new(name), e))?;
    Ok(n > 0)
}

/// Writes `tail` (shorter than a block) at the start of block `lba`, keeping
/// the rest of that block as it is on the volume.
async fn merge_partial_block<B>(lun: &B, lba: u64, tail: Bytes) -> Result<()>
where
    B: BlockDevice,
    CliError: From<B::Error>,
{
    let existing = lun.read(lba, 1).await?;
    let merged = overlay(&existing, &tail);
    lun.write(lba, merged, false).await?;
    Ok(())
}

/// `head` over the first bytes of the block `existing` holds.
fn overlay(existing: &ReadData, head: &[u8]) -> Bytes {
    let mut block = BytesMut::with_capacity(existing.len());
    for segment in existing.segments() {
        block.extend_from_slice(segment);
    }
    let n = head.len().min(block.len());
    block[..n].copy_from_slice(&head[..n]);
    block.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const URL: &str = "iscsi://h/iqn.a:b/0";

    #[test]
    fn plans() {
        assert_eq!(
            plan(URL, "-").unwrap(),
            Plan::ToLocal {
                volume: URL,
                local: "-"
            }
        );
        assert_eq!(
            plan("disk.img", URL).unwrap(),
            Plan::ToVolume {
                local: "disk.img",
                volume: URL
            }
        );
        assert!(
            plan(URL, URL)
                .unwrap_err()
                .to_string()
                .contains("not supported yet")
        );
        assert!(plan("a", "b").is_err());
    }

    #[test]
    fn io_size_rules() {
        assert_eq!(io_blocks(1 << 20, 8, 512, 0).unwrap(), 2048);
        assert_eq!(io_blocks(1 << 20, 8, 4096, 0).unwrap(), 256);
        // The target's limit wins.
        assert_eq!(io_blocks(1 << 20, 8, 512, 1024).unwrap(), 1024);
        assert!(io_blocks(1000, 8, 512, 0).is_err());
        assert!(io_blocks(0, 8, 512, 0).is_err());
        assert!(io_blocks(128 << 20, 1, 512, 0).is_err());
        assert!(io_blocks(64 << 20, 32, 512, 0).is_err());
    }

    #[test]
    fn alignment_rules() {
        assert_eq!(check_alignment(4096, Some(8192), 512).unwrap(), 8);
        assert!(check_alignment(100, None, 512).is_err());
        assert!(check_alignment(0, Some(100), 512).is_err());
        assert!(check_alignment(512, None, 4096).is_err());
    }

    #[test]
    fn read_extent_rules() {
        assert_eq!(read_extent(0, None, 1 << 20).unwrap(), 1 << 20);
        assert_eq!(read_extent(4096, None, 1 << 20).unwrap(), (1 << 20) - 4096);
        assert_eq!(read_extent(0, Some(8192), 1 << 20).unwrap(), 8192);
        assert!(read_extent(1 << 21, None, 1 << 20).is_err());
        assert!(read_extent(4096, Some(1 << 20), 1 << 20).is_err());
    }

    #[test]
    fn write_extent_rules() {
        let vol = 1 << 20;
        assert_eq!(
            write_extent("f", Some(1000), 0, None, vol).unwrap(),
            (1000, false)
        );
        assert_eq!(
            write_extent("f", Some(vol), 0, None, vol).unwrap(),
            (vol, false)
        );
        assert_eq!(write_extent("-", None, 0, None, vol).unwrap(), (vol, true));
        assert_eq!(
            write_extent("-", None, 4096, Some(512), vol).unwrap(),
            (512, false)
        );
        let e = write_extent("big.img", Some(vol + 1), 0, None, vol).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("big.img")
                && text.contains(&(vol + 1).to_string())
                && text.contains(&vol.to_string()),
            "{text}"
        );
        assert!(write_extent("f", Some(vol), 512, None, vol).is_err());
        assert!(write_extent("f", Some(100), 0, Some(512), vol).is_err());
        assert!(write_extent("f", None, vol + 512, None, vol).is_err());
    }

    #[test]
    fn overlay_keeps_the_rest_of_the_block() {
        let existing = ReadData::from(Bytes::from(vec![0xaa; 512]));
        let merged = overlay(&existing, b"hello");
        assert_eq!(merged.len(), 512);
        assert_eq!(&merged[..5], b"hello");
        assert!(merged[5..].iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn has_more_sees_one_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"xy").unwrap();
        let mut f = File::open(&p).unwrap();
        assert!(has_more(&mut f, "f").unwrap());
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"y");
        assert!(!has_more(&mut f, "f").unwrap());
    }
}
