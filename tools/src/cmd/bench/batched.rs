//! The batched form of the benchmark loop (`--submit batched`): one task
//! keeps `depth` commands in flight through [`BlockDevice::submit_batch`],
//! drains every burst of completions at once and refills the freed slots in
//! one batch, as an NBD server or an SPDK-style application does.

use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use iscsi_session::{BlockDevice, CompletionQueue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Pattern, Region};

/// What the loop runs.
pub(super) struct BatchedRun {
    pub pattern: Pattern,
    pub region: Region,
    pub depth: usize,
    pub write_buffer: Option<Bytes>,
    pub deadline: Instant,
}

/// Runs until the deadline and every command is back; latencies go into
/// `latencies`. The first error ends the run once what is in flight is back.
pub(super) async fn run<B: BlockDevice>(
    device: &B,
    run: BatchedRun,
    latencies: &mut Histogram<u64>,
) -> Result<(), B::Error> {
    let queue = CompletionQueue::new();
    let sink = queue.sink();
    let io_blocks = run.region.io_blocks;
    let expected = io_blocks as usize * device.geometry().block_size as usize;
    let mut rng = StdRng::seed_from_u64(rand::random());
    let mut next_slot = 0u64;
    // Tags are slots 0..depth; each remembers when its command went.
    let mut sent_at = vec![Instant::now(); run.depth];
    let mut free: Vec<u64> = (0..run.depth as u64).collect();
    let mut done = Vec::with_capacity(run.depth);
    let mut batch = Vec::with_capacity(run.depth);
    let mut in_flight = 0usize;
    let mut first_error = None;
    loop {
        let now = Instant::now();
        if now < run.deadline && first_error.is_none() {
            while let Some(tag) = free.pop() {
                let slot = if run.pattern.sequential() {
                    next_slot += 1;
                    (next_slot - 1) % run.region.slots
                } else {
                    rng.gen_range(0..run.region.slots)
                };
                let lba = slot * u64::from(io_blocks);
                let command = match &run.write_buffer {
                    Some(data) => device.write_command_at(lba, data.clone(), false)?,
                    None => device.read_command_at(lba, io_blocks),
                };
                sent_at[tag as usize] = now;
                batch.push((tag, command));
            }
        }
        in_flight += batch.len();
        if !batch.is_empty() {
            let commands = std::mem::replace(&mut batch, Vec::with_capacity(run.depth));
            device.submit_batch(commands, sink.clone()).await;
        }
        if in_flight == 0 {
            break;
        }
        queue.drain(&mut done).await;
        let end = Instant::now();
        for completion in done.drain(..) {
            in_flight -= 1;
            free.push(completion.tag);
            let started = sent_at[completion.tag as usize];
            match completion.result {
                Ok(outcome) if run.write_buffer.is_none() && outcome.data.len() != expected => {
                    let e = device.bad(format!(
                        "a read of {expected} bytes returned {}",
                        outcome.data.len()
                    ));
                    first_error.get_or_insert(e);
                }
                Ok(_) => latencies.saturating_record(end.duration_since(started).as_nanos() as u64),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
