//! A data verifier for fault tests: every block it writes carries its LBA,
//! a generation number and a checksum, so a lost, stale or misplaced write
//! is caught afterwards (fio's verify cannot: it does not remember
//! generations across passes). Workers own disjoint blocks, write new
//! generations and read them back; the audit compares the target's backing
//! file with what was acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::nbd_async::{NbdClient, NbdError};

/// Bytes per stamped block.
pub const BLOCK: usize = 4096;

/// The content of `block` at `generation`: LBA, generation, CRC32C of the
/// rest, then a pattern of both.
pub fn stamp(block: u64, generation: u64) -> Vec<u8> {
    let mut data = crate::pattern::bytes(block.rotate_left(17) ^ generation, 0, BLOCK);
    data[..8].copy_from_slice(&block.to_le_bytes());
    data[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&data[20..]);
    data[16..20].copy_from_slice(&crc.to_le_bytes());
    data
}

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Never written (zeroes).
    Blank,
    /// A whole stamp of `block` at `generation`.
    Stamp { block: u64, generation: u64 },
    /// Neither: torn or overwritten by something else.
    Corrupt,
}

/// Reads a stamp.
pub fn seen(data: &[u8]) -> Seen {
    if data.iter().all(|&b| b == 0) {
        return Seen::Blank;
    }
    let block = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let generation = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    if data == stamp(block, generation) {
        Seen::Stamp { block, generation }
    } else {
        Seen::Corrupt
    }
}

/// One failed request the client saw.
#[derive(Debug, Clone)]
pub struct ClientError {
    /// When, from the start of the run.
    pub at: Duration,
    /// What.
    pub error: NbdError,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Per block: the last generation acknowledged (0: none).
    pub acked: Vec<u64>,
    /// Per block: the highest generation attempted.
    pub attempted: Vec<u64>,
    /// Writes acknowledged.
    pub writes: u64,
    /// Reads compared.
    pub reads: u64,
    /// Reads that did not return the last acknowledged generation (while
    /// no write of that block had failed since).
    pub bad_reads: Vec<String>,
    /// Failed requests.
    pub errors: Vec<ClientError>,
    /// Longest time without a successful completion (an error is no
    /// progress).
    pub longest_stall: Duration,
}

/// Runs `workers` workers over `blocks` blocks until `stop` is set.
pub async fn run(client: &NbdClient, blocks: u64, workers: u64, stop: Arc<AtomicBool>) -> Run {
    let started = Instant::now();
    let last = Arc::new(std::sync::Mutex::new((Instant::now(), Duration::ZERO)));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client, stop, last) = (client.clone(), stop.clone(), last.clone());
        tasks.spawn(async move {
            let own: Vec<u64> = (0..blocks).filter(|b| b % workers == w).collect();
            let mut acked = vec![0u64; own.len()];
            let mut attempted = vec![0u64; own.len()];
            // A block whose write failed may hold either generation until
            // the next acknowledged write: its reads are not judged.
            let mut unsure = vec![false; own.len()];
            let mut out = Run::default();
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let slot = round % own.len();
                round += 1;
                let block = own[slot];
                let generation = attempted[slot] + 1;
                attempted[slot] = generation;
                let offset = block * BLOCK as u64;
                match client.write(offset, &stamp(block, generation)).await {
                    Ok(()) => {
                        acked[slot] = generation;
                        unsure[slot] = false;
                        out.writes += 1;
                    }
                    Err(error) => {
                        unsure[slot] = true;
                        out.errors.push(ClientError {
                            at: started.elapsed(),
                            error,
                        });
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
                note(&last);
                match client.read(offset, BLOCK as u32).await {
                    Ok(data) => {
                        out.reads += 1;
                        let want = Seen::Stamp {
                            block,
                            generation: acked[slot],
                        };
                        let got = seen(&data);
                        if !unsure[slot] && got != want {
                            out.bad_reads.push(format!(
                                "block {block}: read {got:?}, last acknowledged {want:?}"
                            ));
                        }
                        note(&last);
                    }
                    Err(error) => out.errors.push(ClientError {
                        at: started.elapsed(),
                        error,
                    }),
                }
            }
            (own, acked, attempted, out)
        });
    }
    let mut total = Run {
        acked: vec![0; blocks as usize],
        attempted: vec![0; blocks as usize],
        ..Run::default()
    };
    while let Some(done) = tasks.join_next().await {
        let (own, acked, attempted, out) = done.expect("verifier worker");
        for (i, b) in own.iter().enumerate() {
            total.acked[*b as usize] = acked[i];
            total.attempted[*b as usize] = attempted[i];
        }
        total.writes += out.writes;
        total.reads += out.reads;
        total.bad_reads.extend(out.bad_reads);
        total.errors.extend(out.errors);
    }
    total.errors.sort_by_key(|e| e.at);
    total.longest_stall = last.lock().unwrap().1;
    total
}

fn note(last: &std::sync::Mutex<(Instant, Duration)>) {
    let now = Instant::now();
    let mut l = last.lock().unwrap();
    l.1 = l.1.max(now - l.0);
    l.0 = now;
}

/// What the target holds against what was acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Blocks holding an older generation than the last acknowledged one.
    pub lost: Vec<u64>,
    /// Blocks holding another block's stamp, a generation never written,
    /// or garbage.
    pub corrupt: Vec<u64>,
}

impl Audit {
    /// Nothing lost, nothing corrupt.
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.corrupt.is_empty()
    }
}

/// Audits `run` against the target's content, read by `read(offset, len)`.
pub fn audit(run: &Run, read: impl Fn(u64, usize) -> Vec<u8>) -> Audit {
    let mut out = Audit::default();
    for block in 0..run.acked.len() as u64 {
        let data = read(block * BLOCK as u64, BLOCK);
        let (acked, attempted) = (run.acked[block as usize], run.attempted[block as usize]);
        match seen(&data) {
            Seen::Blank if acked == 0 => {}
            Seen::Blank => out.lost.push(block),
            Seen::Stamp {
                block: b,
                generation,
            } if b == block => {
                if generation < acked {
                    out.lost.push(block);
                } else if generation > attempted {
                    out.corrupt.push(block);
                }
            }
            Seen::Stamp { .. } | Seen::Corrupt => out.corrupt.push(block),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_tell_lost_stale_and_misplaced_writes_apart() {
        assert_eq!(
            seen(&stamp(7, 3)),
            Seen::Stamp {
                block: 7,
                generation: 3
            }
        );
        let mut torn = stamp(7, 3);
        torn[2000] ^= 1;
        assert_eq!(seen(&torn), Seen::Corrupt);
        assert_eq!(seen(&[0u8; BLOCK]), Seen::Blank);
        let run = Run {
            acked: vec![2, 2, 2, 0],
            attempted: vec![3, 2, 2, 0],
            ..Run::default()
        };
        let disk = [stamp(0, 3), stamp(1, 1), stamp(0, 2), vec![0; BLOCK]];
        let a = audit(&run, |offset, _| {
            disk[(offset / BLOCK as u64) as usize].clone()
        });
        assert_eq!(a.lost, vec![1], "block 1 holds gen 1 under an acked gen 2");
        assert_eq!(a.corrupt, vec![2], "block 2 holds block 0's stamp");
    }
}
