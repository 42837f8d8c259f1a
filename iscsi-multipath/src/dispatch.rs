//! One command through the volume: pick a path, run it there (with that
//! path's same-path retries), and on a path error fail the path and run it
//! again elsewhere; a final SCSI error goes back at once; with no path
//! left, wait as `no_path_retry` says.
//!
//! A command is re-issued only after its session handed it back (the
//! connection died, the task was aborted, or the target answered): the
//! initiator never has two copies of it in flight, and never sends one
//! after its caller got an answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iscsi_proto::scsi::FailureClass;
use iscsi_session::{Command, CommandOutcome, CompletionSink, Error, SessionState, TaskFailure};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::error::VolumeError;
use crate::failback::NoPathRetry;
use crate::member::{Health, Member};
use crate::volume::Shared;

pub(crate) async fn dispatch(
    shared: &Shared,
    command: Command,
) -> Result<CommandOutcome, VolumeError> {
    run(shared, &command, None, None).await
}

/// The first attempt of a command, made on `member` outside [`dispatch`]
/// (in a batch), that did not simply complete.
pub(crate) struct FirstAttempt {
    pub member: Arc<Member>,
    pub result: Result<CommandOutcome, Error>,
    pub started: Instant,
}

/// Goes on with a command after its first attempt as [`dispatch`] would
/// have: same-path retries of its status, or failover, or waiting for a
/// path. `first` is `None` for a command that has not been tried yet.
/// Stops before each new attempt once nobody waits on `sink` (a future
/// stops the same way, by being dropped).
pub(crate) async fn resume(
    shared: &Shared,
    command: &Command,
    first: Option<FirstAttempt>,
    sink: &dyn CompletionSink<VolumeError>,
) -> Result<CommandOutcome, VolumeError> {
    run(shared, command, first, Some(sink)).await
}

async fn run(
    shared: &Shared,
    command: &Command,
    mut first: Option<FirstAttempt>,
    sink: Option<&dyn CompletionSink<VolumeError>>,
) -> Result<CommandOutcome, VolumeError> {
    let bytes = u64::from(command.expected_transfer_len());
    let budget = shared.options.path_attempt_budget(shared.members.len());
    let mut path_errors = 0u32;
    loop {
        // Nobody hears the answer of an abandoned command: any will do.
        if shared.closing() {
            return Err(VolumeError::Closed {
                volume: shared.name.clone(),
            });
        }
        let (member, started, result) = match first.take() {
            Some(FirstAttempt {
                member,
                result,
                started,
            }) => {
                let result = match result {
                    Ok(outcome) => {
                        let mut attempt = command.clone();
                        attempt.lun = member.lun;
                        let _in_flight = member.counters.begin(bytes);
                        let policy = &shared.options.retry;
                        let wanted = || sink.is_none_or(|s| !s.is_closed());
                        let session = &member.session;
                        session.retry_from(attempt, outcome, policy, wanted).await
                    }
                    Err(e) => Err(e),
                };
                (member, started, result)
            }
            None => {
                let Some(member) = shared.pick(bytes) else {
                    wait_for_path(shared, sink).await?;
                    continue;
                };
                let mut attempt = command.clone();
                attempt.lun = member.lun;
                let started = Instant::now();
                let result = {
                    let _in_flight = member.counters.begin(bytes);
                    member
                        .session
                        .execute_with_retry(attempt, &shared.options.retry)
                        .await
                };
                (member, started, result)
            }
        };
        let error = match result {
            Ok(outcome) => {
                member.counters.completed(bytes, started.elapsed());
                return Ok(outcome);
            }
            Err(e) => e,
        };
        member.counters.errors.fetch_add(1, Ordering::Relaxed);
        match error.failure_class() {
            FailureClass::Final => return Err(error.into()),
            // A reset aimed at another task ended this one: run it again.
            FailureClass::RetrySamePath if path_errors < budget => {
                path_errors += 1;
                continue;
            }
            _ => {}
        }
        member.counters.failed_over.fetch_add(1, Ordering::Relaxed);
        let lost = connection_lost(&error);
        if !lost {
            // The command failed on a path whose connection is fine: count
            // it against the command too, so one that fails everywhere ends.
            path_errors += 1;
        }
        debug!(
            path = %member.spec.portal,
            sent = ?error.delivery(),
            error = %error,
            "path error: re-issuing the command on another path"
        );
        fail_path(shared, &member, &error, lost);
        if path_errors >= budget {
            return Err(VolumeError::AttemptsExhausted {
                volume: shared.name.clone(),
                attempts: path_errors,
                last: Box::new(error),
            });
        }
        // A lost connection does not count against the command, and a
        // session that is not connected answers at once: let the checker
        // and the session drivers run before the next attempt, so that a
        // burst of such failures cannot hold a runtime thread.
        tokio::task::yield_now().await;
    }
}

/// The connection under the command is gone (so the command says nothing
/// about itself): a lost or absent connection.
fn connection_lost(error: &Error) -> bool {
    match error {
        Error::Command { failure, .. } => matches!(
            failure,
            TaskFailure::ConnectionLost { .. } | TaskFailure::NotConnected(_)
        ),
        Error::Closed { .. } | Error::ConnectionLost { .. } => true,
        _ => false,
    }
}

/// Takes a path out of use after a path error on it. A lost connection is
/// the session's to repair (it logs in again; the monitor checks the path
/// before it rejoins); a path error on a live connection (a timeout, an
/// ALUA transition, a condition that outlasted its retries) leaves the path
/// failed until the checker's TEST UNIT READY succeeds on it.
pub(crate) fn fail_path(shared: &Shared, member: &Member, error: &Error, lost: bool) {
    let logged_in = matches!(member.session.status().state, SessionState::LoggedIn);
    let health = if lost || !logged_in {
        Health::Down
    } else {
        Health::Faulty
    };
    if member.lock().health != Health::Up {
        return;
    }
    if error.is_lun_missing() {
        // The LU vanished under a live login: whatever comes back behind
        // this LUN must prove its identity again.
        member.lock().verified_login = None;
    }
    if member.set_health(health.clone(), Some(error.to_string())) {
        info!(path = %member.spec.portal, error = %error, "path failed");
        if member.is_main() && health == Health::Faulty {
            shared.main_demoted();
        }
        shared.replan();
    }
}

/// How often a command waiting for a path looks whether its batch's caller
/// is still there (a future's caller stops it by dropping it).
const ABANDON_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits for a usable path as `no_path_retry` says.
async fn wait_for_path(
    shared: &Shared,
    sink: Option<&dyn CompletionSink<VolumeError>>,
) -> Result<(), VolumeError> {
    let mut changes = shared.subscribe();
    let waiting_since = Instant::now();
    loop {
        if shared.closing() || sink.is_some_and(|s| s.is_closed()) {
            return Err(VolumeError::Closed {
                volume: shared.name.clone(),
            });
        }
        if shared.has_active() {
            return Ok(());
        }
        let since = shared.no_path_since().unwrap_or(waiting_since);
        let deadline = match shared.options.no_path_retry {
            NoPathRetry::Queue => None,
            NoPathRetry::Fail => Some(since),
            NoPathRetry::For(limit) => Some(since + limit),
        };
        if let Some(deadline) = deadline
            && Instant::now() >= deadline
        {
            return Err(VolumeError::NoPath {
                volume: shared.name.clone(),
                waited: Instant::now() - since,
                limit: shared.options.no_path_retry.to_string(),
                paths: shared.describe_paths(),
            });
        }
        let recheck = sink.map(|_| Instant::now() + ABANDON_CHECK);
        let wake = match (deadline, recheck) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        };
        tokio::select! {
            _ = changes.changed() => {}
            _ = sleep_until_opt(wake) => {}
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
