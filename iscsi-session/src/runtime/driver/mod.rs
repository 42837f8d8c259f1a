//! The tokio driver of one session: owns the socket and the timers, runs the
//! sans-IO [`Connection`], and when the connection fails logs in again on
//! the session's [`ReconnectPolicy`](crate::ReconnectPolicy), replaying or
//! handing back unfinished commands as its [`Recovery`] mode says.
//!
//! - `establish`: connect, login, redirects, the CHAP fallback (mechanism).
//! - `serve`: the I/O loop of one logged-in connection (mechanism).
//! - `parked`: commands waiting for the next connection (Replay policy).
//! - `reconnect`: when to log in again after a loss or a failed login, or
//!   to stop and say why (policy).
//! - `streak`: connections lost the same way after each login (its input).
//! - here: the life cycle, carrying out what `reconnect` decides.
//!
//! Time is tokio's everywhere, so tests can pause it.

mod establish;
mod parked;
mod reconnect;
mod request;
mod serve;
mod streak;

use std::sync::Arc;
use std::time::Duration;

use iscsi_proto::pdu::Itt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, info, info_span};

use crate::core::command::Command;
use crate::core::config::{Recovery, SessionConfig};
use crate::core::connection::{Connection, ConnectionStats, TargetEvent};
use crate::core::error::{Error, PathContext, TaskFailure};
use crate::core::portal::Portal;
use crate::runtime::session::{SessionState, SessionStatus};
use crate::runtime::transport::Transport;

pub(crate) use establish::{Established, establish};
use parked::Parked;
use reconnect::{Next, Reconnect};
pub(crate) use request::{Pending, Request, TextReply};
use serve::ServeEnd;
use streak::LostConnection;

/// The current time as the sans-IO core takes it, from tokio's clock.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

pub(crate) fn read_once(conn: &mut Connection<Pending>, io: &mut Transport) {
    match io.try_read(conn) {
        Ok(Some(0)) => conn.handle_disconnect("target closed the connection"),
        Ok(Some(_)) => conn.handle_received(now()),
        Ok(None) => {}
        Err(e) => conn.handle_disconnect(e.to_string()),
    }
}

/// How a wait between connections ended.
enum Waited<T> {
    Done(T),
    /// A handle asked to reconnect now.
    Hurried,
    /// Logout asked, or every handle dropped: end the session.
    Shutdown,
}

/// The background task of one session.
pub(crate) struct Driver {
    config: Arc<SessionConfig>,
    requests: mpsc::Receiver<Request>,
    status: watch::Sender<SessionStatus>,
    events: broadcast::Sender<TargetEvent>,
    /// Commands waiting for a connection (Replay mode).
    parked: Parked,
    /// Where the next login goes (the configured portal, or a permanent
    /// redirect's).
    portal: Portal,
    logout_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    shutting_down: bool,
    /// When to log in again, or to stop.
    reconnect: Reconnect,
    /// The caller of the text exchange in progress.
    text_reply: Option<(Itt, TextReply)>,
    /// Why commands cannot be sent now, for their errors.
    offline_reason: String,
}

impl Driver {
    pub fn new(
        config: Arc<SessionConfig>,
        requests: mpsc::Receiver<Request>,
        status: watch::Sender<SessionStatus>,
        events: broadcast::Sender<TargetEvent>,
        portal: Portal,
    ) -> Self {
        Driver {
            reconnect: Reconnect::new(config.reconnect.clone()),
            config,
            requests,
            status,
            events,
            parked: Parked::default(),
            portal,
            logout_waiters: Vec::new(),
            shutting_down: false,
            text_reply: None,
            offline_reason: "not logged in yet".into(),
        }
    }

    fn ctx(&self) -> PathContext {
        PathContext {
            portal: self.portal.clone(),
            target: self.config.target_name.clone().unwrap_or_default(),
        }
    }

    fn set_state(&self, state: SessionState) {
        self.status.send_modify(|s| {
            if s.state != state {
                s.state = state;
                s.since = Instant::now();
            }
        });
    }

    /// Runs until logout or until every handle is dropped. `initial` is the
    /// connection [`crate::Session::connect`] made; without one the driver
    /// logs in first (a path that is down at start keeps trying).
    pub async fn run(mut self, initial: Option<Established>) {
        let span = info_span!("session", portal = %self.config.portal, target = %self.ctx().target);
        async move {
            let mut current = initial.map(|e| (e.conn, e.io));
            if current.is_some() {
                self.reconnect.logged_in(Instant::now());
            }
            // No wait before the first login of a session started down.
            let mut wait = None;
            let mut result = Ok(());
            loop {
                if let Some((mut conn, mut io)) = current.take() {
                    self.replay_parked(&mut conn);
                    let end = self.serve(&mut conn, &mut io).await;
                    let completed = conn.stats().commands_completed;
                    // The socket closes now, before any wait below: the
                    // target must see this connection end.
                    drop((conn, io));
                    match end {
                        ServeEnd::LoggedOut(r) => {
                            result = r;
                            break;
                        }
                        ServeEnd::Lost { error, unfinished } => {
                            let lost = LostConnection {
                                completed,
                                unfinished,
                            };
                            let ctx = self.ctx();
                            match self
                                .reconnect
                                .connection_lost(&ctx, &error, lost, Instant::now())
                            {
                                Next::GiveUp(gave_up) => {
                                    if let Waited::Shutdown = self.stop_until_asked(gave_up).await {
                                        break;
                                    }
                                    info!("reconnecting as asked");
                                }
                                Next::RetryAt(at) => {
                                    self.offline_reason = format!("reconnecting after: {error}");
                                    self.status.send_modify(|s| s.last_error = Some(error));
                                    self.set_state(SessionState::Reconnecting { attempts: 0 });
                                    wait = Some(at);
                                }
                            }
                        }
                    }
                }
                if self.shutting_down {
                    break;
                }
                if let Some(at) = wait.take() {
                    match self.while_disconnected(sleep_until(at), true).await {
                        Waited::Shutdown => break,
                        Waited::Done(()) | Waited::Hurried => {}
                    }
                }
                let attempts = self.reconnect.attempt();
                let ever_logged_in = self.reconnect.ever_logged_in();
                self.set_state(if ever_logged_in {
                    SessionState::Reconnecting { attempts }
                } else {
                    SessionState::Connecting { attempts }
                });
                let (config, portal) = (self.config.clone(), self.portal.clone());
                let login = async move { establish(&config, &portal).await };
                let outcome = match self.while_disconnected(login, false).await {
                    Waited::Done(outcome) => outcome,
                    Waited::Shutdown => break,
                    // Not asked for (hurry is false): treated as a failed attempt.
                    Waited::Hurried => continue,
                };
                match outcome {
                    Ok(est) => {
                        if ever_logged_in {
                            info!(attempts, "session reinstated");
                        } else {
                            info!(attempts, "logged in");
                        }
                        self.reconnect.logged_in(Instant::now());
                        self.portal = est.home.clone();
                        let reconnected = ever_logged_in;
                        self.status.send_modify(|s| {
                            s.portal = est.portal.clone();
                            s.tsih = est.conn.tsih();
                            s.params = Some(est.params.clone());
                            s.chap_algorithm = est.conn.chap_algorithm();
                            s.reconnects += u64::from(reconnected);
                        });
                        self.set_state(SessionState::LoggedIn);
                        current = Some((est.conn, est.io));
                    }
                    Err(e) => {
                        let ctx = self.ctx();
                        match self.reconnect.login_failed(&ctx, &e, Instant::now()) {
                            Next::GiveUp(gave_up) => {
                                if let Waited::Shutdown = self.stop_until_asked(gave_up).await {
                                    break;
                                }
                                info!("retrying the login as asked");
                            }
                            Next::RetryAt(at) => {
                                self.offline_reason = format!("cannot log in: {e}");
                                self.status.send_modify(|s| s.last_error = Some(e));
                                wait = Some(at);
                            }
                        }
                    }
                }
            }
            self.finish(result);
        }
        .instrument(span)
        .await
    }

    /// Stops the automatic logins: fails the parked commands with `why`,
    /// reports it, and waits for `reconnect_now` (`Hurried`) or the end of
    /// the session (`Shutdown`).
    async fn stop_until_asked(&mut self, why: Error) -> Waited<()> {
        self.offline_reason = why.to_string();
        self.fail_parked();
        self.status.send_modify(|s| s.last_error = Some(why));
        self.set_state(SessionState::Failed);
        match self
            .while_disconnected(std::future::pending::<()>(), true)
            .await
        {
            Waited::Shutdown => Waited::Shutdown,
            Waited::Done(()) | Waited::Hurried => Waited::Hurried,
        }
    }

    /// Ends the session with `result`, how its logout went: every logout
    /// asked for gets it, including one still queued, and so does a handle
    /// that asks once the driver is gone (from the status, written first).
    fn finish(&mut self, result: Result<(), Error>) {
        let ctx = self.ctx();
        self.fail_parked();
        self.status.send_modify(|s| {
            s.logged_out = result.is_ok();
            if let Err(e) = &result {
                s.last_error = Some(e.clone());
            }
        });
        self.set_state(SessionState::Closed);
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            reject_request(req, &ctx, &result);
        }
        for w in self.logout_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    fn fail_parked(&mut self) {
        let ctx = self.ctx();
        let reason = self.offline_reason.clone();
        for (command, pending) in self.parked.drain() {
            let failure = TaskFailure::NotConnected(reason.clone());
            let err = Error::Command {
                ctx: ctx.clone(),
                lun: command.lun,
                itt: Itt::RESERVED,
                opcode: command.opcode(),
                failure,
            };
            pending.answer(command, Err(err));
        }
    }

    fn command_error(&self, ctx: &PathContext, command: &Command, failure: TaskFailure) -> Error {
        Error::Command {
            ctx: ctx.clone(),
            lun: command.lun,
            itt: Itt::RESERVED,
            opcode: command.opcode(),
            failure,
        }
    }

    /// A command that cannot be sent now: parked for the next connection
    /// (Replay, within the replacement timeout) or answered at once, unsent.
    fn without_connection(&mut self, command: Command, pending: Pending, why: &str) {
        if !pending.caller_waits() {
            return pending.withdraw();
        }
        let parks = self.config.recovery == Recovery::Replay
            && !self.config.timeouts.replacement.is_zero()
            && !matches!(self.status.borrow().state, SessionState::Failed);
        if parks {
            self.parked.push(command, pending, Instant::now());
        } else {
            let failure = TaskFailure::NotConnected(format!("{why}: {}", self.offline_reason));
            let err = self.command_error(&self.ctx(), &command, failure);
            pending.answer(command, Err(err));
        }
    }

    /// Runs `work` (a backoff, a login, or waiting to be asked again) while
    /// there is no connection, serving requests meanwhile and failing parked
    /// commands whose replacement timeout passes.
    async fn while_disconnected<T>(
        &mut self,
        work: impl Future<Output = T>,
        hurry: bool,
    ) -> Waited<T> {
        tokio::pin!(work);
        loop {
            let replacement = self.config.timeouts.replacement;
            for (command, pending) in self.parked.take_expired(replacement, Instant::now()) {
                let failure = TaskFailure::NotConnected(
                    "no connection within the replacement timeout".into(),
                );
                let err = self.command_error(&self.ctx(), &command, failure);
                pending.answer(command, Err(err));
            }
            let wake = self
                .parked
                .next_expiry(replacement)
                .unwrap_or_else(far_future);
            tokio::select! {
                done = &mut work => return Waited::Done(done),
                req = self.requests.recv() => match req {
                    // Every handle is gone, so no caller waits for anything.
                    None => return Waited::Shutdown,
                    Some(Request::Command { command, reply }) => {
                        self.without_connection(command, Pending::new(reply), "no connection");
                    }
                    Some(Request::Batch { commands, sink }) => {
                        for (tag, command) in commands {
                            let pending = Pending::queued(tag, sink.clone());
                            self.without_connection(command, pending, "no connection");
                        }
                    }
                    Some(Request::Text { reply, .. }) => {
                        let _ = reply.send(Err(Error::ConnectionLost {
                            ctx: self.ctx(),
                            reason: self.offline_reason.clone(),
                        }));
                    }
                    Some(Request::Stats { reply }) => { let _ = reply.send(ConnectionStats::default()); }
                    Some(Request::Logout { reply }) => {
                        self.shutting_down = true;
                        self.logout_waiters.push(reply);
                        return Waited::Shutdown;
                    }
                    // A login under way is not cut short: it is what was asked for.
                    Some(Request::ReconnectNow) if hurry => return Waited::Hurried,
                    Some(Request::ReconnectNow) => {}
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Replays, in order, the commands that waited for this connection and
    /// whose callers still wait.
    fn replay_parked(&mut self, conn: &mut Connection<Pending>) {
        let live = self.parked.take_live();
        if !live.is_empty() {
            info!(
                commands = live.len(),
                "replaying commands on the new connection"
            );
        }
        for (command, pending) in live {
            self.submit(conn, command, pending);
        }
    }
}

/// Answers a request that came after the session ended with `ended`: a
/// logout learns how the session ended, not that it went well.
fn reject_request(req: Request, ctx: &PathContext, ended: &Result<(), Error>) {
    match req {
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        Request::Batch { commands, sink } => {
            for (tag, command) in commands {
                sink.complete(tag, command, Err(Error::Closed { ctx: ctx.clone() }));
            }
        }
        Request::Text { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        Request::Stats { reply } => {
            let _ = reply.send(ConnectionStats::default());
        }
        Request::Logout { reply } => {
            let _ = reply.send(ended.clone());
        }
        Request::ReconnectNow => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle_driver() -> (
        Driver,
        mpsc::Sender<Request>,
        watch::Receiver<SessionStatus>,
    ) {
        let portal = Portal::new("127.0.0.1", 3260);
        let config = Arc::new(SessionConfig::new(
            portal.clone(),
            "iqn.2026-11.io.riscsi.test:t",
            "iqn.2026-11.io.riscsi.test:i",
        ));
        let (tx, rx) = mpsc::channel(4);
        let (status_tx, status_rx) = watch::channel(SessionStatus {
            state: SessionState::LoggedIn,
            since: Instant::now(),
            portal: portal.clone(),
            tsih: 1,
            params: None,
            chap_algorithm: None,
            reconnects: 0,
            last_error: None,
            logged_out: false,
        });
        let (events, _) = broadcast::channel(1);
        let driver = Driver::new(config, rx, status_tx, events, portal);
        (driver, tx, status_rx)
    }

    /// A logout still queued when the session ends on an error (the
    /// target went away during the first logout) learns that error, and
    /// the status says the same for a handle that asks later.
    #[tokio::test]
    async fn a_queued_logout_learns_how_the_session_ended() {
        let (mut driver, tx, status) = idle_driver();
        let (first, first_rx) = oneshot::channel();
        driver.logout_waiters.push(first);
        let (queued, queued_rx) = oneshot::channel();
        tx.send(Request::Logout { reply: queued }).await.unwrap();
        let gone = Error::ConnectionLost {
            ctx: driver.ctx(),
            reason: "target closed the connection".into(),
        };
        driver.finish(Err(gone.clone()));
        assert_eq!(first_rx.await.unwrap(), Err(gone.clone()));
        assert_eq!(queued_rx.await.unwrap(), Err(gone.clone()));
        let status = status.borrow().clone();
        assert_eq!(status.state, SessionState::Closed);
        assert!(!status.logged_out);
        assert_eq!(status.last_error, Some(gone));
        // After a clean logout, a late one is told so.
        let (mut driver, tx, _status) = idle_driver();
        let (late, late_rx) = oneshot::channel();
        tx.send(Request::Logout { reply: late }).await.unwrap();
        driver.finish(Ok(()));
        assert_eq!(late_rx.await.unwrap(), Ok(()));
    }
}
