//! The async session handle: clone it freely, send commands from any task.

use std::sync::Arc;

use iscsi_proto::text::KeyValue;
use tokio::sync::{mpsc, oneshot, watch};

use crate::command::{Command, CommandOutcome};
use crate::config::SessionConfig;
use crate::connection::ConnectionStats;
use crate::driver::{Driver, Established, Request, SessionState, SessionStatus, establish};
use crate::error::{Error, PathContext};
use iscsi_proto::text::OperationalParams;

/// Requests queued towards the driver before senders wait: enough for a deep
/// queue, small enough to push back on a runaway producer.
const REQUEST_QUEUE: usize = 1024;

/// A logged-in session to one target through one portal. Cheap to clone,
/// `Send + Sync`; the connection lives in a background task that reconnects
/// (reinstating the session) when the network fails.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<SessionStatus>,
    ctx: PathContext,
}

impl Session {
    /// Connects and logs in. Fails if the first login fails: a session is only
    /// handed out once it works. Must be called inside a tokio runtime.
    pub async fn connect(config: SessionConfig) -> Result<Session, Error> {
        let ctx = PathContext {
            portal: config.portal.clone(),
            target: config.target_name.clone().unwrap_or_default(),
        };
        config.validate().map_err(|source| Error::Config {
            ctx: ctx.clone(),
            source,
        })?;
        let mut config = config;
        // Fix the ISID now: redirects must not change it.
        config.isid = Some(config.isid());
        let config = Arc::new(config);
        let Established {
            conn,
            io,
            params,
            portal,
            home,
        } = establish(&config, &config.portal).await?;
        let (status_tx, status_rx) = watch::channel(SessionStatus {
            state: SessionState::LoggedIn,
            portal: portal.clone(),
            tsih: conn.tsih(),
            params: Some(params),
            reconnects: 0,
            last_error: None,
        });
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let driver = Driver::new(config, rx, status_tx, home);
        tokio::spawn(driver.run(conn, io));
        Ok(Session {
            inner: Arc::new(Inner {
                requests: tx,
                status: status_rx,
                ctx,
            }),
        })
    }

    /// The portal and target this session was configured for.
    pub fn context(&self) -> &PathContext {
        &self.inner.ctx
    }

    /// The current status snapshot.
    pub fn status(&self) -> SessionStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<SessionStatus> {
        self.inner.status.clone()
    }

    /// The parameters of the current connection.
    pub fn params(&self) -> Option<OperationalParams> {
        self.inner.status.borrow().params.clone()
    }

    fn closed(&self) -> Error {
        Error::Closed {
            ctx: self.inner.ctx.clone(),
        }
    }

    /// Runs one command and returns its SCSI outcome, whatever the status: a
    /// CHECK CONDITION is an `Ok` here, with its sense data.
    pub async fn execute(&self, command: Command) -> Result<CommandOutcome, Error> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Command { command, reply })
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
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

    /// Logs out and ends the session. Commands still in flight fail.
    pub async fn logout(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        if self
            .inner
            .requests
            .send(Request::Logout { reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}
