//! One logged-in connection: commands in, PDUs out, events back to callers.

use tokio::time::sleep_until;
use tracing::{debug, info};

use super::request::{Pending, Request};
use super::{Driver, far_future, now, read_once};
use crate::core::command::Command;
use crate::core::config::Recovery;
use crate::core::connection::{Connection, ConnectionEvent, NotAccepted, TargetEvent, Unfinished};
use crate::core::error::{Error, TaskFailure};
use crate::runtime::transport::Transport;

/// Bytes queued for the socket past which we stop reading the target.
const MAX_QUEUED_WRITE: usize = 64 * 1024 * 1024;

/// Requests taken per wake-up besides the first: one write for a burst.
const REQUEST_BURST: usize = 64;

/// Why [`Driver::serve`] returned.
pub(crate) enum ServeEnd {
    /// We logged out (or were closing): the session ends, with this result.
    LoggedOut(Result<(), Error>),
    /// The connection failed or the target logged us out: reconnect.
    Lost {
        /// Why.
        error: Error,
        /// Commands it left unfinished (parked for replay or handed back).
        unfinished: usize,
    },
}

impl Driver {
    /// Runs one logged-in connection until it closes.
    pub(super) async fn serve(
        &mut self,
        conn: &mut Connection<Pending>,
        io: &mut Transport,
    ) -> ServeEnd {
        let max_outstanding = self.config.queue_depth as usize * 2;
        // One timer, moved when the deadline moves: re-arming it per loop
        // turn would cost a timer-wheel insert per PDU.
        let timer = sleep_until(far_future());
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            io.queue_from(conn);
            if let Err(e) = io.try_flush() {
                conn.handle_disconnect(e.to_string());
            }
            while let Some(event) = conn.poll_event() {
                if let Some(end) = self.on_event(event, conn) {
                    if matches!(end, ServeEnd::Lost { .. }) {
                        // Unsent bytes must not reach the target later: a
                        // command handed back now may be re-issued elsewhere.
                        io.abort();
                    }
                    return end;
                }
            }
            let deadline = conn.poll_timeout().map(tokio::time::Instant::from_std);
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
                // out (read readiness stays set while reads fill the buffer).
                biased;
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    conn.handle_timeout(now());
                }
                r = io.writable(), if io.wants_write() => {
                    if let Err(e) = r { conn.handle_disconnect(e.to_string()); }
                }
                req = self.requests.recv(), if can_take => match req {
                    None => {
                        // Every handle is gone: nobody can ask for anything again.
                        self.shutting_down = true;
                        conn.start_logout(now());
                    }
                    Some(req) => {
                        self.on_request(req, conn);
                        for _ in 0..REQUEST_BURST {
                            if conn.outstanding_commands() >= max_outstanding {
                                break;
                            }
                            match self.requests.try_recv() {
                                Ok(req) => self.on_request(req, conn),
                                Err(_) => break,
                            }
                        }
                    }
                },
                r = io.readable(), if may_read => match r {
                    Ok(()) => read_once(conn, io),
                    Err(e) => conn.handle_disconnect(e.to_string()),
                },
            }
        }
    }

    /// Hands a command to the connection, unless its caller stopped waiting.
    pub(super) fn submit(
        &mut self,
        conn: &mut Connection<Pending>,
        command: Command,
        pending: Pending,
    ) {
        if !pending.caller_waits() {
            return pending.withdraw();
        }
        if let Err(NotAccepted {
            error,
            command,
            token,
        }) = conn.submit(command, pending, now())
        {
            match error {
                crate::core::connection::SubmitError::NotReady => {
                    self.without_connection(command, token, "the connection is closing")
                }
                other => {
                    let failure = TaskFailure::NotConnected(other.to_string());
                    let err = self.command_error(conn.context(), &command, failure);
                    token.answer(command, Err(err));
                }
            }
        }
    }

    fn on_request(&mut self, req: Request, conn: &mut Connection<Pending>) {
        match req {
            Request::Command { command, reply } => self.submit(conn, command, Pending::new(reply)),
            Request::Batch { commands, sink } => {
                for (tag, command) in commands {
                    self.submit(conn, command, Pending::queued(tag, sink.clone()));
                }
            }
            Request::Text { pairs, reply } => {
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match conn.submit_text(&refs, now()) {
                    Ok(itt) => self.text_reply = Some((itt, reply)),
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
                conn.start_logout(now());
            }
            // Already connected: nothing to hurry.
            Request::ReconnectNow => {}
        }
    }

    fn on_event(
        &mut self,
        event: ConnectionEvent<Pending>,
        conn: &mut Connection<Pending>,
    ) -> Option<ServeEnd> {
        match event {
            ConnectionEvent::CommandComplete {
                itt,
                command,
                token,
                result,
            } => {
                let result = result.map_err(|failure| Error::Command {
                    ctx: conn.context().clone(),
                    lun: command.lun,
                    itt,
                    opcode: command.opcode(),
                    failure,
                });
                token.answer(command, result);
            }
            ConnectionEvent::TextComplete { itt, result } => {
                if let Some((_, reply)) = self.text_reply.take_if(|(t, _)| *t == itt) {
                    let result = result.map_err(|failure| Error::BadResponse {
                        ctx: conn.context().clone(),
                        reason: failure.to_string(),
                    });
                    let _ = reply.send(result);
                }
            }
            ConnectionEvent::Target(event) => self.on_target_event(event),
            ConnectionEvent::LoggedIn { .. } | ConnectionEvent::Redirected { .. } => {}
            ConnectionEvent::Closed { error, unfinished } => {
                return Some(self.on_closed(error, unfinished, conn));
            }
        }
        None
    }

    fn on_target_event(&mut self, event: TargetEvent) {
        match &event {
            TargetEvent::DroppingConnection { time2wait } => {
                info!(?time2wait, "target is dropping the connection");
                self.reconnect.target_asks_to_wait(*time2wait);
            }
            TargetEvent::LogoutRequested { within } => {
                info!(?within, "target asked for logout; will reconnect");
            }
            TargetEvent::LunChanged { lun, change } => {
                info!(lun = %lun, ?change, "logical unit changed");
            }
            TargetEvent::ScsiEvent { lun, sense } => {
                debug!(lun = %lun, sense_len = sense.len(), "SCSI asynchronous event");
            }
        }
        // Nobody listening is fine: the events are advice.
        let _ = self.events.send(event);
    }

    fn on_closed(
        &mut self,
        error: Option<Error>,
        unfinished: Vec<Unfinished<Pending>>,
        conn: &Connection<Pending>,
    ) -> ServeEnd {
        let ctx = conn.context().clone();
        // Unless we are the ones closing, a closed connection (failure or a
        // logout the target asked for) is followed by a reconnect.
        let reconnect = !self.shutting_down;
        let reason = match &error {
            Some(e) => e.to_string(),
            None => "logged out at the target's request".to_owned(),
        };
        let replay = reconnect
            && self.config.recovery == Recovery::Replay
            && !self.config.timeouts.replacement.is_zero();
        let parked_at = tokio::time::Instant::now();
        let unfinished_count = unfinished.len();
        for u in unfinished {
            if replay {
                if u.token.caller_waits() {
                    self.parked.push(u.command, u.token, parked_at);
                } else {
                    u.token.withdraw();
                }
                continue;
            }
            let failure = if reconnect {
                TaskFailure::ConnectionLost {
                    reason: reason.clone(),
                    sent: u.sent,
                }
            } else {
                TaskFailure::Cancelled { sent: u.sent }
            };
            let err = Error::Command {
                ctx: ctx.clone(),
                lun: u.command.lun,
                itt: u.itt,
                opcode: u.command.opcode(),
                failure,
            };
            u.token.answer(u.command, Err(err));
        }
        if let Some((_, reply)) = self.text_reply.take() {
            let _ = reply.send(Err(Error::Closed { ctx: ctx.clone() }));
        }
        if !reconnect {
            return ServeEnd::LoggedOut(match error {
                None => Ok(()),
                Some(e) => Err(e),
            });
        }
        ServeEnd::Lost {
            error: error.unwrap_or(Error::ConnectionLost { ctx, reason }),
            unfinished: unfinished_count,
        }
    }
}
