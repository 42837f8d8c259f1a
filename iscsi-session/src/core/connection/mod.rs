//! The sans-IO connection: login, full feature phase and logout of one TCP
//! connection, driven by bytes and the current time.
//!
//! The caller (a tokio driver, or a test feeding PDUs) reads socket bytes into
//! [`Connection::receive_buffer`] (or hands them over with
//! [`Connection::receive`]) and calls [`Connection::handle_received`],
//! writes what [`Connection::poll_transmit`] yields, delivers what
//! [`Connection::poll_event`] yields and calls [`Connection::handle_timeout`] at
//! [`Connection::poll_timeout`]. Nothing here blocks, reads a clock or touches a
//! socket.

mod deadline_queue;
mod event;
mod full_feature;
mod itt_slab;
mod receive;
mod scsi_task;
mod segment_pool;
mod sequencing;
mod task_table;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::buf::Limit;
use bytes::{BufMut, BytesMut};
use iscsi_proto::codec::{Digests, EncodeError, EncodedPdu, EncodedTail, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    BHS_LEN, Itt, LoginResponse, LogoutReason, LogoutRequest, Lun, NopOut, Opcode, Pdu,
    TaskMgmtRequest, TextRequest, TmfFunction, Ttt,
};
use iscsi_proto::text::{Digest, OperationalParams};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{debug, warn};

use crate::core::chap::ChapAlgorithm;
use crate::core::command::{Command, CommandOutcome, Direction};
use crate::core::config::SessionConfig;
use crate::core::error::{Error, PathContext, TaskFailure, quote_peer_bytes};
use crate::core::login::{Login, LoginStep};

pub use crate::core::login::ChapDiagnosis;
pub use event::{ConnectionEvent, TargetEvent, Unfinished};
use receive::{Received, Receiver};
use sequencing::Sequencing;
use task_table::{TaskKind, TaskTable, TextPurpose};

/// Largest text response (SendTargets) we assemble; a target with more is hostile.
pub const MAX_TEXT_RESPONSE: usize = 1024 * 1024;

/// Bytes of a non-iSCSI peer's first answer kept for the error.
const PEEK_LEN: usize = 64;

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
    /// Login under way.
    LoggingIn,
    /// Full feature phase: commands flow.
    FullFeature,
    /// A logout is under way.
    LoggingOut,
    /// Over; see the [`ConnectionEvent::Closed`] event for why.
    Closed,
}

/// Counters for status output and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// PDUs decoded from the target.
    pub pdus_received: u64,
    /// PDUs encoded for the target.
    pub pdus_sent: u64,
    /// Bytes of those PDUs, digests and padding included.
    pub bytes_received: u64,
    /// Bytes of the PDUs sent.
    pub bytes_sent: u64,
    /// SCSI commands that ended with a status.
    pub commands_completed: u64,
    /// SCSI commands that ended without one.
    pub commands_failed: u64,
    /// Most SCSI commands in flight at once.
    pub max_in_flight: u64,
    /// NOP-Out keepalives sent.
    pub nop_pings: u64,
    /// NOP-In pings of the target answered.
    pub target_pings_answered: u64,
    /// Task management requests sent (aborts, LU resets).
    pub task_management: u64,
}

/// Why a command was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Login is not done, or the connection is draining or closed.
    #[error("connection is not in full feature phase")]
    NotReady,
    /// One text exchange at a time.
    #[error("a text exchange is already under way")]
    TextBusy,
    /// The Expected Data Transfer Length field is 32 bits.
    #[error("write of {0} bytes does not fit an iSCSI command")]
    TooLarge(usize),
    /// The connection holds as many commands as its task table has room for.
    #[error("{0} commands are outstanding already, the most one connection holds")]
    TooManyCommands(usize),
}

/// A command [`Connection::submit`] did not take, handed back with its token.
#[derive(Debug)]
pub struct NotAccepted<U> {
    /// Why.
    pub error: SubmitError,
    /// The command, unchanged.
    pub command: Command,
    /// The caller's token.
    pub token: U,
}

/// One iSCSI connection (and, with MaxConnections=1, its session).
///
/// `U` is a token the caller attaches to each command (a reply channel, an
/// index into its own table...): the connection hands it back with the
/// command's completion, or among the unfinished commands when it closes, so
/// the caller needs no table of its own keyed by task tag.
#[derive(Debug)]
pub struct Connection<U = ()> {
    ctx: PathContext,
    config: Arc<SessionConfig>,
    phase: Phase,
    rx: Receiver,
    decoder: PduDecoder,
    encoder: PduEncoder,
    outgoing: VecDeque<Pdu>,
    events: VecDeque<ConnectionEvent<U>>,
    params: OperationalParams,
    tsih: u16,
    seq: Sequencing,
    tasks: TaskTable<U>,
    phase_deadline: Option<Instant>,
    last_received: Instant,
    /// The latest time a caller gave us, for work done outside a timer.
    now: Instant,
    /// Our outstanding NOP-Out and when the connection is declared dead.
    ping: Option<(Itt, Instant)>,
    stats: ConnectionStats,
    chap_algorithm: Option<ChapAlgorithm>,
    /// What a refused login found out about CHAP.
    chap_diagnosis: Option<ChapDiagnosis>,
}

impl Connection<()> {
    /// Starts a login for a caller that needs no per-command token.
    pub fn new(config: Arc<SessionConfig>, tsih: u16, now: Instant) -> Self {
        Connection::with_token(config, tsih, now)
    }
}

impl<U> Connection<U> {
    /// Starts a login. `tsih` is 0 for a new session or a reinstatement, the
    /// session's TSIH to add a connection to it. The first Login Request is
    /// queued at once.
    pub fn with_token(config: Arc<SessionConfig>, tsih: u16, now: Instant) -> Self {
        Connection::with_rng(config, tsih, now, StdRng::from_entropy())
    }

    /// As [`Connection::with_token`] with a chosen random source (tests; CHAP
    /// challenges come from it).
    pub fn with_rng(config: Arc<SessionConfig>, tsih: u16, now: Instant, rng: StdRng) -> Self {
        Connection::build(config, tsih, now, rng, false)
    }

    /// A login that only checks whether the target accepts our CHAP
    /// response when we do not challenge it; it always ends closed, its
    /// verdict in [`Connection::chap_diagnosis`] and its error.
    ///
    /// Run it on a fresh TCP connection after a mutual CHAP login ended
    /// with [`ChapDiagnosis::RefusedAfterMutualChallenge`]: it tells whether
    /// the target refused our user name and secret or has no outgoing
    /// account to answer our challenge with (the tokio driver does this
    /// before it reports the refusal).
    pub fn checking_credentials(config: Arc<SessionConfig>, now: Instant) -> Self {
        Connection::build(config, 0, now, StdRng::from_entropy(), true)
    }

    fn build(
        config: Arc<SessionConfig>,
        tsih: u16,
        now: Instant,
        rng: StdRng,
        credentials_check: bool,
    ) -> Self {
        let ctx = PathContext {
            portal: config.portal.clone(),
            target: config.target_name.clone().unwrap_or_default(),
        };
        let initial_cmd_sn = 1;
        let mut login = Login::new(config.clone(), ctx.clone(), tsih, initial_cmd_sn, rng);
        if credentials_check {
            login = login.check_credentials_only();
        }
        let first = login.start();
        let mut conn = Connection {
            ctx,
            phase: Phase::Login(Box::new(login)),
            rx: Receiver::default(),
            decoder: PduDecoder::default(),
            encoder: PduEncoder::default(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            params: OperationalParams::default(),
            tsih,
            seq: Sequencing::new(initial_cmd_sn, initial_cmd_sn, initial_cmd_sn, 0),
            tasks: TaskTable::default(),
            phase_deadline: Some(later(now, config.timeouts.login)),
            last_received: now,
            now,
            ping: None,
            stats: ConnectionStats::default(),
            chap_algorithm: None,
            chap_diagnosis: None,
            config,
        };
        match first {
            Ok(req) => conn.outgoing.push_back(Pdu::LoginRequest(req)),
            Err(e) => conn.fail(e),
        }
        conn
    }

    /// Where the connection is.
    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Login(_) => ConnectionState::LoggingIn,
            Phase::FullFeature | Phase::Draining { .. } => ConnectionState::FullFeature,
            Phase::LoggingOut => ConnectionState::LoggingOut,
            Phase::Closed => ConnectionState::Closed,
        }
    }

    /// The portal and target, for errors and logs.
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

    /// The CHAP algorithm the login authenticated with: `None` without CHAP
    /// or before login completes.
    pub fn chap_algorithm(&self) -> Option<ChapAlgorithm> {
        self.chap_algorithm
    }

    /// What a failed CHAP login found out beyond its error: `None` unless
    /// the login was refused after a mutual challenge, or this connection is
    /// a credentials check ([`Connection::checking_credentials`]) that
    /// reached a verdict.
    pub fn chap_diagnosis(&self) -> Option<ChapDiagnosis> {
        self.chap_diagnosis
    }

    /// Counters since the connection started.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// SCSI commands accepted and not yet complete (sent or waiting).
    pub fn outstanding_commands(&self) -> usize {
        self.tasks.in_flight() + self.tasks.waiting()
    }

    /// Whether `submit` would accept a command now.
    pub fn accepts_commands(&self) -> bool {
        matches!(self.phase, Phase::FullFeature)
    }

    /// Where the driver reads the next socket bytes into, limited to how
    /// many are wanted there (never zero): the shared buffer, with room for a
    /// whole short PDU, or the buffer of the exact size of a long data
    /// segment whose header came in, or the shared buffer up to the end of
    /// the next header, which may announce another. Read at most
    /// `remaining_mut()` bytes into it (tokio's `try_read_buf` does), then
    /// call [`Connection::handle_received`].
    pub fn receive_buffer(&mut self) -> Limit<&mut BytesMut> {
        self.rx.buffer(&self.decoder)
    }

    /// Lets go of the long segments' buffers lent to callers, as if none
    /// were lent (tests of who owns a buffer).
    #[cfg(test)]
    pub(super) fn forget_lent_segments(&mut self) {
        self.rx.forget_lent();
    }

    /// Hands over bytes read some other way (a test, a caller with buffers
    /// of its own): copies them where [`Connection::receive_buffer`] says,
    /// piece by piece, handling each piece as it lands. Bytes that arrive
    /// after the connection closed are dropped.
    pub fn receive(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() && !matches!(self.phase, Phase::Closed) {
            let mut room = self.receive_buffer();
            let n = room.remaining_mut().min(bytes.len());
            room.put_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.handle_received(now);
        }
    }

    /// Decodes and handles every complete PDU received.
    pub fn handle_received(&mut self, now: Instant) {
        self.now = now;
        while !matches!(self.phase, Phase::Closed) {
            // Until a first PDU decodes, the peer may not speak iSCSI at all:
            // keep the start of what it sent for the error (a decoded PDU
            // leaves the buffer).
            let first = self.awaiting_first_pdu().then(|| {
                let sent = self.rx.shared();
                sent[..sent.len().min(PEEK_LEN)].to_vec()
            });
            match self.rx.next(&mut self.decoder) {
                Ok(Some(Received { pdu, wire_len })) => {
                    self.stats.pdus_received += 1;
                    self.stats.bytes_received += wire_len as u64;
                    self.last_received = now;
                    if let Some(first) = first
                        && !matches!(pdu, Pdu::LoginResponse(_))
                    {
                        // Text in another protocol often parses as a BHS of
                        // some opcode: the PDU itself says nothing useful.
                        let error = self.not_iscsi(&first);
                        self.fail(error);
                        break;
                    }
                    self.handle_pdu(pdu, now);
                }
                Ok(None) => {
                    if self.surely_not_iscsi() {
                        let error = self.not_iscsi(self.rx.shared());
                        self.fail(error);
                    }
                    break;
                }
                Err(e) => {
                    let error = match first {
                        // A header that starts as a Login Response is an
                        // iSCSI target breaking the rules (a data segment over
                        // the 8192 bytes of login, a bad field): its decode
                        // error says what, where "does not speak iSCSI" and
                        // a quote of binary bytes would mislead.
                        Some(first) if !starts_login_response(&first) => self.not_iscsi(&first),
                        _ => Error::Protocol {
                            ctx: self.ctx.clone(),
                            reason: format!("undecodable PDU: {e}"),
                        },
                    };
                    self.fail(error);
                }
            }
        }
    }

    /// In login, before any PDU from the target was decoded.
    fn awaiting_first_pdu(&self) -> bool {
        matches!(self.phase, Phase::Login(_)) && self.stats.pdus_received == 0
    }

    /// Whether the bytes waiting in the buffer, short of a whole PDU, cannot
    /// begin the Login Response we wait for. Decided once there is a line
    /// (text protocols answer with one) or a whole BHS, so that the error can
    /// quote something readable; until then the peer closing, or the login
    /// timeout, decides.
    fn surely_not_iscsi(&self) -> bool {
        let sent = self.rx.shared();
        self.awaiting_first_pdu()
            && !sent.is_empty()
            && !starts_login_response(sent)
            && (sent.len() >= BHS_LEN || sent.contains(&b'\n'))
    }

    /// Bytes were received but no PDU, and they cannot start a Login Response.
    fn partial_garbage(&self) -> bool {
        let sent = self.rx.shared();
        self.awaiting_first_pdu() && !sent.is_empty() && !starts_login_response(sent)
    }

    fn not_iscsi(&self, sent: &[u8]) -> Error {
        Error::NotIscsi {
            ctx: self.ctx.clone(),
            sent: quote_peer_bytes(sent),
        }
    }

    /// The peer closed the socket or it failed.
    pub fn handle_disconnect(&mut self, reason: impl Into<String>) {
        if self.partial_garbage() {
            // An HTTP server answers our Login Request and hangs up.
            let error = self.not_iscsi(self.rx.shared());
            self.fail(error);
            return;
        }
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
                    self.count_sent(encoded.len());
                    return Some(encoded);
                }
                Err(e) => self.cannot_encode(&pdu, e),
            }
        }
        None
    }

    /// [`Connection::poll_transmit`] with the header appended to `dst`, the
    /// caller's send buffer, instead of a buffer of its own; what follows the
    /// header on the wire is returned.
    pub fn poll_transmit_into(&mut self, dst: &mut BytesMut) -> Option<EncodedTail> {
        while let Some(pdu) = self.outgoing.pop_front() {
            match self.encoder.encode_header_into(&pdu, dst) {
                Ok(tail) => {
                    self.count_sent(tail.len());
                    return Some(tail);
                }
                Err(e) => self.cannot_encode(&pdu, e),
            }
        }
        None
    }

    fn count_sent(&mut self, wire_len: usize) {
        self.stats.pdus_sent += 1;
        self.stats.bytes_sent += wire_len as u64;
    }

    fn cannot_encode(&mut self, pdu: &Pdu, e: EncodeError) {
        // We built a PDU the negotiated limits do not allow: a bug on our
        // side, but the session must fail cleanly, not panic.
        let reason = format!("cannot encode our own {}: {e}", pdu.opcode());
        self.fail(Error::Protocol {
            ctx: self.ctx.clone(),
            reason,
        });
    }

    /// Whether `poll_transmit` has something.
    pub fn has_transmit(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent<U>> {
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
        consider(self.tasks.first_deadline());
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
            if self.partial_garbage() {
                let error = self.not_iscsi(self.rx.shared());
                self.fail(error);
                return;
            }
            let (what, after) = match self.phase {
                Phase::Login(_) => ("login", self.config.timeouts.login),
                _ => ("logout", self.config.timeouts.logout),
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
        while !matches!(self.phase, Phase::Closed) {
            let Some(itt) = self.tasks.pop_due(now) else {
                break;
            };
            self.task_timed_out(itt, now);
        }
        if let Phase::Draining { deadline } = self.phase
            && now >= deadline
        {
            self.send_logout(now);
        }
    }

    /// Queues a SCSI command with the caller's token. It is sent as soon as
    /// the CmdSN window and the queue depth allow; its timeout runs from now.
    /// A command not accepted comes back with its token: nothing was queued.
    pub fn submit(
        &mut self,
        command: Command,
        token: U,
        now: Instant,
    ) -> Result<Itt, NotAccepted<U>> {
        self.now = now;
        let refusal = match &command.direction {
            _ if !self.accepts_commands() => Some(SubmitError::NotReady),
            Direction::Write { data } if data.len() > u32::MAX as usize => {
                Some(SubmitError::TooLarge(data.len()))
            }
            _ => None,
        };
        if let Some(error) = refusal {
            return Err(NotAccepted {
                error,
                command,
                token,
            });
        }
        let timeout = command.timeout.unwrap_or(self.config.timeouts.command);
        let added = self.tasks.add_command(command, token, later(now, timeout));
        let itt = match added {
            Ok(itt) => itt,
            Err((command, token)) => {
                return Err(NotAccepted {
                    error: SubmitError::TooManyCommands(self.outstanding_commands()),
                    command,
                    token,
                });
            }
        };
        self.send_waiting();
        Ok(itt)
    }

    /// Starts a text exchange (e.g. `SendTargets=All`). The answer arrives as
    /// [`ConnectionEvent::TextComplete`]. One at a time: a target answers
    /// text exchanges one by one, and a bound keeps a peer from piling them up.
    pub fn submit_text(
        &mut self,
        pairs: &[(&str, &str)],
        now: Instant,
    ) -> Result<Itt, SubmitError> {
        self.now = now;
        if !self.accepts_commands() {
            return Err(SubmitError::NotReady);
        }
        if self.tasks.text_in_progress() {
            return Err(SubmitError::TextBusy);
        }
        self.start_text(pairs, TextPurpose::User, now)
            .ok_or(SubmitError::NotReady)
    }

    /// `None` if the connection failed instead (no ITT free).
    fn start_text(
        &mut self,
        pairs: &[(&str, &str)],
        purpose: TextPurpose,
        now: Instant,
    ) -> Option<Itt> {
        let deadline = later(now, self.config.timeouts.command);
        let itt = self.add_task(
            TaskKind::Text {
                purpose,
                received: Vec::new(),
            },
            Some(deadline),
        )?;
        let data = match crate::core::text::encode_text(pairs) {
            Ok(data) => data,
            Err(e) => {
                // The caller's keys are not valid text: answer at once.
                self.tasks.remove(itt);
                self.events.push_back(ConnectionEvent::TextComplete {
                    itt,
                    result: Err(TaskFailure::Protocol(format!("invalid text request: {e}"))),
                });
                return Some(itt);
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
        Some(itt)
    }

    /// A task other than a SCSI command. The table always has room for one
    /// (see `MAX_SCSI_TASKS`); were it ever full, the connection could not
    /// go on, so it fails and every command is handed back.
    fn add_task(&mut self, kind: TaskKind<U>, deadline: Option<Instant>) -> Option<Itt> {
        let itt = self.tasks.add(kind, deadline);
        if itt.is_none() {
            self.fail(Error::ConnectionLost {
                ctx: self.ctx.clone(),
                reason: "no Initiator Task Tag free".into(),
            });
        }
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

    /// Sends waiting commands while the window and the queue depth allow.
    fn send_waiting(&mut self) {
        if !matches!(self.phase, Phase::FullFeature) {
            return;
        }
        while self.tasks.in_flight() < self.config.queue_depth as usize
            && self.tasks.waiting() > 0
            && self.seq.window_open()
        {
            // The CmdSN is taken only once the task is in hand: a CmdSN taken
            // and not sent would be a hole the target waits on.
            let exp_stat_sn = self.seq.exp_stat_sn;
            let Some((itt, task)) = self.tasks.take_next_waiting() else {
                break;
            };
            let cmd_sn = self.seq.take_cmd_sn();
            task.command_pdus(itt, cmd_sn, exp_stat_sn, &self.params, &mut self.outgoing);
            let in_flight = self.tasks.in_flight() as u64;
            self.stats.max_in_flight = self.stats.max_in_flight.max(in_flight);
        }
    }

    fn complete_command(&mut self, itt: Itt, result: Result<CommandOutcome, TaskFailure>) {
        let Some(task) = self.tasks.remove(itt) else {
            return;
        };
        let TaskKind::Scsi(scsi, token) = task.kind else {
            return;
        };
        match &result {
            Ok(outcome) => {
                self.stats.commands_completed += 1;
                self.note_unit_attention(scsi.command.lun, outcome);
            }
            Err(_) => self.stats.commands_failed += 1,
        }
        self.events.push_back(ConnectionEvent::CommandComplete {
            itt,
            command: scsi.command,
            token,
            result,
        });
        self.send_waiting();
        self.maybe_finish_draining();
    }

    /// A UNIT ATTENTION in a command's sense tells of a change of the LU
    /// (capacity, ALUA state...) that the layers above act on.
    fn note_unit_attention(&mut self, lun: Lun, outcome: &CommandOutcome) {
        if outcome.status != crate::core::command::status::CHECK_CONDITION {
            return;
        }
        if let Some(change) = outcome
            .sense
            .as_deref()
            .and_then(crate::core::lu_change::LuChange::from_sense_bytes)
        {
            self.events
                .push_back(ConnectionEvent::Target(TargetEvent::LunChanged {
                    lun,
                    change,
                }));
        }
    }

    fn send_ping(&mut self, now: Instant) {
        let Some(itt) = self.add_task(TaskKind::Ping, None) else {
            return;
        };
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
        let named = referenced.and_then(|r| {
            self.tasks
                .get(r)
                .and_then(|t| t.kind.scsi())
                .map(|s| (r, s.cmd_sn.unwrap_or(0)))
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
        let Some(itt) = self.add_task(
            TaskKind::TaskManagement {
                function,
                lun,
                referenced,
            },
            Some(deadline),
        ) else {
            return;
        };
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
        let Some(itt) = self.add_task(TaskKind::Logout, None) else {
            return;
        };
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
        if matches!(self.phase, Phase::Draining { .. }) && self.tasks.in_flight() == 0 {
            self.send_logout(self.now);
        }
    }

    fn command_timeout(&self, command: &Command) -> Duration {
        command.timeout.unwrap_or(self.config.timeouts.command)
    }

    /// A task's deadline passed.
    fn task_timed_out(&mut self, itt: Itt, now: Instant) {
        let Some(kind) = self.tasks.kind_mut(itt) else {
            return;
        };
        match kind {
            TaskKind::Scsi(s, _) if s.cmd_sn.is_none() => {
                let after = s.command.timeout.unwrap_or(self.config.timeouts.command);
                self.complete_command(itt, Err(TaskFailure::Timeout(after)));
            }
            TaskKind::Scsi(s, _) => {
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
                self.tasks.remove(itt);
                self.task_management_failed(function, lun, referenced, "timed out", now);
            }
            TaskKind::Text { purpose, .. } => {
                let purpose = *purpose;
                self.tasks.remove(itt);
                let after = self.config.timeouts.command;
                // Only the caller's own exchanges are the caller's to hear
                // about; an unanswered renegotiation leaves the limits as
                // they were (close_with does the same).
                if purpose == TextPurpose::User {
                    self.events.push_back(ConnectionEvent::TextComplete {
                        itt,
                        result: Err(TaskFailure::Timeout(after)),
                    });
                } else {
                    warn!(%itt, ?after, "renegotiation went unanswered");
                }
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
        let mut unfinished = Vec::new();
        for (itt, task) in self.tasks.drain_in_order() {
            match task.kind {
                // A command that already timed out is not handed back for
                // replay: it would time out again elsewhere, and again.
                TaskKind::Scsi(s, token) if s.aborting => {
                    let after = self.command_timeout(&s.command);
                    self.stats.commands_failed += 1;
                    self.events.push_back(ConnectionEvent::CommandComplete {
                        itt,
                        command: s.command,
                        token,
                        result: Err(TaskFailure::Timeout(after)),
                    });
                }
                TaskKind::Scsi(s, token) => unfinished.push(Unfinished {
                    itt,
                    sent: s.cmd_sn.is_some(),
                    command: s.command,
                    token,
                }),
                TaskKind::Text {
                    purpose: TextPurpose::User,
                    ..
                } => {
                    let failure = match &error {
                        Some(e) => TaskFailure::ConnectionLost {
                            reason: e.to_string(),
                            sent: true,
                        },
                        None => TaskFailure::Cancelled { sent: true },
                    };
                    self.events.push_back(ConnectionEvent::TextComplete {
                        itt,
                        result: Err(failure),
                    });
                }
                _ => {}
            }
        }
        self.events
            .push_back(ConnectionEvent::Closed { error, unfinished });
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
        self.events
            .push_back(ConnectionEvent::LoggedIn { params, tsih });
    }

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::Login(_) => match pdu {
                Pdu::LoginResponse(resp) => self.on_login_response(resp, now),
                other => {
                    let reason = format!("{} during login", other.opcode());
                    self.fail(Error::Protocol {
                        ctx: self.ctx.clone(),
                        reason,
                    });
                }
            },
            _ => self.handle_full_feature_pdu(pdu, now),
        }
    }

    fn on_login_response(&mut self, resp: LoginResponse, now: Instant) {
        let Phase::Login(login) = &mut self.phase else {
            return;
        };
        match login.handle_response(resp) {
            Ok(LoginStep::Send(req)) => self.outgoing.push_back(Pdu::LoginRequest(req)),
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
                self.chap_algorithm = done.chap_algorithm;
                self.apply_login_result(done.params, done.tsih);
            }
            Ok(LoginStep::Redirect { portal, permanent }) => {
                self.events
                    .push_back(ConnectionEvent::Redirected { portal, permanent });
                self.close_with(None);
            }
            Err(e) => {
                self.chap_diagnosis = login.diagnosis();
                self.fail(e);
            }
        }
    }
}

/// Whether `bytes` begin with a Login Response's opcode: what an iSCSI
/// target answers a Login Request with, whatever else is wrong with it.
fn starts_login_response(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|&b| b & 0x3f == Opcode::LoginResponse.code())
}

/// `now + after`, saturating far in the future instead of panicking when a
/// caller passes an absurd timeout (`Duration::MAX`).
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A duration in whole seconds from a 16-bit PDU field.
pub(crate) fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

#[cfg(test)]
mod tests;
