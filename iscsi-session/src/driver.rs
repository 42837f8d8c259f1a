//! The tokio driver: owns the socket and the timers of one session, runs the
//! sans-IO [`Connection`], reconnects with session reinstatement when the
//! connection fails and replays the commands that had not completed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use iscsi_proto::pdu::Itt;
use iscsi_proto::text::KeyValue;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::chap::ChapAlgorithm;
use crate::command::{Command, CommandOutcome};
use crate::config::SessionConfig;
use crate::connection::{Connection, ConnectionStats, SubmitError};
use crate::error::{CommandFailure, Error, PathContext};
use crate::event::{Event, TargetEvent};
use crate::portal::Portal;
use crate::transport::Transport;
use iscsi_proto::text::OperationalParams;

/// Requests from [`crate::Session`] handles to the driver task.
#[derive(Debug)]
pub(crate) enum Request {
    Command {
        command: Command,
        reply: oneshot::Sender<Result<CommandOutcome, Error>>,
    },
    Text {
        pairs: Vec<(String, String)>,
        reply: oneshot::Sender<Result<Vec<KeyValue>, Error>>,
    },
    Stats {
        reply: oneshot::Sender<ConnectionStats>,
    },
    Logout {
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    LoggedIn,
    /// The connection failed; reconnecting (commands wait up to the
    /// replacement timeout).
    Reconnecting {
        attempts: u32,
    },
    Closed,
}

/// A snapshot for status output; watch it with [`crate::Session::watch_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: SessionState,
    /// The portal the current connection goes to (after redirects).
    pub portal: Portal,
    pub tsih: u16,
    pub params: Option<OperationalParams>,
    /// Successful logins after the first.
    pub reconnects: u64,
    pub last_error: Option<String>,
}

/// Bytes queued for the socket past which we stop reading the target.
const MAX_QUEUED_WRITE: usize = 64 * 1024 * 1024;

/// A command with its caller, kept until it completes so it can be replayed.
#[derive(Debug)]
struct PendingCommand {
    command: Command,
    reply: oneshot::Sender<Result<CommandOutcome, Error>>,
    /// When it was first left without a connection. The replacement timeout
    /// counts from there across every reconnect, so a command that keeps
    /// losing its connection fails in the end instead of being replayed
    /// forever.
    orphaned_at: Option<Instant>,
}

impl PendingCommand {
    /// Marks it left without a connection, keeping the first such instant.
    fn orphaned(mut self) -> Self {
        self.orphaned_at.get_or_insert_with(Instant::now);
        self
    }
}

#[derive(Debug)]
enum Reply {
    Command(PendingCommand),
    Text(oneshot::Sender<Result<Vec<KeyValue>, Error>>),
}

/// How a login attempt ended.
enum LoginEnd {
    LoggedIn { params: OperationalParams },
    Redirected { portal: Portal, permanent: bool },
    Failed(Error),
}

/// A logged-in connection.
pub(crate) struct Established {
    pub conn: Connection,
    pub io: Transport,
    pub params: OperationalParams,
    /// Where the connection goes (after redirects).
    pub portal: Portal,
    /// Where the next reconnect should go: the connected portal after a
    /// permanent redirect, the one asked for otherwise.
    pub home: Portal,
}

/// Connects and logs in, following redirects and falling back to CHAP MD5 when
/// the target refuses our algorithm list.
pub(crate) async fn establish(
    config: &Arc<SessionConfig>,
    portal: &Portal,
) -> Result<Established, Error> {
    let mut cfg = config.clone();
    let mut target = portal.clone();
    let mut home = portal.clone();
    let mut redirects = 0u8;
    loop {
        let ctx = PathContext {
            portal: target.clone(),
            target: cfg.target_name.clone().unwrap_or_default(),
        };
        let mut io = Transport::connect(&target, cfg.timeouts.connect)
            .await
            .map_err(|reason| Error::Connect {
                ctx: ctx.clone(),
                reason,
            })?;
        let mut this = (*cfg).clone();
        this.portal = target.clone();
        let mut conn = Connection::new(Arc::new(this), 0, std::time::Instant::now());
        match run_login(&mut conn, &mut io).await {
            LoginEnd::LoggedIn { params } => {
                return Ok(Established {
                    conn,
                    io,
                    params,
                    portal: target,
                    home,
                });
            }
            LoginEnd::Redirected { portal, permanent } => {
                redirects += 1;
                if redirects > cfg.max_redirects {
                    return Err(Error::TooManyRedirects { ctx, last: portal });
                }
                info!(from = %target, to = %portal, permanent, "following login redirect");
                if permanent {
                    home = portal.clone();
                }
                target = portal;
            }
            // MD5 alone, once, and only when the user allowed MD5: never a
            // downgrade the configuration did not ask for.
            LoginEnd::Failed(Error::ChapAlgorithmRejected { .. })
                if cfg.chap.as_ref().is_some_and(|c| {
                    c.algorithms.contains(&ChapAlgorithm::Md5)
                        && c.algorithms != [ChapAlgorithm::Md5]
                }) =>
            {
                info!("the target refused our CHAP algorithm list; retrying with MD5 alone");
                let mut md5 = (*cfg).clone();
                if let Some(chap) = md5.chap.as_mut() {
                    chap.algorithms = vec![ChapAlgorithm::Md5];
                }
                cfg = Arc::new(md5);
            }
            LoginEnd::Failed(e) => return Err(e),
        }
    }
}

/// Pumps a connection until its login ends.
async fn run_login(conn: &mut Connection, io: &mut Transport) -> LoginEnd {
    let mut redirect = None;
    loop {
        io.queue_from(conn);
        if let Err(e) = io.try_flush() {
            conn.handle_disconnect(e.to_string());
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::LoggedIn { params, .. } => return LoginEnd::LoggedIn { params },
                Event::Redirected { portal, permanent } => redirect = Some((portal, permanent)),
                Event::Closed { error: Some(e), .. } => return LoginEnd::Failed(e),
                Event::Closed { error: None, .. } => {
                    if let Some((portal, permanent)) = redirect.take() {
                        return LoginEnd::Redirected { portal, permanent };
                    }
                    let ctx = conn.context().clone();
                    return LoginEnd::Failed(Error::Closed { ctx });
                }
                other => debug!(?other, "event during login"),
            }
        }
        let deadline = conn.poll_timeout().map(Instant::from_std);
        tokio::select! {
            r = io.readable() => match r {
                Ok(()) => read_once(conn, io),
                Err(e) => conn.handle_disconnect(e.to_string()),
            },
            r = io.writable(), if io.wants_write() => {
                if let Err(e) = r { conn.handle_disconnect(e.to_string()); }
            }
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                conn.handle_timeout(std::time::Instant::now());
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn read_once(conn: &mut Connection, io: &mut Transport) {
    match io.try_read(conn) {
        Ok(Some(0)) => conn.handle_disconnect("target closed the connection"),
        Ok(Some(_)) => conn.handle_received(std::time::Instant::now()),
        Ok(None) => {}
        Err(e) => conn.handle_disconnect(e.to_string()),
    }
}

/// The background task of one session.
pub(crate) struct Driver {
    config: Arc<SessionConfig>,
    requests: mpsc::Receiver<Request>,
    status: watch::Sender<SessionStatus>,
    /// Commands waiting for a connection, in order.
    parked: VecDeque<PendingCommand>,
    portal: Portal,
    logout_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    shutting_down: bool,
    /// Wait requested by the target before reconnecting.
    time2wait: Duration,
    /// Callers of the tasks on the current connection.
    replies: HashMap<Itt, Reply>,
}

/// Why [`Driver::serve`] returned.
enum ServeEnd {
    LoggedOut,
    Lost(Error),
}

impl Driver {
    pub fn new(
        config: Arc<SessionConfig>,
        requests: mpsc::Receiver<Request>,
        status: watch::Sender<SessionStatus>,
        portal: Portal,
    ) -> Self {
        Driver {
            config,
            requests,
            status,
            parked: VecDeque::new(),
            portal,
            logout_waiters: Vec::new(),
            shutting_down: false,
            time2wait: Duration::ZERO,
            replies: HashMap::new(),
        }
    }

    fn ctx(&self) -> PathContext {
        PathContext {
            portal: self.portal.clone(),
            target: self.config.target_name.clone().unwrap_or_default(),
        }
    }

    /// Runs until logout or until every handle is dropped.
    pub async fn run(mut self, conn: Connection, io: Transport) {
        let span = info_span!("session", portal = %self.config.portal, target = %self.ctx().target);
        async move {
            let mut current = Some((conn, io));
            let mut attempts = 0u32;
            loop {
                if let Some((mut conn, mut io)) = current.take() {
                    self.resubmit_parked(&mut conn);
                    match self.serve(&mut conn, &mut io).await {
                        ServeEnd::LoggedOut => break,
                        ServeEnd::Lost(e) => {
                            warn!(error = %e, "connection lost");
                            self.status.send_modify(|s| {
                                s.state = SessionState::Reconnecting { attempts: 0 };
                                s.last_error = Some(e.to_string());
                            });
                        }
                    }
                }
                if self.shutting_down {
                    break;
                }
                attempts += 1;
                self.status
                    .send_modify(|s| s.state = SessionState::Reconnecting { attempts });
                let backoff =
                    Duration::from_millis(100u64 << attempts.min(6)).min(Duration::from_secs(5));
                let pause = sleep_until(Instant::now() + backoff.max(self.time2wait));
                if self.while_disconnected(pause).await.is_none() {
                    break;
                }
                let (config, portal) = (self.config.clone(), self.portal.clone());
                let login = async move { establish(&config, &portal).await };
                let Some(outcome) = self.while_disconnected(login).await else {
                    break;
                };
                match outcome {
                    Ok(Established {
                        conn,
                        io,
                        params,
                        portal,
                        home,
                    }) => {
                        info!(attempts, "session reinstated");
                        attempts = 0;
                        self.time2wait = Duration::ZERO;
                        self.portal = home;
                        self.status.send_modify(|s| {
                            s.state = SessionState::LoggedIn;
                            s.portal = portal;
                            s.tsih = conn.tsih();
                            s.params = Some(params);
                            s.reconnects += 1;
                        });
                        current = Some((conn, io));
                    }
                    Err(e) => {
                        debug!(error = %e, attempts, "reconnect failed");
                        self.status
                            .send_modify(|s| s.last_error = Some(e.to_string()));
                    }
                }
            }
            self.finish();
        }
        .instrument(span)
        .await
    }

    fn finish(&mut self) {
        let ctx = self.ctx();
        for p in self.parked.drain(..) {
            let _ = p.reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            reject_request(req, &ctx);
        }
        for w in self.logout_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        self.status.send_modify(|s| s.state = SessionState::Closed);
    }

    /// Runs `work` (a backoff, a login) while there is no connection: takes
    /// requests meanwhile (parking commands, or failing them at once when the
    /// replacement timeout is zero) and fails parked commands as their
    /// replacement timeout passes. `None` when the session should end instead
    /// (logout asked, or every handle dropped).
    async fn while_disconnected<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            self.expire_parked();
            let wake = self.next_parked_expiry().unwrap_or_else(far_future);
            tokio::select! {
                done = &mut work => return Some(done),
                req = self.requests.recv() => match req {
                    // Every handle is gone, so no caller waits for anything.
                    None => return None,
                    Some(Request::Command { command, reply }) => {
                        if self.config.timeouts.replacement.is_zero() {
                            let _ = reply.send(Err(self.orphan_error(&command, "no connection")));
                        } else {
                            self.parked.push_back(PendingCommand { command, reply, orphaned_at: None }.orphaned());
                        }
                    }
                    Some(Request::Text { reply, .. }) => {
                        let _ = reply.send(Err(Error::ConnectionLost { ctx: self.ctx(), reason: "reconnecting".into() }));
                    }
                    Some(Request::Stats { reply }) => { let _ = reply.send(ConnectionStats::default()); }
                    Some(Request::Logout { reply }) => {
                        self.shutting_down = true;
                        self.logout_waiters.push(reply);
                        return None;
                    }
                },
                _ = sleep_until(wake) => {}
            }
        }
    }

    fn orphan_error(&self, command: &Command, reason: &str) -> Error {
        Error::Command {
            ctx: self.ctx(),
            lun: command.lun,
            itt: Itt::RESERVED,
            opcode: command.opcode(),
            failure: CommandFailure::ConnectionLost(reason.to_owned()),
        }
    }

    fn next_parked_expiry(&self) -> Option<Instant> {
        let replacement = self.config.timeouts.replacement;
        self.parked
            .iter()
            .filter_map(|p| p.orphaned_at.map(|t| t + replacement))
            .min()
    }

    /// Fails parked commands that waited longer than the replacement timeout.
    fn expire_parked(&mut self) {
        let replacement = self.config.timeouts.replacement;
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .parked
            .drain(..)
            .partition(|p| p.orphaned_at.is_some_and(|t| now >= t + replacement));
        self.parked = kept.into();
        for p in expired {
            let err = self.orphan_error(&p.command, "no connection within the replacement timeout");
            let _ = p.reply.send(Err(err));
        }
    }

    /// Replays, in order, the commands that waited for this connection.
    fn resubmit_parked(&mut self, conn: &mut Connection) {
        let now = std::time::Instant::now();
        let parked: Vec<_> = self.parked.drain(..).collect();
        if !parked.is_empty() {
            info!(
                commands = parked.len(),
                "replaying commands on the new connection"
            );
        }
        for p in parked {
            self.submit(conn, p, now);
        }
    }

    fn submit(&mut self, conn: &mut Connection, pending: PendingCommand, now: std::time::Instant) {
        match conn.submit(pending.command.clone(), now) {
            Ok(itt) => {
                self.replies.insert(itt, Reply::Command(pending));
            }
            Err(SubmitError::NotReady) => {
                self.parked.push_back(pending.orphaned());
            }
            Err(e) => {
                let err = Error::Command {
                    ctx: conn.context().clone(),
                    lun: pending.command.lun,
                    itt: Itt::RESERVED,
                    opcode: pending.command.opcode(),
                    failure: CommandFailure::Protocol(e.to_string()),
                };
                let _ = pending.reply.send(Err(err));
            }
        }
    }

    /// Runs one logged-in connection until it closes.
    async fn serve(&mut self, conn: &mut Connection, io: &mut Transport) -> ServeEnd {
        let max_outstanding = self.config.queue_depth as usize * 2;
        // One timer, moved when the deadline moves: re-arming it per loop
        // turn would cost a timer-wheel insert per PDU.
        let timer = sleep_until(far_future());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            io.queue_from(conn);
            if let Err(e) = io.try_flush() {
                conn.handle_disconnect(e.to_string());
            }
            while let Some(event) = conn.poll_event() {
                if let Some(end) = self.on_event(event, conn) {
                    return end;
                }
            }
            let deadline = conn.poll_timeout().map(Instant::from_std);
            if deadline != armed {
                timer.as_mut().reset(deadline.unwrap_or_else(far_future));
                armed = deadline;
            }
            let can_take = conn.accepts_commands() && conn.outstanding_commands() < max_outstanding;
            // A target that stops reading must not make us queue without end:
            // past the cap we stop reading it too, so what it sends (pings to
            // echo, R2Ts to answer) waits in its own socket buffer.
            let may_read = io.queued_bytes() < MAX_QUEUED_WRITE;
            tokio::select! {
                // Timers first, reads last: a target that never stops sending
                // must not keep deadlines from firing or commands from going
                // out (tokio clears read readiness only on WouldBlock).
                biased;
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    conn.handle_timeout(std::time::Instant::now());
                }
                r = io.writable(), if io.wants_write() => {
                    if let Err(e) = r { conn.handle_disconnect(e.to_string()); }
                }
                req = self.requests.recv(), if can_take => {
                    let now = std::time::Instant::now();
                    match req {
                        None => {
                            self.shutting_down = true;
                            conn.start_logout(now);
                        }
                        Some(req) => {
                            self.on_request(req, conn, now);
                            // Take what else is queued: one write for a burst.
                            for _ in 0..64 {
                                if conn.outstanding_commands() >= max_outstanding {
                                    break;
                                }
                                match self.requests.try_recv() {
                                    Ok(req) => self.on_request(req, conn, now),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
                r = io.readable(), if may_read => match r {
                    Ok(()) => read_once(conn, io),
                    Err(e) => conn.handle_disconnect(e.to_string()),
                },
            }
        }
    }

    fn on_request(&mut self, req: Request, conn: &mut Connection, now: std::time::Instant) {
        match req {
            Request::Command { command, reply } => {
                self.submit(
                    conn,
                    PendingCommand {
                        command,
                        reply,
                        orphaned_at: None,
                    },
                    now,
                );
            }
            Request::Text { pairs, reply } => {
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match conn.submit_text(&refs, now) {
                    Ok(itt) => {
                        self.replies.insert(itt, Reply::Text(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::BadResponse {
                            ctx: conn.context().clone(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Request::Stats { reply } => {
                let _ = reply.send(conn.stats().clone());
            }
            Request::Logout { reply } => {
                self.shutting_down = true;
                self.logout_waiters.push(reply);
                conn.start_logout(now);
            }
        }
    }

    fn on_event(&mut self, event: Event, conn: &mut Connection) -> Option<ServeEnd> {
        match event {
            Event::CommandComplete { task, result } => {
                if let Some(Reply::Command(p)) = self.replies.remove(&task) {
                    let result = result.map_err(|failure| Error::Command {
                        ctx: conn.context().clone(),
                        lun: p.command.lun,
                        itt: task,
                        opcode: p.command.opcode(),
                        failure,
                    });
                    let _ = p.reply.send(result);
                }
            }
            Event::TextComplete { task, result } => {
                if let Some(Reply::Text(reply)) = self.replies.remove(&task) {
                    let result = result.map_err(|failure| Error::BadResponse {
                        ctx: conn.context().clone(),
                        reason: failure.to_string(),
                    });
                    let _ = reply.send(result);
                }
            }
            Event::Target(TargetEvent::DroppingConnection { time2wait }) => {
                self.time2wait = time2wait
            }
            Event::Target(TargetEvent::LogoutRequested { within }) => {
                info!(?within, "target asked for logout; will reconnect");
            }
            Event::Target(TargetEvent::ScsiEvent { lun, sense }) => {
                info!(lun = %lun, sense_len = sense.len(), "SCSI asynchronous event");
            }
            Event::LoggedIn { .. } | Event::Redirected { .. } => {}
            Event::Closed { error, unfinished } => {
                // Unless we are the ones closing, a closed connection (failure or
                // a logout the target asked for) is followed by a reconnect.
                let reconnect = !self.shutting_down;
                let park = reconnect && !self.config.timeouts.replacement.is_zero();
                for (itt, _) in unfinished {
                    let Some(Reply::Command(p)) = self.replies.remove(&itt) else {
                        continue;
                    };
                    if park {
                        self.parked.push_back(p.orphaned());
                        continue;
                    }
                    let failure = match &error {
                        Some(e) => CommandFailure::ConnectionLost(e.to_string()),
                        None => CommandFailure::Cancelled,
                    };
                    let err = Error::Command {
                        ctx: conn.context().clone(),
                        lun: p.command.lun,
                        itt,
                        opcode: p.command.opcode(),
                        failure,
                    };
                    let _ = p.reply.send(Err(err));
                }
                for (_, reply) in self.replies.drain() {
                    if let Reply::Text(r) = reply {
                        let _ = r.send(Err(Error::Closed {
                            ctx: conn.context().clone(),
                        }));
                    }
                }
                if !reconnect {
                    if let Some(e) = error {
                        debug!(error = %e, "connection ended while shutting down");
                    }
                    return Some(ServeEnd::LoggedOut);
                }
                let error = error.unwrap_or_else(|| Error::ConnectionLost {
                    ctx: conn.context().clone(),
                    reason: "logged out at the target's request".into(),
                });
                return Some(ServeEnd::Lost(error));
            }
        }
        None
    }
}

fn reject_request(req: Request, ctx: &PathContext) {
    match req {
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        Request::Text { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        Request::Stats { reply } => {
            let _ = reply.send(ConnectionStats::default());
        }
        Request::Logout { reply } => {
            let _ = reply.send(Ok(()));
        }
    }
}
