//! The block API over one session: commands go to one LUN through one path,
//! with same-path retries per the session's [`RetryPolicy`].

use std::future::Future;
use std::sync::Arc;

use iscsi_proto::pdu::{Itt, Lun};
use tracing::debug;

use super::device::BlockDevice;
use super::geometry::Geometry;
use super::scsi::ScsiExecutor;
use crate::core::command::{Command, CommandOutcome};
use crate::core::completion::CompletionSink;
use crate::core::error::{Error, PathContext, TaskFailure};
use crate::core::retry::{RetryPolicy, RetryVerdict};
use crate::runtime::Session;

impl Session {
    /// Runs a command and turns any status other than GOOD into
    /// [`Error::Scsi`], re-issuing it on this session first while `policy`
    /// says the condition is transient; when the budget is spent the error
    /// is [`Error::RetriesExhausted`] (a path error to a multipath layer).
    pub async fn execute_with_retry(
        &self,
        command: Command,
        policy: &RetryPolicy,
    ) -> Result<CommandOutcome, Error> {
        let first = self.execute(command.clone()).await?;
        self.retry_from(command, first, policy, || true).await
    }

    /// Goes on as [`Session::execute_with_retry`] would after `first`, the
    /// outcome of a first attempt made some other way (a batch): done if it
    /// completed, else re-issued here while `policy` allows and, asked
    /// before each new attempt, `still_wanted()` (a batch's caller may have
    /// gone: the command then ends as cancelled, unsent).
    pub async fn retry_from(
        &self,
        command: Command,
        first: CommandOutcome,
        policy: &RetryPolicy,
        still_wanted: impl Fn() -> bool + Send,
    ) -> Result<CommandOutcome, Error> {
        let mut attempt = 1;
        let mut outcome = first;
        loop {
            let error = |outcome: CommandOutcome| Error::Scsi {
                ctx: self.context().clone(),
                lun: command.lun,
                itt: outcome.itt,
                opcode: command.opcode(),
                status: outcome.status,
                sense: outcome.sense,
            };
            match policy.judge(&outcome, attempt) {
                RetryVerdict::Completed => return Ok(outcome),
                RetryVerdict::RetryAfter(pause) => {
                    debug!(
                        attempt,
                        status = outcome.status,
                        "retrying on the same path"
                    );
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                RetryVerdict::Exhausted => {
                    return Err(Error::RetriesExhausted {
                        attempts: attempt,
                        last: Box::new(error(outcome)),
                    });
                }
                RetryVerdict::Failed(_) => return Err(error(outcome)),
            }
            if !still_wanted() {
                return Err(Error::Command {
                    ctx: self.context().clone(),
                    lun: command.lun,
                    itt: Itt::RESERVED,
                    opcode: command.opcode(),
                    failure: TaskFailure::Cancelled { sent: false },
                });
            }
            attempt += 1;
            outcome = self.execute(command.clone()).await?;
        }
    }

    /// [`Session::execute_with_retry`] with the session's own policy.
    pub async fn execute_checked(&self, command: Command) -> Result<CommandOutcome, Error> {
        let policy = self.config().retry.clone();
        self.execute_with_retry(command, &policy).await
    }

    /// SCSI commands to `lun` of this session.
    pub fn scsi(&self, lun: Lun) -> SessionScsi {
        SessionScsi {
            session: self.clone(),
            lun,
        }
    }

    /// Probes a LUN (waiting out UNIT ATTENTIONs) and returns it with its
    /// geometry, ready for block I/O.
    pub async fn open_lun(&self, number: u16) -> Result<SessionLun, Error> {
        let lun = Lun::from_number(number).ok_or_else(|| Error::BadResponse {
            ctx: self.context().clone(),
            reason: format!("LUN {number} cannot be addressed (above 16383)"),
        })?;
        let scsi = self.scsi(lun);
        scsi.test_unit_ready().await?;
        let geometry = scsi.probe_geometry().await?;
        Ok(SessionLun { scsi, geometry })
    }
}

/// One LUN of one session, before its geometry is known: SCSI queries.
#[derive(Clone, Debug)]
pub struct SessionScsi {
    session: Session,
    lun: Lun,
}

impl SessionScsi {
    /// The session underneath.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl ScsiExecutor for SessionScsi {
    type Error = Error;

    fn lun(&self) -> Lun {
        self.lun
    }

    fn context(&self) -> PathContext {
        self.session.context().clone()
    }

    fn execute(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<CommandOutcome, Error>> + Send {
        self.session.execute_checked(command)
    }
}

/// One LUN of one session with its geometry: the block API over one path.
#[derive(Clone, Debug)]
pub struct SessionLun {
    scsi: SessionScsi,
    geometry: Geometry,
}

impl SessionLun {
    /// The session underneath.
    pub fn session(&self) -> &Session {
        &self.scsi.session
    }

    /// Reads the geometry again (after a capacity-changed UNIT ATTENTION).
    pub async fn refresh(&mut self) -> Result<(), Error> {
        self.geometry = self.scsi.probe_geometry().await?;
        Ok(())
    }
}

impl ScsiExecutor for SessionLun {
    type Error = Error;

    fn lun(&self) -> Lun {
        self.scsi.lun
    }

    fn context(&self) -> PathContext {
        self.scsi.context()
    }

    fn execute(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<CommandOutcome, Error>> + Send {
        self.scsi.session.execute_checked(command)
    }
}

impl BlockDevice for SessionLun {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn submit_batch(
        &self,
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<Error>>,
    ) -> impl Future<Output = ()> + Send {
        let session = self.scsi.session.clone();
        let checked = Arc::new(CheckedSink {
            policy: session.config().retry.clone(),
            session: session.clone(),
            sink,
        });
        async move { session.submit_batch(commands, checked).await }
    }
}

/// Between a session and a block caller's sink: checks each outcome as
/// [`Session::execute_checked`] does. A command that completed, or failed
/// on the connection, passes through in the driver's task; one to retry
/// (UNIT ATTENTION, BUSY) goes on in a task of its own, the rare case.
struct CheckedSink {
    session: Session,
    policy: RetryPolicy,
    sink: Arc<dyn CompletionSink<Error>>,
}

impl CompletionSink<Error> for CheckedSink {
    fn complete(&self, tag: u64, command: Command, result: Result<CommandOutcome, Error>) {
        let outcome = match result {
            Ok(outcome) if self.policy.judge(&outcome, 1) != RetryVerdict::Completed => outcome,
            done => return self.sink.complete(tag, command, done),
        };
        if self.sink.is_closed() {
            // Nobody to retry for.
            return self.sink.withdrawn(tag);
        }
        let (session, policy, sink) =
            (self.session.clone(), self.policy.clone(), self.sink.clone());
        tokio::spawn(async move {
            let wanted = || !sink.is_closed();
            let result = session
                .retry_from(command.clone(), outcome, &policy, wanted)
                .await;
            sink.complete(tag, command, result);
        });
    }

    fn is_closed(&self) -> bool {
        self.sink.is_closed()
    }

    fn withdrawn(&self, tag: u64) {
        self.sink.withdrawn(tag);
    }
}
