//! Opening a multipath volume on a fixture, and watching its paths: the
//! helpers every multipath test shares.

use std::time::Duration;

use iscsi_multipath::{
    ConnectionInfo as VolumeInfo, MultipathVolume, PathState, SessionTemplate, VolumeOptions,
    VolumeStatus,
};
use iscsi_session::Timeouts;

use crate::connection_info::{ConnectionInfo, ConnectionInfoForm};

/// The initiator name multipath tests log in with.
pub const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:multipath";

/// Session settings for tests: NOP keepalive `nop` (interval and timeout),
/// short logins.
pub fn template(nop: Duration) -> SessionTemplate {
    let mut t = SessionTemplate::new(INITIATOR);
    t.timeouts = Some(Timeouts {
        connect: Duration::from_secs(2),
        login: Duration::from_secs(10),
        command: Duration::from_secs(20),
        nop_interval: nop,
        nop_timeout: nop,
        ..Timeouts::default()
    });
    t.discovery_timeout = Duration::from_secs(10);
    t
}

/// Volume options for tests: a fast checker (250 ms, at most 1 s).
pub fn fast_options() -> VolumeOptions {
    VolumeOptions {
        checker_interval: Duration::from_millis(250),
        checker_max_interval: Duration::from_secs(1),
        path_timeout: Duration::from_secs(5),
        attach_timeout: Duration::from_secs(20),
        ..VolumeOptions::default()
    }
}

/// Parses a fixture's connection_info as riscsi would receive it.
pub fn volume_info(info: &ConnectionInfo, form: ConnectionInfoForm) -> VolumeInfo {
    let text = info.to_json(form).to_string();
    VolumeInfo::parse(&text).expect("the fixture's connection_info parses")
}

/// Opens the volume of `info` with `options` and 1 s NOP keepalive.
pub async fn open(
    info: &ConnectionInfo,
    form: ConnectionInfoForm,
    options: VolumeOptions,
) -> MultipathVolume {
    let parsed = volume_info(info, form);
    MultipathVolume::open_connection_info(&parsed, &template(Duration::from_secs(1)), options)
        .await
        .expect("the volume opens")
}

/// Waits until the volume's status satisfies `condition`; panics with the
/// last status after `timeout`.
pub async fn wait_status(
    volume: &MultipathVolume,
    timeout: Duration,
    what: &str,
    condition: impl Fn(&VolumeStatus) -> bool,
) -> VolumeStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = volume.watch_changes();
    loop {
        let status = volume.status();
        if condition(&status) {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}; status: {status:#?}");
        }
        // Counters move without a change notice: look again regularly.
        let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
    }
}

/// The states of the paths, main first.
pub fn states(status: &VolumeStatus) -> Vec<PathState> {
    status.paths.iter().map(|p| p.state).collect()
}

/// What one pass of [`copy_pass`] did.
#[derive(Debug, Clone)]
pub struct PassReport {
    /// Bytes moved.
    pub bytes: u64,
    /// Longest time without a completion (the failover stall).
    pub longest_gap: Duration,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// Which way a pass goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Writes the pattern of `seed` over the range.
    Write { seed: u64 },
    /// Reads the range and compares it with the pattern of `seed`.
    Verify { seed: u64 },
}

/// Writes or verifies `total` bytes from byte 0 through the volume, `io`
/// bytes per command, `depth` commands in flight; `progress` counts the
/// bytes done so a test can inject a fault at a given point. Fails on the
/// first error or mismatch, naming the offset.
pub async fn copy_pass(
    volume: &MultipathVolume,
    pass: Pass,
    total: u64,
    io: u64,
    depth: usize,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<PassReport, String> {
    use iscsi_session::BlockDevice;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let bs = u64::from(volume.geometry().block_size);
    let next = Arc::new(AtomicU64::new(0));
    let last = Arc::new(std::sync::Mutex::new((
        tokio::time::Instant::now(),
        Duration::ZERO,
    )));
    let started = tokio::time::Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..depth {
        let (volume, next, progress, last) =
            (volume.clone(), next.clone(), progress.clone(), last.clone());
        workers.spawn(async move {
            loop {
                let offset = next.fetch_add(io, Ordering::Relaxed);
                if offset >= total {
                    return Ok::<(), String>(());
                }
                let len = io.min(total - offset);
                let lba = offset / bs;
                let no_answer = |_| format!("command at byte {offset}: {}", no_answer_in());
                match pass {
                    Pass::Write { seed } => {
                        tokio::time::timeout(
                            COMMAND_WAIT,
                            volume.write(lba, pass_data(seed, offset, len), false),
                        )
                        .await
                        .map_err(no_answer)?
                        .map_err(|e| format!("write at byte {offset}: {e}"))?;
                    }
                    Pass::Verify { seed } => {
                        let got =
                            tokio::time::timeout(COMMAND_WAIT, volume.read(lba, (len / bs) as u32))
                                .await
                                .map_err(no_answer)?
                                .map_err(|e| format!("read at byte {offset}: {e}"))?;
                        verify_pass_data(seed, offset, &got.to_bytes())?;
                    }
                }
                let now = tokio::time::Instant::now();
                {
                    let mut l = last.lock().unwrap();
                    l.1 = l.1.max(now - l.0);
                    l.0 = now;
                }
                progress.fetch_add(len, Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| format!("worker: {e}"))??;
    }
    let longest_gap = last.lock().unwrap().1;
    Ok(PassReport {
        bytes: total,
        longest_gap,
        elapsed: started.elapsed(),
    })
}

/// [`copy_pass`] through [`BlockDevice::submit_batch`] instead of a future
/// per command: `depth` commands kept in flight, each burst of completions
/// drained at once and refilled in one batch.
///
/// [`BlockDevice::submit_batch`]: iscsi_session::BlockDevice::submit_batch
pub async fn copy_pass_batched(
    volume: &MultipathVolume,
    pass: Pass,
    total: u64,
    io: u64,
    depth: usize,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<PassReport, String> {
    use iscsi_session::{BlockDevice, CompletionQueue};
    use std::sync::atomic::Ordering;
    let bs = u64::from(volume.geometry().block_size);
    let queue = CompletionQueue::new();
    let sink = queue.sink();
    let started = tokio::time::Instant::now();
    let (mut last, mut longest_gap) = (started, Duration::ZERO);
    let (mut next, mut in_flight) = (0u64, 0usize);
    let mut done = Vec::new();
    // The tag of a command is its byte offset.
    let command_at = |offset: u64| {
        let len = io.min(total - offset);
        let lba = offset / bs;
        match pass {
            Pass::Write { seed } => {
                volume.write_command_at(lba, pass_data(seed, offset, len), false)
            }
            Pass::Verify { .. } => Ok(volume.read_command_at(lba, (len / bs) as u32)),
        }
        .map(|command| (offset, command))
        .map_err(|e| format!("command at byte {offset}: {e}"))
    };
    loop {
        let mut batch = Vec::new();
        while in_flight < depth && next < total {
            batch.push(command_at(next)?);
            next += io;
            in_flight += 1;
        }
        if !batch.is_empty() {
            volume.submit_batch(batch, sink.clone()).await;
        }
        if in_flight == 0 {
            break;
        }
        tokio::time::timeout(COMMAND_WAIT, queue.drain(&mut done))
            .await
            .map_err(|_| format!("{} with {in_flight} in flight", no_answer_in()))?;
        for completion in done.drain(..) {
            let offset = completion.tag;
            let len = io.min(total - offset);
            let outcome = completion
                .result
                .map_err(|e| format!("command at byte {offset}: {e}"))?;
            if let Pass::Verify { seed } = pass {
                verify_pass_data(seed, offset, &outcome.data.to_bytes())?;
            }
            in_flight -= 1;
            progress.fetch_add(len, Ordering::Relaxed);
        }
        let now = tokio::time::Instant::now();
        longest_gap = longest_gap.max(now - last);
        last = now;
        // Checking data can take longer than the next completions take to
        // arrive: without a yield the pass would never return Pending, and
        // a fault waiting beside it in the same task would only run after.
        tokio::task::yield_now().await;
    }
    Ok(PassReport {
        bytes: total,
        longest_gap,
        elapsed: started.elapsed(),
    })
}

/// The longest a pass waits for one command: far beyond any failover or
/// `no_path_retry` of the tests, so a command that never ends fails the
/// test with its offset instead of hanging the run.
pub const COMMAND_WAIT: Duration = Duration::from_secs(120);

fn no_answer_in() -> String {
    format!("no completion within {COMMAND_WAIT:?}")
}

/// What a write pass puts at `offset`.
fn pass_data(seed: u64, offset: u64, len: u64) -> bytes::Bytes {
    bytes::Bytes::from(crate::pattern::bytes(seed, offset, len as usize))
}

/// Whether `got`, read at `offset`, is what a write pass put there.
fn verify_pass_data(seed: u64, offset: u64, got: &[u8]) -> Result<(), String> {
    if got != crate::pattern::bytes(seed, offset, got.len()) {
        return Err(format!(
            "data at byte {offset} differs from what was written"
        ));
    }
    Ok(())
}

/// Resolves once `progress` reaches `at` bytes.
async fn reached(progress: &std::sync::atomic::AtomicU64, at: u64) {
    while progress.load(std::sync::atomic::Ordering::Relaxed) < at {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `copy` (a pass) and, once `progress` reaches `at` bytes, `fault`
/// beside it; returns the pass's outcome. A pass that ends before `at`
/// (an early error) is returned at once: joining it with a fault that
/// waits for progress would wait forever.
pub async fn with_fault_at<T>(
    copy: impl std::future::Future<Output = Result<T, String>>,
    progress: &std::sync::atomic::AtomicU64,
    at: u64,
    fault: impl std::future::Future<Output = ()>,
) -> Result<T, String> {
    tokio::pin!(copy);
    tokio::select! {
        outcome = &mut copy => {
            return outcome.and_then(|_| {
                Err(format!("the pass ended before byte {at}, where its fault was due"))
            });
        }
        () = reached(progress, at) => {}
    }
    let (outcome, ()) = tokio::join!(copy, fault);
    outcome
}

/// Checks that the backing file holds the pattern of `seed` over `0..total`.
pub fn backing_holds(lun: &crate::ExportedLun, seed: u64, total: u64) -> Result<(), String> {
    const CHUNK: u64 = 4 << 20;
    let mut offset = 0;
    while offset < total {
        let len = CHUNK.min(total - offset) as usize;
        let have = lun.read_backing(offset, len).map_err(|e| e.to_string())?;
        if have != crate::pattern::bytes(seed, offset, len) {
            let at = have
                .iter()
                .zip(crate::pattern::bytes(seed, offset, len))
                .position(|(a, b)| *a != b)
                .unwrap_or(0);
            return Err(format!(
                "backing file differs at byte {}",
                offset + at as u64
            ));
        }
        offset += len as u64;
    }
    Ok(())
}

/// Awaits `step`; panics naming `what` if it takes longer than `limit`, so
/// a step that never ends fails the test instead of hanging the run.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl std::future::Future<Output = T>,
) -> T {
    match tokio::time::timeout(limit, step).await {
        Ok(done) => done,
        Err(_) => panic!("{what}: not within {limit:?}"),
    }
}
