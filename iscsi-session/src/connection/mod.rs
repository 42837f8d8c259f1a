//! The sans-IO connection: login, full feature phase and logout of one TCP
//! connection, driven by bytes and the current time.
//!
//! The caller (a tokio driver, or a test feeding PDUs) reads socket bytes into
//! [`Connection::receive_buffer`] and calls [`Connection::handle_received`],
//! writes what [`Connection::poll_transmit`] yields, delivers what
//! [`Connection::poll_event`] yields and calls [`Connection::handle_timeout`] at
//! [`Connection::poll_timeout`]. Nothing here blocks, reads a clock or touches a
//! socket.

mod full_feature;
mod scsi_task;
mod sequencing;
mod task;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use iscsi_proto::codec::{Digests, EncodedPdu, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    Itt, LogoutReason, LogoutRequest, Lun, NopOut, Pdu, TaskMgmtRequest, TextRequest, TmfFunction,
    Ttt,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{debug, warn};

use crate::command::Command;
use crate::config::SessionConfig;
use crate::error::{CommandFailure, Error, PathContext};
use crate::event::Event;
use crate::login::{Login, LoginStep};
use iscsi_proto::text::{Digest, OperationalParams};

use scsi_task::ScsiTask;
use sequencing::Sequencing;
use task::{Task, TaskKind, TextPurpose};

/// Size of a fresh receive buffer. Data-In payloads are handed out as slices
/// of it, so a buffer is replaced (not reused) once full; each replacement
/// copies the partial PDU at its end, so large buffers keep that copy rare.
const RECEIVE_ALLOCATION: usize = 4 * 1024 * 1024;

/// Largest text response (SendTargets) we assemble; a target with more is hostile.
pub const MAX_TEXT_RESPONSE: usize = 1024 * 1024;

/// Where the connection is in its life.
#[derive(Debug)]
enum Phase {
    Login(Box<Login>),
    FullFeature,
    /// The target asked for a logout: finish what is in flight, then log out.
    Draining {
        deadline: Instant,
    },
    LoggingOut,
    Closed,
}

/// Public view of the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    LoggingIn,
    FullFeature,
    LoggingOut,
    Closed,
}

/// Counters for status output and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub pdus_received: u64,
    pub pdus_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub commands_completed: u64,
    pub commands_failed: u64,
    /// Most SCSI commands in flight at once.
    pub max_in_flight: u64,
    pub nop_pings: u64,
    pub target_pings_answered: u64,
    /// Task management requests sent (aborts, LU resets).
    pub task_management: u64,
}

/// Why a command was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("connection is not in full feature phase")]
    NotReady,
    #[error("a text exchange is already under way")]
    TextBusy,
    #[error("write of {0} bytes does not fit an iSCSI command")]
    TooLarge(usize),
}

/// One iSCSI connection (and, with MaxConnections=1, its session).
#[derive(Debug)]
pub struct Connection {
    ctx: PathContext,
    config: Arc<SessionConfig>,
    phase: Phase,
    rx: BytesMut,
    decoder: PduDecoder,
    encoder: PduEncoder,
    outgoing: VecDeque<Pdu>,
    events: VecDeque<Event>,
    params: OperationalParams,
    tsih: u16,
    seq: Sequencing,
    tasks: HashMap<Itt, Task>,
    /// SCSI commands waiting for the CmdSN window or the queue depth.
    waiting: VecDeque<Itt>,
    /// SCSI commands sent and not yet complete.
    in_flight: usize,
    deadlines: BTreeSet<(Instant, Itt)>,
    next_itt: u32,
    next_seq: u64,
    phase_deadline: Option<Instant>,
    last_received: Instant,
    /// The latest time a caller gave us, for work done outside a timer.
    now: Instant,
    /// Our outstanding NOP-Out and when the connection is declared dead.
    ping: Option<(Itt, Instant)>,
    stats: ConnectionStats,
}

impl Connection {
    /// Starts a login. `tsih` is 0 for a new session or a reinstatement, the
    /// session's TSIH to add a connection to it. The first Login Request is
    /// queued at once.
    pub fn new(config: Arc<SessionConfig>, tsih: u16, now: Instant) -> Self {
        Connection::with_rng(config, tsih, now, StdRng::from_entropy())
    }

    /// As [`Connection::new`] with a chosen random source (tests; CHAP
    /// challenges come from it).
    pub fn with_rng(config: Arc<SessionConfig>, tsih: u16, now: Instant, rng: StdRng) -> Self {
        let ctx = PathContext {
            portal: config.portal.clone(),
            target: config.target_name.clone().unwrap_or_default(),
        };
        let initial_cmd_sn = 1;
        let mut login = Login::new(config.clone(), ctx.clone(), tsih, initial_cmd_sn, rng);
        let first = login.start();
        let mut conn = Connection {
            ctx,
            phase: Phase::Login(Box::new(login)),
            rx: BytesMut::new(),
            decoder: PduDecoder::default(),
            encoder: PduEncoder::default(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            params: OperationalParams::default(),
            tsih,
            seq: Sequencing::new(initial_cmd_sn, initial_cmd_sn, initial_cmd_sn, 0),
            tasks: HashMap::new(),
            waiting: VecDeque::new(),
            in_flight: 0,
            deadlines: BTreeSet::new(),
            next_itt: 1,
            next_seq: 0,
            phase_deadline: Some(later(now, config.timeouts.login)),
            last_received: now,
            now,
            ping: None,
            stats: ConnectionStats::default(),
            config,
        };
        match first {
            Ok(req) => conn.outgoing.push_back(Pdu::LoginRequest(req)),
            Err(e) => conn.fail(e),
        }
        conn
    }

    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Login(_) => ConnectionState::LoggingIn,
            Phase::FullFeature | Phase::Draining { .. } => ConnectionState::FullFeature,
            Phase::LoggingOut => ConnectionState::LoggingOut,
            Phase::Closed => ConnectionState::Closed,
        }
    }

    pub fn context(&self) -> &PathContext {
        &self.ctx
    }

    /// The negotiated parameters (RFC defaults until login completes).
    pub fn params(&self) -> &OperationalParams {
        &self.params
    }

    /// The TSIH the target assigned (0 before login completes).
    pub fn tsih(&self) -> u16 {
        self.tsih
    }

    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// SCSI commands accepted and not yet complete (sent or waiting).
    pub fn outstanding_commands(&self) -> usize {
        self.in_flight + self.waiting.len()
    }

    /// Whether `submit` would accept a command now.
    pub fn accepts_commands(&self) -> bool {
        matches!(self.phase, Phase::FullFeature)
    }

    /// The buffer the driver reads socket bytes into, with room reserved for
    /// at least one whole PDU of the largest size the peer may send.
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        let frame = self.decoder.max_frame_len();
        if self.rx.capacity() - self.rx.len() < frame {
            // A fresh buffer, carrying over only the partial PDU at the end of
            // the old one. `BytesMut::reserve` would instead grow the old
            // allocation in place once its slices are gone, and realloc then
            // copies all of it, consumed bytes included.
            let mut fresh = BytesMut::with_capacity(RECEIVE_ALLOCATION.max(2 * frame));
            fresh.extend_from_slice(&self.rx);
            self.rx = fresh;
        }
        &mut self.rx
    }

    /// Decodes and handles every complete PDU in the receive buffer.
    pub fn handle_received(&mut self, now: Instant) {
        self.now = now;
        while !matches!(self.phase, Phase::Closed) {
            let before = self.rx.len();
            match self.decoder.decode(&mut self.rx) {
                Ok(Some(pdu)) => {
                    self.stats.pdus_received += 1;
                    self.stats.bytes_received += (before - self.rx.len()) as u64;
                    self.last_received = now;
                    self.handle_pdu(pdu, now);
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = format!("undecodable PDU: {e}");
                    self.fail(Error::Protocol {
                        ctx: self.ctx.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// The peer closed the socket or it failed.
    pub fn handle_disconnect(&mut self, reason: impl Into<String>) {
        if !matches!(self.phase, Phase::Closed) {
            let reason = reason.into();
            let err = match self.phase {
                Phase::Login(_) => Error::Connect {
                    ctx: self.ctx.clone(),
                    reason,
                },
                _ => Error::ConnectionLost {
                    ctx: self.ctx.clone(),
                    reason,
                },
            };
            self.fail(err);
        }
    }

    /// The next PDU to write, encoded; the payload is shared, not copied.
    pub fn poll_transmit(&mut self) -> Option<EncodedPdu> {
        while let Some(pdu) = self.outgoing.pop_front() {
            match self.encoder.encode_vectored(&pdu) {
                Ok(encoded) => {
                    self.stats.pdus_sent += 1;
                    self.stats.bytes_sent += encoded.len() as u64;
                    return Some(encoded);
                }
                Err(e) => {
                    // We built a PDU the negotiated limits do not allow: a bug on
                    // our side, but the session must fail cleanly, not panic.
                    let reason = format!("cannot encode our own {}: {e}", pdu.opcode());
                    self.fail(Error::Protocol {
                        ctx: self.ctx.clone(),
                        reason,
                    });
                }
            }
        }
        None
    }

    pub fn has_transmit(&self) -> bool {
        !self.outgoing.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        let mut earliest = self.phase_deadline;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        consider(self.deadlines.first().map(|(t, _)| *t));
        consider(self.ping.map(|(_, t)| t));
        if let Phase::Draining { deadline } = self.phase {
            consider(Some(deadline));
        }
        if self.ping.is_none() && self.keepalive_enabled() {
            consider(Some(later(
                self.last_received,
                self.config.timeouts.nop_interval,
            )));
        }
        earliest
    }

    fn keepalive_enabled(&self) -> bool {
        matches!(self.phase, Phase::FullFeature | Phase::Draining { .. })
            && !self.config.timeouts.nop_interval.is_zero()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(deadline) = self.phase_deadline
            && now >= deadline
        {
            let what = match self.phase {
                Phase::Login(_) => "login",
                _ => "logout",
            };
            let after = match self.phase {
                Phase::Login(_) => self.config.timeouts.login,
                _ => self.config.timeouts.logout,
            };
            self.fail(Error::Timeout {
                ctx: self.ctx.clone(),
                what,
                after,
            });
            return;
        }
        if let Some((_, dead_at)) = self.ping {
            if now >= dead_at {
                let after = self.config.timeouts.nop_timeout;
                self.fail(Error::Timeout {
                    ctx: self.ctx.clone(),
                    what: "NOP-Out ping",
                    after,
                });
                return;
            }
        } else if self.keepalive_enabled()
            && now >= later(self.last_received, self.config.timeouts.nop_interval)
        {
            self.send_ping(now);
        }
        while let Some(&(at, itt)) = self.deadlines.first() {
            if at > now || matches!(self.phase, Phase::Closed) {
                break;
            }
            self.deadlines.pop_first();
            self.task_timed_out(itt, now);
        }
        if let Phase::Draining { deadline } = self.phase
            && now >= deadline
        {
            self.send_logout(now);
        }
    }

    /// Queues a SCSI command. It is sent as soon as the CmdSN window and the
    /// queue depth allow; its timeout runs from now.
    pub fn submit(&mut self, command: Command, now: Instant) -> Result<Itt, SubmitError> {
        self.now = now;
        if !self.accepts_commands() {
            return Err(SubmitError::NotReady);
        }
        if let crate::command::Direction::Write { data } = &command.direction
            && data.len() > u32::MAX as usize
        {
            return Err(SubmitError::TooLarge(data.len()));
        }
        let timeout = command.timeout.unwrap_or(self.config.timeouts.command);
        let itt = self.add_task(
            TaskKind::Scsi(ScsiTask::new(command)),
            Some(later(now, timeout)),
        );
        self.waiting.push_back(itt);
        self.send_waiting();
        Ok(itt)
    }

    /// Starts a text exchange (e.g. `SendTargets=All`). The answer arrives as
    /// [`Event::TextComplete`]. One at a time: a target answers text
    /// exchanges one by one, and a bound keeps a peer from piling them up.
    pub fn submit_text(
        &mut self,
        pairs: &[(&str, &str)],
        now: Instant,
    ) -> Result<Itt, SubmitError> {
        self.now = now;
        if !self.accepts_commands() {
            return Err(SubmitError::NotReady);
        }
        if self.text_in_progress() {
            return Err(SubmitError::TextBusy);
        }
        Ok(self.start_text(pairs, TextPurpose::User, now))
    }

    fn text_in_progress(&self) -> bool {
        self.tasks
            .values()
            .any(|t| matches!(t.kind, TaskKind::Text { .. }))
    }

    fn start_text(&mut self, pairs: &[(&str, &str)], purpose: TextPurpose, now: Instant) -> Itt {
        let deadline = later(now, self.config.timeouts.command);
        let itt = self.add_task(
            TaskKind::Text {
                purpose,
                received: Vec::new(),
            },
            Some(deadline),
        );
        let data = match crate::login::encode_text(pairs) {
            Ok(data) => data,
            Err(e) => {
                // The caller's keys are not valid text: answer at once.
                self.remove_task(itt);
                self.events.push_back(Event::TextComplete {
                    task: itt,
                    result: Err(CommandFailure::Protocol(format!(
                        "invalid text request: {e}"
                    ))),
                });
                return itt;
            }
        };
        self.outgoing.push_back(Pdu::TextRequest(TextRequest {
            immediate: true,
            final_: true,
            continue_: false,
            lun: Lun::default(),
            itt,
            ttt: Ttt::RESERVED,
            cmd_sn: self.seq.cmd_sn,
            exp_stat_sn: self.seq.exp_stat_sn,
            data,
        }));
        itt
    }

    /// Logs out (close session). Commands still outstanding are returned as
    /// unfinished when the connection closes.
    pub fn start_logout(&mut self, now: Instant) {
        match self.phase {
            Phase::Login(_) => self.close_with(None),
            Phase::FullFeature | Phase::Draining { .. } => self.send_logout(now),
            Phase::LoggingOut | Phase::Closed => {}
        }
    }

    // ---- internals shared by the phases ----

    fn allocate_itt(&mut self) -> Itt {
        loop {
            let candidate = Itt(self.next_itt);
            self.next_itt = self.next_itt.wrapping_add(1);
            if !candidate.is_reserved() && !self.tasks.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn add_task(&mut self, kind: TaskKind, deadline: Option<Instant>) -> Itt {
        let itt = self.allocate_itt();
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(at) = deadline {
            self.deadlines.insert((at, itt));
        }
        self.tasks.insert(
            itt,
            Task {
                kind,
                seq,
                deadline,
            },
        );
        itt
    }

    fn remove_task(&mut self, itt: Itt) -> Option<Task> {
        let task = self.tasks.remove(&itt)?;
        if let Some(at) = task.deadline {
            self.deadlines.remove(&(at, itt));
        }
        if let TaskKind::Scsi(s) = &task.kind {
            if s.cmd_sn.is_some() {
                self.in_flight -= 1;
            } else {
                self.waiting.retain(|w| *w != itt);
            }
        }
        Some(task)
    }

    /// Removes the task only if it is of the kind the target's PDU answers: a
    /// PDU naming another task's ITT must not end that task unreported.
    fn remove_task_if(&mut self, itt: Itt, is_kind: fn(&TaskKind) -> bool) -> Option<Task> {
        let matching = self.tasks.get(&itt).is_some_and(|t| is_kind(&t.kind));
        if matching {
            self.remove_task(itt)
        } else {
            None
        }
    }

    /// Sends waiting commands while the window and the queue depth allow.
    fn send_waiting(&mut self) {
        if !matches!(self.phase, Phase::FullFeature) {
            return;
        }
        while self.in_flight < self.config.queue_depth as usize && self.seq.window_open() {
            let Some(itt) = self.waiting.pop_front() else {
                break;
            };
            let Some(Task {
                kind: TaskKind::Scsi(task),
                ..
            }) = self.tasks.get_mut(&itt)
            else {
                continue;
            };
            // Taken only once the task is there: a CmdSN taken and not sent
            // would be a hole the target waits on.
            let cmd_sn = self.seq.take_cmd_sn();
            let exp_stat_sn = self.seq.exp_stat_sn;
            task.command_pdus(itt, cmd_sn, exp_stat_sn, &self.params, &mut self.outgoing);
            self.in_flight += 1;
            self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight as u64);
        }
    }

    fn complete_command(
        &mut self,
        itt: Itt,
        result: Result<crate::command::CommandOutcome, CommandFailure>,
    ) {
        if self.remove_task(itt).is_none() {
            return;
        }
        match &result {
            Ok(_) => self.stats.commands_completed += 1,
            Err(_) => self.stats.commands_failed += 1,
        }
        self.events
            .push_back(Event::CommandComplete { task: itt, result });
        self.send_waiting();
        self.maybe_finish_draining();
    }

    fn send_ping(&mut self, now: Instant) {
        let itt = self.add_task(TaskKind::Ping, None);
        self.ping = Some((itt, later(now, self.config.timeouts.nop_timeout)));
        self.stats.nop_pings += 1;
        self.outgoing.push_back(Pdu::NopOut(NopOut {
            immediate: true,
            lun: Lun::default(),
            itt,
            ttt: Ttt::RESERVED,
            cmd_sn: self.seq.cmd_sn,
            exp_stat_sn: self.seq.exp_stat_sn,
            data: bytes::Bytes::new(),
        }));
    }

    fn send_task_management(
        &mut self,
        function: TmfFunction,
        lun: Lun,
        referenced: Option<Itt>,
        now: Instant,
    ) {
        // §11.5.4/§11.5.5: only ABORT TASK names a task; otherwise both are reserved.
        let referenced = referenced.filter(|_| function == TmfFunction::AbortTask);
        let named = referenced.and_then(|r| match self.tasks.get(&r).map(|t| &t.kind) {
            Some(TaskKind::Scsi(s)) => Some((r, s.cmd_sn.unwrap_or(0))),
            _ => None,
        });
        self.push_task_management(function, lun, referenced, named, now);
    }

    /// ABORT TASK for a command the target rejected: it never entered the
    /// task set, and at ERL 0 its CmdSN is a hole the target holds every later
    /// command behind. §11.5.1: an ABORT TASK naming a CmdSN the target has
    /// not received makes it count that CmdSN as received.
    fn plug_cmd_sn_hole(&mut self, itt: Itt, cmd_sn: u32, lun: Lun, now: Instant) {
        self.push_task_management(TmfFunction::AbortTask, lun, None, Some((itt, cmd_sn)), now);
    }

    fn push_task_management(
        &mut self,
        function: TmfFunction,
        lun: Lun,
        referenced: Option<Itt>,
        named: Option<(Itt, u32)>,
        now: Instant,
    ) {
        let (ref_itt, ref_cmd_sn) = named.unwrap_or((Itt::RESERVED, 0));
        let deadline = later(now, self.config.timeouts.task_management);
        let itt = self.add_task(
            TaskKind::TaskManagement {
                function,
                lun,
                referenced,
            },
            Some(deadline),
        );
        self.stats.task_management += 1;
        self.outgoing
            .push_back(Pdu::TaskMgmtRequest(TaskMgmtRequest {
                immediate: true,
                function,
                lun,
                itt,
                referenced_task_tag: ref_itt,
                cmd_sn: self.seq.cmd_sn,
                exp_stat_sn: self.seq.exp_stat_sn,
                ref_cmd_sn,
                exp_data_sn: 0,
            }));
    }

    fn send_logout(&mut self, now: Instant) {
        let itt = self.add_task(TaskKind::Logout, None);
        self.phase = Phase::LoggingOut;
        self.phase_deadline = Some(later(now, self.config.timeouts.logout));
        self.outgoing.push_back(Pdu::LogoutRequest(LogoutRequest {
            immediate: true,
            reason: LogoutReason::CloseSession,
            itt,
            cid: 0,
            cmd_sn: self.seq.cmd_sn,
            exp_stat_sn: self.seq.exp_stat_sn,
        }));
    }

    fn maybe_finish_draining(&mut self) {
        if matches!(self.phase, Phase::Draining { .. }) && self.in_flight == 0 {
            self.send_logout(self.now);
        }
    }

    /// A task's deadline passed.
    fn task_timed_out(&mut self, itt: Itt, now: Instant) {
        let Some(task) = self.tasks.get_mut(&itt) else {
            return;
        };
        task.deadline = None;
        match &mut task.kind {
            TaskKind::Scsi(s) if s.cmd_sn.is_none() => {
                let after = s.command.timeout.unwrap_or(self.config.timeouts.command);
                self.complete_command(itt, Err(CommandFailure::Timeout(after)));
            }
            TaskKind::Scsi(s) => {
                s.aborting = true;
                let lun = s.command.lun;
                warn!(%itt, lun = %lun, opcode = s.command.opcode(), "command timed out, aborting task");
                self.send_task_management(TmfFunction::AbortTask, lun, Some(itt), now);
            }
            TaskKind::TaskManagement {
                function,
                lun,
                referenced,
            } => {
                let (function, lun, referenced) = (*function, *lun, *referenced);
                self.remove_task(itt);
                self.task_management_failed(function, lun, referenced, "timed out", now);
            }
            TaskKind::Text { .. } => {
                self.remove_task(itt);
                let after = self.config.timeouts.command;
                self.events.push_back(Event::TextComplete {
                    task: itt,
                    result: Err(CommandFailure::Timeout(after)),
                });
            }
            TaskKind::Ping | TaskKind::Logout => {}
        }
    }

    /// Escalation when task management does not do its job: ABORT TASK ->
    /// LOGICAL UNIT RESET -> drop the connection (the SCSI midlayer's order).
    fn task_management_failed(
        &mut self,
        function: TmfFunction,
        lun: Lun,
        referenced: Option<Itt>,
        why: &str,
        now: Instant,
    ) {
        warn!(?function, lun = %lun, why, "task management failed");
        if function == TmfFunction::AbortTask && referenced.is_none() {
            // A hole-plugging abort (no task of ours behind it): nothing to
            // escalate; if the hole stays, later commands time out and
            // escalate themselves.
            return;
        }
        if function == TmfFunction::AbortTask {
            self.send_task_management(TmfFunction::LogicalUnitReset, lun, referenced, now);
        } else {
            let after = self.config.timeouts.task_management;
            self.fail(Error::Timeout {
                ctx: self.ctx.clone(),
                what: "task management",
                after,
            });
        }
    }

    /// Closes with an error: every unfinished command goes back to the driver.
    fn fail(&mut self, error: Error) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        debug!(%error, "connection failed");
        self.close_with(Some(error));
    }

    fn close_with(&mut self, error: Option<Error>) {
        self.phase = Phase::Closed;
        self.phase_deadline = None;
        self.ping = None;
        self.outgoing.clear();
        self.deadlines.clear();
        let mut unfinished = Vec::new();
        let failure = match &error {
            Some(e) => CommandFailure::ConnectionLost(e.to_string()),
            None => CommandFailure::Cancelled,
        };
        let mut tasks: Vec<(Itt, Task)> = self.tasks.drain().collect();
        tasks.sort_by_key(|(_, t)| t.seq);
        for (itt, task) in tasks {
            match task.kind {
                // A command that already timed out is not replayed: it would
                // time out again on the next connection, and again, forever.
                TaskKind::Scsi(s) if s.aborting => {
                    let after = s.command.timeout.unwrap_or(self.config.timeouts.command);
                    self.stats.commands_failed += 1;
                    self.events.push_back(Event::CommandComplete {
                        task: itt,
                        result: Err(CommandFailure::Timeout(after)),
                    });
                }
                TaskKind::Scsi(s) => unfinished.push((itt, s.command)),
                TaskKind::Text {
                    purpose: TextPurpose::User,
                    ..
                } => self.events.push_back(Event::TextComplete {
                    task: itt,
                    result: Err(failure.clone()),
                }),
                _ => {}
            }
        }
        self.waiting.clear();
        self.in_flight = 0;
        self.events.push_back(Event::Closed { error, unfinished });
    }

    fn apply_login_result(&mut self, params: OperationalParams, tsih: u16) {
        let digests = Digests {
            header: params.header_digest == Digest::Crc32c,
            data: params.data_digest == Digest::Crc32c,
        };
        self.decoder
            .configure(digests, params.max_recv_data_segment_length);
        self.encoder
            .configure(digests, params.max_xmit_data_segment_length);
        self.params = params.clone();
        self.tsih = tsih;
        self.events.push_back(Event::LoggedIn { params, tsih });
    }

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Login(mut login) => {
                let Pdu::LoginResponse(resp) = pdu else {
                    self.phase = Phase::Login(login);
                    let reason = format!("{} during login", pdu.opcode());
                    return self.fail(Error::Protocol {
                        ctx: self.ctx.clone(),
                        reason,
                    });
                };
                match login.handle_response(resp) {
                    Ok(LoginStep::Send(req)) => {
                        self.outgoing.push_back(Pdu::LoginRequest(req));
                        self.phase = Phase::Login(login);
                    }
                    Ok(LoginStep::Done(done)) => {
                        self.seq = Sequencing::new(
                            done.cmd_sn,
                            done.exp_cmd_sn,
                            done.max_cmd_sn,
                            done.exp_stat_sn,
                        );
                        self.phase = Phase::FullFeature;
                        self.phase_deadline = None;
                        self.last_received = now;
                        self.apply_login_result(done.params, done.tsih);
                    }
                    Ok(LoginStep::Redirect { portal, permanent }) => {
                        self.events
                            .push_back(Event::Redirected { portal, permanent });
                        self.phase = Phase::Login(login);
                        self.close_with(None);
                    }
                    Err(e) => {
                        self.phase = Phase::Login(login);
                        self.fail(e);
                    }
                }
            }
            Phase::Closed => {}
            phase => {
                self.phase = phase;
                self.handle_full_feature_pdu(pdu, now);
            }
        }
    }
}

/// Time helper for tests and drivers: a duration in whole seconds from a u16.
/// `now + after`, saturating far in the future instead of panicking when a
/// caller passes an absurd timeout (`Duration::MAX`).
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

pub(crate) fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

#[cfg(test)]
mod tests;
