//! One request: checked against the export (range, alignment, size, flags,
//! read-only), then mapped to the block device: READ and WRITE (split at the
//! LU's transfer limit, run concurrently), FLUSH as SYNCHRONIZE CACHE, TRIM
//! as UNMAP, WRITE_ZEROES as WRITE SAME (or zero writes when the LU has
//! none), CACHE as a checked no-op.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;
use iscsi_proto::scsi::SenseKey;
use iscsi_session::{BlockDevice, BlockError, Geometry};

use crate::export::{Export, MAX_BLOCK};
use crate::proto::{
    CMD_CACHE, CMD_FLAG_DF, CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, CMD_FLUSH, CMD_READ, CMD_TRIM,
    CMD_WRITE, CMD_WRITE_ZEROES, Errno,
};
use crate::request::Request;

/// How a request ended.
#[derive(Debug)]
pub enum Answer {
    /// Done, nothing to send back.
    Done,
    /// A read's data, in order.
    Data(Vec<Bytes>),
    /// Failed.
    Error(Errno, String),
}

/// A served request, ready for its reply.
#[derive(Debug)]
pub struct Served {
    /// The client's handle.
    pub handle: u64,
    /// The request's offset (structured read replies carry it).
    pub offset: u64,
    /// A read (which must get a structured reply when those are on).
    pub is_read: bool,
    /// The outcome.
    pub answer: Answer,
}

fn refuse(errno: Errno, message: impl Into<String>) -> Answer {
    Answer::Error(errno, message.into())
}

/// Checks a request before any I/O; `Err` is the answer to send at once.
pub fn check<B: BlockDevice>(
    export: &Export<B>,
    req: &Request,
    structured: bool,
) -> Result<(), Answer> {
    let allowed = match req.command {
        CMD_READ if structured => CMD_FLAG_FUA | CMD_FLAG_DF,
        CMD_WRITE_ZEROES => CMD_FLAG_FUA | CMD_FLAG_NO_HOLE,
        CMD_READ | CMD_WRITE | CMD_FLUSH | CMD_TRIM | CMD_CACHE => CMD_FLAG_FUA,
        other => return Err(refuse(Errno::Inval, format!("unknown command {other}"))),
    };
    if req.flags & !allowed != 0 {
        return Err(refuse(
            Errno::Inval,
            format!(
                "flags {:#06x} are not valid for command {}",
                req.flags, req.command
            ),
        ));
    }
    let writes = matches!(req.command, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES);
    if writes && export.config.read_only {
        return Err(refuse(Errno::Perm, "the export is read-only"));
    }
    if req.command == CMD_TRIM && !export.trims() {
        return Err(refuse(Errno::Inval, "TRIM is not offered on this export"));
    }
    if req.command == CMD_FLUSH {
        return Ok(());
    }
    let g = export.device.geometry();
    let size = g.size_bytes();
    let end = req.offset.checked_add(u64::from(req.length));
    if end.is_none_or(|end| end > size) {
        // The spec: ENOSPC for writes beyond the end, EINVAL for reads and
        // trims (a trim adds no data that could run out of room).
        let errno = if matches!(req.command, CMD_WRITE | CMD_WRITE_ZEROES) {
            Errno::NoSpc
        } else {
            Errno::Inval
        };
        return Err(refuse(
            errno,
            format!(
                "bytes {}..+{} are beyond the {size}-byte export",
                req.offset, req.length
            ),
        ));
    }
    let bs = u64::from(g.block_size);
    if !req.offset.is_multiple_of(bs) || !u64::from(req.length).is_multiple_of(bs) {
        return Err(refuse(
            Errno::Inval,
            format!(
                "offset {} and length {} must be multiples of the {bs}-byte block size",
                req.offset, req.length
            ),
        ));
    }
    if matches!(req.command, CMD_READ | CMD_WRITE) && req.length > MAX_BLOCK {
        return Err(refuse(
            Errno::Inval,
            format!(
                "{} bytes is more than the {MAX_BLOCK}-byte maximum",
                req.length
            ),
        ));
    }
    Ok(())
}

/// Serves a checked request.
pub async fn serve<B>(export: Arc<Export<B>>, req: Request) -> Served
where
    B: BlockDevice,
{
    let answer = match run(&export, &req).await {
        Ok(answer) => answer,
        Err((errno, message)) => Answer::Error(errno, message),
    };
    Served {
        handle: req.handle,
        offset: req.offset,
        is_read: req.command == CMD_READ,
        answer,
    }
}

type Failure = (Errno, String);

async fn run<B: BlockDevice>(export: &Export<B>, req: &Request) -> Result<Answer, Failure> {
    let device = &export.device;
    let g = device.geometry();
    let fua = req.flags & CMD_FLAG_FUA != 0;
    let write = matches!(req.command, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES);
    let fail = |e: B::Error| (errno_of(&e, write), e.to_string());
    let lba = req.offset / u64::from(g.block_size);
    let blocks = u64::from(req.length) / u64::from(g.block_size);
    match req.command {
        CMD_READ => {
            let pieces = split(lba, blocks, transfer_limit(&g));
            let reads = pieces.iter().map(|&(at, n)| device.read(at, n));
            let parts = try_join_all(reads).await.map_err(fail)?;
            let data = parts
                .iter()
                .flat_map(|p| p.segments().iter().cloned())
                .collect();
            Ok(Answer::Data(data))
        }
        CMD_WRITE => {
            let bs = g.block_size as usize;
            let pieces = split(lba, blocks, transfer_limit(&g));
            let writes = pieces.iter().map(|&(at, n)| {
                let from = (at - lba) as usize * bs;
                let data = req.data.slice(from..from + n as usize * bs);
                device.write(at, data, fua)
            });
            try_join_all(writes).await.map_err(fail)?;
            Ok(Answer::Done)
        }
        CMD_FLUSH => {
            device.flush().await.map_err(fail)?;
            Ok(Answer::Done)
        }
        CMD_TRIM => {
            let ranges: Vec<(u64, u32)> = split(lba, blocks, u32::MAX);
            device.unmap(&ranges).await.map_err(fail)?;
            if fua {
                device.flush().await.map_err(fail)?;
            }
            Ok(Answer::Done)
        }
        CMD_WRITE_ZEROES => {
            let no_hole = req.flags & CMD_FLAG_NO_HOLE != 0;
            write_zeroes(export, lba, blocks, !no_hole)
                .await
                .map_err(fail)?;
            if fua {
                device.flush().await.map_err(fail)?;
            }
            Ok(Answer::Done)
        }
        // A prefetch hint: the range was checked; the target caches itself.
        CMD_CACHE => Ok(Answer::Done),
        other => Ok(refuse(Errno::Inval, format!("unknown command {other}"))),
    }
}

/// WRITE SAME while the LU takes it, zero-filled writes once it refused.
async fn write_zeroes<B: BlockDevice>(
    export: &Export<B>,
    lba: u64,
    blocks: u64,
    may_unmap: bool,
) -> Result<(), B::Error> {
    let device = &export.device;
    let g = device.geometry();
    if !export.write_same_refused() {
        let pieces = split(lba, blocks, WRITE_SAME_MAX_BLOCKS);
        let mut done = 0;
        for &(at, n) in &pieces {
            match device.write_zeroes(at, n, may_unmap).await {
                Ok(()) => {
                    export.note_write_same(true);
                    done += 1;
                }
                // ILLEGAL REQUEST on the first one: no WRITE SAME here.
                Err(e) if done == 0 && refused(&e) => {
                    export.note_write_same(false);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if done == pieces.len() {
            return Ok(());
        }
    }
    let chunk_blocks = (export.zeroes.len() as u64 / u64::from(g.block_size)).max(1) as u32;
    let bs = g.block_size as usize;
    let writes = split(lba, blocks, chunk_blocks.min(transfer_limit(&g)))
        .into_iter()
        .map(|(at, n)| device.write(at, export.zeroes.slice(..n as usize * bs), false));
    try_join_all(writes).await?;
    Ok(())
}

/// Blocks one WRITE SAME covers at most (its 32-bit field, and a bound on
/// how long one command may take).
const WRITE_SAME_MAX_BLOCKS: u32 = 1 << 20;

fn refused<E: BlockError>(e: &E) -> bool {
    e.session_error().is_some_and(|s| s.is_illegal_request())
}

/// Blocks per command: the LU's maximum transfer length, else what fits the
/// NBD maximum.
pub(crate) fn transfer_limit(g: &Geometry) -> u32 {
    match g.max_transfer_blocks {
        0 => (MAX_BLOCK / g.block_size).max(1),
        n => n,
    }
}

/// `lba..lba + blocks` in pieces of at most `max` blocks.
fn split(lba: u64, blocks: u64, max: u32) -> Vec<(u64, u32)> {
    let max = u64::from(max.max(1));
    let mut pieces = Vec::with_capacity(blocks.div_ceil(max) as usize);
    let mut at = lba;
    let end = lba + blocks;
    while at < end {
        let n = (end - at).min(max);
        pieces.push((at, n as u32));
        at += n;
    }
    pieces
}

/// The NBD error for a device error.
pub fn errno_of<E: BlockError>(e: &E, write: bool) -> Errno {
    let Some(sense) = e.session_error().and_then(|s| s.sense()) else {
        return Errno::Io;
    };
    match (sense.key, sense.asc, sense.ascq) {
        // SPACE ALLOCATION FAILED WRITE PROTECT: a thin LU out of space.
        (SenseKey::DataProtect, 0x27, 0x07) => Errno::NoSpc,
        (SenseKey::DataProtect, _, _) => Errno::Perm,
        // LOGICAL BLOCK ADDRESS OUT OF RANGE (the LU shrank under us).
        (SenseKey::IllegalRequest, 0x21, 0x00) if write => Errno::NoSpc,
        (SenseKey::IllegalRequest, _, _) => Errno::Inval,
        _ => Errno::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_range_exactly() {
        assert_eq!(split(10, 5, 2), vec![(10, 2), (12, 2), (14, 1)]);
        assert_eq!(split(0, 0, 8), vec![]);
        assert_eq!(split(7, 3, 0), vec![(7, 1), (8, 1), (9, 1)]);
    }
}
