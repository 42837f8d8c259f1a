//! The async session handle: clone it freely, send commands from any task.

use std::sync::Arc;
use std::time::Duration;

use iscsi_proto::text::{KeyValue, OperationalParams};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::driver::{Driver, Established, Request, establish};
use crate::core::chap::ChapAlgorithm;
use crate::core::command::{Command, CommandOutcome};
use crate::core::completion::CompletionSink;
use crate::core::config::SessionConfig;
use crate::core::connection::{ConnectionStats, TargetEvent};
use crate::core::error::{Error, PathContext};
use crate::core::portal::Portal;

/// Requests queued towards the driver before senders wait: enough for a deep
/// queue, small enough to push back on a runaway producer.
const REQUEST_QUEUE: usize = 1024;

/// Commands per batch request: a driver takes a request whole (so it may
/// hold up to this many more than its usual bound on outstanding commands),
/// and a huge batch is split to keep one from holding the driver for long.
const MAX_BATCH: usize = 256;

/// Target events kept for a slow subscriber before it starts missing some.
const EVENT_BACKLOG: usize = 64;

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Not logged in yet ([`Session::start`]): trying, `attempts` so far.
    Connecting {
        /// Login attempts begun.
        attempts: u32,
    },
    /// In full feature phase.
    LoggedIn,
    /// The connection failed; logging in again.
    Reconnecting {
        /// Login attempts begun since the loss.
        attempts: u32,
    },
    /// Logins stopped after a failure retrying cannot fix (`last_error`
    /// says which); [`Session::reconnect_now`] tries again.
    Failed,
    /// Logged out, or every handle dropped.
    Closed,
}

/// A snapshot for status output; watch it with [`Session::watch_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// Where the session is.
    pub state: SessionState,
    /// When `state` last changed.
    pub since: Instant,
    /// The portal the current connection goes to (after redirects).
    pub portal: Portal,
    /// The target's session handle (0 before the first login).
    pub tsih: u16,
    /// What the last login agreed on.
    pub params: Option<OperationalParams>,
    /// The CHAP algorithm the last login used (`None` without CHAP, or
    /// before the first login): what a target chose from our list.
    pub chap_algorithm: Option<ChapAlgorithm>,
    /// Successful logins after the first.
    pub reconnects: u64,
    /// The last failure: a lost connection, a failed login.
    pub last_error: Option<Error>,
    /// The session ended with a clean logout.
    pub logged_out: bool,
}

/// A session to one target through one portal. Cheap to clone, `Send +
/// Sync`; the connection lives in a background task that logs in again
/// (reinstating the session) when the network fails.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<SessionStatus>,
    events: broadcast::Sender<TargetEvent>,
    ctx: PathContext,
    config: Arc<SessionConfig>,
}

impl Session {
    /// Connects and logs in. Fails if this first login fails: the session is
    /// only handed out once it works. Must be called inside a tokio runtime.
    pub async fn connect(config: SessionConfig) -> Result<Session, Error> {
        let config = prepare(config)?;
        let established = establish(&config, &config.portal).await?;
        Ok(Session::spawn(config, Some(established)))
    }

    /// A session that logs in in the background and keeps trying on its
    /// [`ReconnectPolicy`](crate::ReconnectPolicy) until it works: a path
    /// that is down at start still has an object to hold. Fails only for a
    /// configuration that cannot work. Must be called inside a tokio runtime.
    pub fn start(config: SessionConfig) -> Result<Session, Error> {
        let config = prepare(config)?;
        Ok(Session::spawn(config, None))
    }

    fn spawn(config: Arc<SessionConfig>, established: Option<Established>) -> Session {
        let ctx = context_of(&config);
        let (state, portal, home, tsih, params, chap_algorithm) = match &established {
            Some(e) => (
                SessionState::LoggedIn,
                e.portal.clone(),
                e.home.clone(),
                e.conn.tsih(),
                Some(e.params.clone()),
                e.conn.chap_algorithm(),
            ),
            None => (
                SessionState::Connecting { attempts: 0 },
                config.portal.clone(),
                config.portal.clone(),
                0,
                None,
                None,
            ),
        };
        let (status_tx, status_rx) = watch::channel(SessionStatus {
            state,
            since: Instant::now(),
            portal,
            tsih,
            params,
            chap_algorithm,
            reconnects: 0,
            last_error: None,
            logged_out: false,
        });
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let driver = Driver::new(config.clone(), rx, status_tx, events.clone(), home);
        tokio::spawn(driver.run(established));
        Session {
            inner: Arc::new(Inner {
                requests: tx,
                status: status_rx,
                events,
                ctx,
                config,
            }),
        }
    }

    /// The portal and target this session was configured for.
    pub fn context(&self) -> &PathContext {
        &self.inner.ctx
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The current status snapshot.
    pub fn status(&self) -> SessionStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<SessionStatus> {
        self.inner.status.clone()
    }

    /// What the target reports unasked (LU changes, logout requests,
    /// dropped connections), from now on.
    pub fn target_events(&self) -> broadcast::Receiver<TargetEvent> {
        self.inner.events.subscribe()
    }

    /// The parameters of the current connection.
    pub fn params(&self) -> Option<OperationalParams> {
        self.inner.status.borrow().params.clone()
    }

    /// Waits until the session is logged in, up to `timeout`. Fails at once
    /// when logins stopped ([`SessionState::Failed`]) or the session closed.
    pub async fn wait_logged_in(&self, timeout: Duration) -> Result<(), Error> {
        let mut status = self.watch_status();
        let waited = tokio::time::timeout(
            timeout,
            status.wait_for(|s| {
                matches!(
                    s.state,
                    SessionState::LoggedIn | SessionState::Failed | SessionState::Closed
                )
            }),
        )
        .await;
        let last = self.status();
        match (waited, last.state) {
            (Ok(_), SessionState::LoggedIn) => Ok(()),
            (Err(_), _) => Err(last.last_error.unwrap_or(Error::Timeout {
                ctx: self.context().clone(),
                what: "login",
                after: timeout,
            })),
            _ => Err(last.last_error.unwrap_or_else(|| self.closed())),
        }
    }

    fn closed(&self) -> Error {
        Error::Closed {
            ctx: self.inner.ctx.clone(),
        }
    }

    /// Runs one command and returns its SCSI outcome, whatever the status: a
    /// CHECK CONDITION is an `Ok` here, with its sense data. Dropping the
    /// future before it completes withdraws the command if it was not sent
    /// yet, and always keeps it from being replayed.
    pub async fn execute(&self, command: Command) -> Result<CommandOutcome, Error> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Command { command, reply })
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Submits many commands in one hand-off to the driver: one wake-up for
    /// all, and their PDUs go out together as the CmdSN window allows. Each
    /// outcome reaches `sink` under its tag, as [`Session::execute`] would
    /// return it (any SCSI status is an `Ok`), from the driver's task; a
    /// command the session cannot take is answered there too, with its
    /// error, and one it can no longer take (the session ended) in this
    /// task. Waits only while the driver's request queue is full. Dropping
    /// the sink's queue ([`CompletionSink::is_closed`]) withdraws commands
    /// not yet sent and keeps all of them from being replayed. Cancel-safe:
    /// commands not handed over when the future is dropped are answered
    /// with [`Error::Closed`].
    pub async fn submit_batch(
        &self,
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<Error>>,
    ) {
        let mut unsent = Unsent {
            commands,
            sink,
            ctx: &self.inner.ctx,
        };
        while !unsent.commands.is_empty() {
            // A permit first: a send cancelled while waiting for room would
            // take its batch with it.
            let Ok(permit) = self.inner.requests.reserve().await else {
                return;
            };
            let chunk = match unsent.commands.len() {
                n if n <= MAX_BATCH => std::mem::take(&mut unsent.commands),
                _ => unsent.commands.drain(..MAX_BATCH).collect(),
            };
            permit.send(Request::Batch {
                commands: chunk,
                sink: unsent.sink.clone(),
            });
        }
    }

    /// A text exchange in full feature phase (e.g. `SendTargets=All`).
    pub async fn text(&self, pairs: &[(&str, &str)]) -> Result<Vec<KeyValue>, Error> {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Text { pairs, reply })
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Counters of the current connection.
    pub async fn stats(&self) -> Result<ConnectionStats, Error> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Stats { reply })
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())
    }

    /// Skips the wait before the next login attempt, or tries again after
    /// logins stopped on a permanent failure.
    pub fn reconnect_now(&self) {
        // A full queue means the driver is busy serving, not waiting.
        let _ = self.inner.requests.try_send(Request::ReconnectNow);
    }

    /// Logs out and ends the session, including its reconnect attempts.
    /// Commands still in flight fail. Says how the logout went: an error
    /// when the target did not confirm it, or when the session had already
    /// ended without one.
    pub async fn logout(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .inner
            .requests
            .send(Request::Logout { reply })
            .await
            .is_ok();
        if sent && let Ok(result) = rx.await {
            return result;
        }
        // The driver was gone already: report how the session had ended.
        let status = self.status();
        if status.logged_out {
            Ok(())
        } else {
            Err(status.last_error.unwrap_or_else(|| self.closed()))
        }
    }
}

/// Commands of a batch not handed to the driver yet: answered as closed if
/// they never are (the session ended, or the submitter gave up waiting).
struct Unsent<'a> {
    commands: Vec<(u64, Command)>,
    sink: Arc<dyn CompletionSink<Error>>,
    ctx: &'a PathContext,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        for (tag, command) in self.commands.drain(..) {
            let closed = Error::Closed {
                ctx: self.ctx.clone(),
            };
            self.sink.complete(tag, command, Err(closed));
        }
    }
}

fn context_of(config: &SessionConfig) -> PathContext {
    PathContext {
        portal: config.portal.clone(),
        target: config.target_name.clone().unwrap_or_default(),
    }
}

/// Validates and fixes the ISID now: redirects and reconnects must not
/// change it.
fn prepare(mut config: SessionConfig) -> Result<Arc<SessionConfig>, Error> {
    config.validate().map_err(|source| Error::Config {
        ctx: context_of(&config),
        source,
    })?;
    config.isid = Some(config.isid());
    Ok(Arc::new(config))
}
