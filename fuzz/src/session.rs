//! `session_after_login`: a sans-IO [`Connection`] logged in by a scripted
//! target, a few commands in flight, then the fuzzer's bytes as everything
//! the target sends, in chunks, with time moving by fuzzer-chosen steps and
//! the caller submitting, logging out or asking for text on the way.
//!
//! Input layout ([`Setup::parse`]):
//! - byte 0, what the login agrees on: bit 0 HeaderDigest=CRC32C, bit 1
//!   DataDigest=CRC32C, bit 2 keepalive (NOP-Out after 5 s idle), bit 3
//!   ImmediateData=No, bit 4 InitialR2T=Yes, bits 5-6 the target's
//!   MaxRecvDataSegmentLength (65536, 512, 8192, 262144), bit 7 a CmdSN
//!   window of 2 and a queue depth of 2;
//! - byte 1: bit i submits [`COMMANDS`]`[i]` right after login;
//! - byte 2: K steps (low 4 bits; 0 = the whole stream in one step, no action);
//! - K pairs (chunk size - 1, action), used in a cycle; an action's bits 0-4
//!   give the time step (0 none, e: 2^(e-1) ms, at most 2^17 ms), bits 5-7
//!   the caller's move (4: submit the next command of the mix, 5: a
//!   SendTargets text request, 6: logout, 7: a command with a 1 s timeout,
//!   0-3: nothing);
//! - the rest: the target's byte stream.
//!
//! Asserted, beyond "no panic, no hang":
//! - every accepted command completes exactly once, unchanged: a
//!   `CommandComplete`, or among the unfinished of the one `Closed`; none
//!   after `Closed`; a read's data never exceeds its expected length;
//! - every accepted text request gets exactly one `TextComplete`;
//! - liveness: once the stream ends and two hours pass without an answer,
//!   nothing is outstanding (timeouts, aborts and resets ran their course);
//! - our PDUs always decode, respect the negotiated MaxRecvDataSegmentLength,
//!   send each SCSI command once and never more data for a write than it
//!   holds (a hostile R2T cannot make us resend);
//! - bounded work per step: PDUs sent and events raised grow with the PDUs
//!   received and the caller's moves, not with what the target claims; the
//!   buffer a read goes into stays one allocation, of at most the shared
//!   receive buffer's size or our MaxRecvDataSegmentLength, and a read is
//!   never asked for zero bytes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use iscsi_proto::codec::Digests;
use iscsi_proto::pdu::{Itt, Lun, Pdu, Stage};
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::{Digest, OperationalParams};
use iscsi_session::{
    Command, Connection, ConnectionEvent, ConnectionState, DigestPreference, Direction, Portal,
    SessionConfig,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::chunks;
use crate::target::{TargetWire, answers, one_login_request, text};

/// The TSIH the scripted target assigns.
pub const TSIH: u16 = 0x0b0b;
/// The most a receive buffer the connection reads into may take: the shared
/// one (`RECEIVE_ALLOCATION` in iscsi-session, 256 KiB) or a long data
/// segment's own, at most our MaxRecvDataSegmentLength (256 KiB by default),
/// plus slack for `BytesMut` rounding.
const RX_BOUND: usize = 256 * 1024 + 64 * 1024;
/// Two hours: longer than any chain of timeouts (command 30 s, task
/// management 10 s twice, logout 5 s, NOP 10 s) the connection can be in.
const SILENCE: Duration = Duration::from_secs(2 * 3600);
/// Timer firings one `advance` may need; more means a timer that fires
/// without moving on.
const MAX_FIRINGS: usize = 10_000;

/// The target's MaxRecvDataSegmentLength, by bits 5-6 of byte 0.
const TARGET_MRDSL: [u32; 4] = [65536, 512, 8192, 262_144];

/// The command mix: (LUN, what). Sizes straddle the segment limits, the
/// first burst (256 KiB) and the immediate data limit.
pub const COMMANDS: [(u16, Kind); 8] = [
    (1, Kind::TestUnitReady),
    (1, Kind::Read(512)),
    (1, Kind::Read(64 * 1024)),
    (1, Kind::Write(512)),
    (1, Kind::Write(8 * 1024)),
    (2, Kind::Write(300 * 1024)),
    (2, Kind::Read(256 * 1024)),
    (0, Kind::Inquiry),
];

/// One command of the mix.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// TEST UNIT READY: no data.
    TestUnitReady,
    /// INQUIRY, 96 bytes.
    Inquiry,
    /// READ of this many bytes.
    Read(u32),
    /// WRITE of this many bytes.
    Write(usize),
}

/// The largest write of the mix, as one shared buffer.
fn write_data() -> &'static Bytes {
    static DATA: OnceLock<Bytes> = OnceLock::new();
    DATA.get_or_init(|| Bytes::from((0..300 * 1024).map(|i| (i % 251) as u8).collect::<Vec<_>>()))
}

/// Command `index` of the mix (taken modulo its length).
pub fn command(index: usize) -> Command {
    let (lun, kind) = COMMANDS[index % COMMANDS.len()];
    let lun = Lun::from_number(lun).expect("single-level LUN");
    match kind {
        Kind::TestUnitReady => Command::new(lun, Cdb::test_unit_ready(), Direction::None),
        Kind::Inquiry => Command::new(lun, Cdb::inquiry(96), Direction::Read { expected_len: 96 }),
        Kind::Read(len) => Command::new(
            lun,
            Cdb::read(0, len / 512, false),
            Direction::Read { expected_len: len },
        ),
        Kind::Write(len) => Command::new(
            lun,
            Cdb::write(0, (len / 512) as u32, false),
            Direction::Write {
                data: write_data().slice(..len),
            },
        ),
    }
}

/// One step: a chunk of the stream, then the caller's move and the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the stream delivered in this step.
    pub chunk: usize,
    /// Action byte (see the module documentation).
    pub action: u8,
}

impl Step {
    /// The time this step lets pass.
    pub fn time(self) -> Duration {
        match self.action & 0x1f {
            0 => Duration::ZERO,
            e => Duration::from_millis(1 << (e - 1).min(17)),
        }
    }
}

/// The parsed input.
#[derive(Clone, Debug)]
pub struct Setup<'a> {
    /// Byte 0: the login's choices.
    pub flags: u8,
    /// Byte 1: the commands submitted right after login.
    pub initial: u8,
    /// The steps, used in a cycle.
    pub steps: Vec<Step>,
    /// The target's bytes.
    pub stream: &'a [u8],
}

impl<'a> Setup<'a> {
    /// Reads the layout; `None` when the input is too short for its header.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (head, rest) = data.split_at_checked(3)?;
        let k = usize::from(head[2] & 0x0f);
        let (pairs, stream) = rest.split_at_checked(2 * k)?;
        Some(Setup {
            flags: head[0],
            initial: head[1],
            steps: pairs
                .chunks_exact(2)
                .map(|p| Step {
                    chunk: usize::from(p[0]) + 1,
                    action: p[1],
                })
                .collect(),
            stream,
        })
    }

    /// The input bytes for this setup (the seed generator's inverse of
    /// [`Setup::parse`]; at most 15 steps).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.steps.len() <= 15, "at most 15 steps");
        let mut out = vec![self.flags, self.initial, self.steps.len() as u8];
        for s in &self.steps {
            assert!((1..=256).contains(&s.chunk), "chunk sizes are 1..=256");
            out.push((s.chunk - 1) as u8);
            out.push(s.action);
        }
        out.extend_from_slice(self.stream);
        out
    }

    fn config(&self) -> SessionConfig {
        let mut config = SessionConfig::new(
            Portal::new("192.0.2.20", 3260),
            "iqn.2001-04.com.example:disk1",
            "iqn.2024-01.io.riscsi:fuzz",
        );
        let digest = |on| {
            if on {
                DigestPreference::PreferCrc32c
            } else {
                DigestPreference::None
            }
        };
        config.operational.header_digest = digest(self.flags & 1 != 0);
        config.operational.data_digest = digest(self.flags & 2 != 0);
        config.timeouts.nop_interval = if self.flags & 4 != 0 {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        if self.flags & 0x80 != 0 {
            config.queue_depth = 2;
        }
        config
    }

    fn window(&self) -> u32 {
        if self.flags & 0x80 != 0 { 2 } else { 32 }
    }

    fn target_mrdsl(&self) -> u32 {
        TARGET_MRDSL[usize::from((self.flags >> 5) & 3)]
    }
}

/// What became of an accepted command.
#[derive(Debug)]
struct Accepted {
    command: Command,
    done: bool,
}

/// What one run did, for the seed generator's checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Commands that completed with a SCSI status.
    pub completed: usize,
    /// Commands that completed with a failure.
    pub failed: usize,
    /// Commands handed back unfinished when the connection closed.
    pub handed_back: usize,
    /// Text exchanges completed (either way).
    pub texts: usize,
    /// Whether the connection closed before the stream was over.
    pub closed_early: bool,
    /// PDUs the connection decoded from the stream.
    pub pdus_received: u64,
}

/// The connection, the target's end and the ledger of what was asked.
#[derive(Debug)]
pub struct Harness {
    /// The connection under test; the token is the index in `accepted`.
    pub conn: Connection<usize>,
    /// The target's end.
    pub target: TargetWire,
    /// The clock.
    pub now: Instant,
    accepted: Vec<Accepted>,
    texts_accepted: usize,
    texts_done: usize,
    closed: bool,
    /// Per task tag: bytes of the write, and data bytes sent for it so far.
    writes: HashMap<Itt, (usize, usize)>,
    next_command: usize,
    /// Every PDU the connection sent, when recording (the seed generator).
    pub log: Option<Vec<Pdu>>,
    report: Report,
}

impl Harness {
    /// A connection taken through a plain login to full feature phase with
    /// the choices of `setup`. Panics if the scripted login fails: that is
    /// a bug in the login or in this script, not a finding about the stream.
    pub fn logged_in(setup: &Setup<'_>, record: bool) -> Harness {
        let config = setup.config();
        let now = Instant::now();
        let mut target = TargetWire::new(config.isid(), setup.window());
        let mut conn = Connection::with_rng(Arc::new(config), 0, now, StdRng::seed_from_u64(1));

        let first = one_login_request(target.sent(&mut conn));
        assert_eq!(first.csg, Stage::Security);
        let resp = target.login_response(
            Stage::Security,
            Some(Stage::Operational),
            0,
            text(&[("AuthMethod", "None")]),
        );
        conn.receive(&target.encode(&Pdu::LoginResponse(resp)), now);
        let offers = one_login_request(target.sent(&mut conn));
        assert_eq!(offers.csg, Stage::Operational);
        let mut overrides = Vec::new();
        if setup.flags & 8 != 0 {
            overrides.push(("ImmediateData", "No"));
        }
        if setup.flags & 0x10 != 0 {
            overrides.push(("InitialR2T", "Yes"));
        }
        let data = answers(&offers, setup.target_mrdsl(), &overrides);
        let resp = target.login_response(Stage::Operational, Some(Stage::FullFeature), TSIH, data);
        conn.receive(&target.encode(&Pdu::LoginResponse(resp)), now);
        let params = match conn.poll_event() {
            Some(ConnectionEvent::LoggedIn { params, tsih }) => {
                assert_eq!(tsih, TSIH);
                params
            }
            other => panic!("the scripted login did not finish: {other:?}"),
        };
        assert_eq!(conn.state(), ConnectionState::FullFeature);
        configure(&mut target, &params);

        let mut h = Harness {
            conn,
            target,
            now,
            accepted: Vec::new(),
            texts_accepted: 0,
            texts_done: 0,
            closed: false,
            writes: HashMap::new(),
            next_command: 0,
            log: record.then(Vec::new),
            report: Report::default(),
        };
        for i in 0..COMMANDS.len() {
            if setup.initial & (1 << i) != 0 {
                h.submit(command(i));
                // The mix's "next command" starts after the initial ones.
                h.next_command = i + 1;
            }
        }
        h.drain(0, 0);
        h
    }

    /// Submits `command`; a refusal must hand it back unchanged.
    pub fn submit(&mut self, command: Command) {
        let token = self.accepted.len();
        match self.conn.submit(command.clone(), token, self.now) {
            Ok(_) => self.accepted.push(Accepted {
                command,
                done: false,
            }),
            Err(refused) => {
                assert_eq!(refused.token, token, "a refused command's token changed");
                assert_eq!(refused.command, command, "a refused command changed");
                assert!(
                    !self.conn.accepts_commands(),
                    "refused while accepting: {}",
                    refused.error
                );
            }
        }
    }

    /// Accepted commands not yet completed or handed back.
    pub fn pending(&self) -> usize {
        self.accepted.iter().filter(|a| !a.done).count()
    }

    /// Delivers `bytes` as the target's, as a driver reads them: into the
    /// buffer the connection names (the shared one, or a long data segment's
    /// own), never more than it asks for, handling each read.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.conn.state() != ConnectionState::Closed {
            let mut rx = self.conn.receive_buffer();
            let n = rx.remaining_mut().min(bytes.len());
            // A read of zero bytes would look like the peer closing.
            assert!(n > 0, "the connection asked for no bytes");
            rx.put_slice(&bytes[..n]);
            assert!(
                rx.get_ref().capacity() <= RX_BOUND,
                "receive buffer of {} bytes",
                rx.get_ref().capacity()
            );
            bytes = &bytes[n..];
            self.conn.handle_received(self.now);
        }
    }

    /// The caller's move of an action byte; returns the moves made (0 or 1).
    pub fn act(&mut self, action: u8) -> usize {
        match action >> 5 {
            4 => {
                let c = command(self.next_command);
                self.next_command += 1;
                self.submit(c);
            }
            5 => {
                if self
                    .conn
                    .submit_text(&[("SendTargets", "All")], self.now)
                    .is_ok()
                {
                    self.texts_accepted += 1;
                }
            }
            6 => self.conn.start_logout(self.now),
            7 => {
                let c = command(self.next_command).with_timeout(Duration::from_secs(1));
                self.next_command += 1;
                self.submit(c);
            }
            _ => return 0,
        }
        1
    }

    /// Moves the clock by `by`, firing each timer when it is due.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..MAX_FIRINGS {
            match self.conn.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.conn.handle_timeout(self.now);
                    // Each firing may queue PDUs (aborts, pings, logout).
                    self.drain(0, 1);
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("timers keep firing without time passing");
    }

    /// Takes everything the connection has to send and to tell, checking
    /// each against the ledger; `pdus_in` and `moves` are this step's
    /// input, which the bounds scale with.
    pub fn drain(&mut self, pdus_in: u64, moves: usize) {
        let sent = self.target.sent(&mut self.conn);
        let limit = self.conn.params().max_xmit_data_segment_length as usize;
        let mut control = 0usize;
        for pdu in &sent {
            let data_len = pdu_data_len(pdu);
            assert!(
                data_len <= limit,
                "a {} with {data_len} bytes of data, MaxRecvDataSegmentLength {limit}",
                pdu.opcode()
            );
            match pdu {
                Pdu::ScsiCommand(cmd) => {
                    control += 1;
                    if cmd.write {
                        let len = cmd.expected_data_transfer_length as usize;
                        let old = self.writes.insert(cmd.itt, (len, cmd.data.len()));
                        assert!(old.is_none(), "command {} sent twice", cmd.itt);
                        assert!(cmd.data.len() <= len, "immediate data beyond the write");
                    } else {
                        assert!(
                            cmd.data.is_empty(),
                            "data with a command that writes nothing"
                        );
                    }
                }
                Pdu::DataOut(d) => {
                    let entry = self
                        .writes
                        .get_mut(&d.itt)
                        .unwrap_or_else(|| panic!("Data-Out for {} without a write", d.itt));
                    entry.1 += d.data.len();
                    assert!(
                        entry.1 <= entry.0,
                        "{} data bytes sent for a write of {}",
                        entry.1,
                        entry.0
                    );
                }
                _ => control += 1,
            }
        }
        let commands = self.accepted.len();
        assert!(
            control as u64 <= 8 + 4 * (pdus_in + moves as u64) + commands as u64,
            "{control} PDUs sent for {pdus_in} received and {moves} moves"
        );
        if let Some(log) = &mut self.log {
            log.extend(sent);
        }

        let mut events = 0usize;
        while let Some(event) = self.conn.poll_event() {
            events += 1;
            self.check_event(event);
        }
        assert!(
            events as u64 <= 4 + 2 * pdus_in + (commands + self.texts_accepted) as u64,
            "{events} events for {pdus_in} PDUs received"
        );
    }

    fn check_event(&mut self, event: ConnectionEvent<usize>) {
        match event {
            ConnectionEvent::CommandComplete {
                command,
                token,
                result,
                ..
            } => {
                assert!(!self.closed, "a command completed after Closed");
                self.settle(token, &command);
                match result {
                    Ok(outcome) => {
                        if let Direction::Read { expected_len } = command.direction {
                            assert!(
                                outcome.data.len() <= expected_len as usize,
                                "{} bytes read into {expected_len}",
                                outcome.data.len()
                            );
                        }
                        self.report.completed += 1;
                    }
                    Err(_) => self.report.failed += 1,
                }
            }
            ConnectionEvent::TextComplete { .. } => {
                self.texts_done += 1;
                assert!(
                    self.texts_done <= self.texts_accepted,
                    "more text completions than requests"
                );
            }
            ConnectionEvent::Closed { unfinished, .. } => {
                assert!(!self.closed, "Closed twice");
                self.closed = true;
                for u in unfinished {
                    self.settle(u.token, &u.command);
                    self.report.handed_back += 1;
                }
                assert_eq!(
                    self.pending(),
                    0,
                    "Closed without handing back every command"
                );
                assert_eq!(
                    self.texts_done, self.texts_accepted,
                    "Closed with a text exchange unanswered"
                );
            }
            ConnectionEvent::LoggedIn { .. } => panic!("LoggedIn twice"),
            ConnectionEvent::Redirected { .. } => panic!("redirected in full feature phase"),
            ConnectionEvent::Target(_) => {}
        }
    }

    fn settle(&mut self, token: usize, command: &Command) {
        let entry = self
            .accepted
            .get_mut(token)
            .unwrap_or_else(|| panic!("token {token} was never accepted"));
        assert!(!entry.done, "command {token} completed twice");
        assert_eq!(&entry.command, command, "command {token} came back changed");
        entry.done = true;
    }

    /// After the stream: silence until every timer has run its course, then
    /// the socket closes. Returns what happened.
    pub fn finish(mut self) -> Report {
        self.report.closed_early = self.closed;
        self.report.pdus_received = self.conn.stats().pdus_received;
        self.advance(SILENCE);
        assert_eq!(
            self.pending(),
            0,
            "commands still outstanding after {SILENCE:?} of silence (state {:?})",
            self.conn.state()
        );
        assert_eq!(self.conn.outstanding_commands(), 0);
        self.conn.handle_disconnect("end of the fuzz input");
        self.drain(0, 1);
        assert!(self.closed, "no Closed event after a disconnect");
        assert_eq!(self.conn.state(), ConnectionState::Closed);
        self.report.texts = self.texts_done;
        self.report
    }
}

/// Points the target's codec at what the login agreed on.
fn configure(target: &mut TargetWire, params: &OperationalParams) {
    let digests = Digests {
        header: params.header_digest == Digest::Crc32c,
        data: params.data_digest == Digest::Crc32c,
    };
    target
        .decoder
        .configure(digests, crate::target::ANY_SEGMENT);
    target
        .encoder
        .configure(digests, params.max_recv_data_segment_length);
}

/// The data segment length of one of our PDUs.
fn pdu_data_len(pdu: &Pdu) -> usize {
    match pdu {
        Pdu::ScsiCommand(p) => p.data.len(),
        Pdu::DataOut(p) => p.data.len(),
        Pdu::NopOut(p) => p.data.len(),
        Pdu::TextRequest(p) => p.data.len(),
        Pdu::LoginRequest(p) => p.data.len(),
        _ => 0,
    }
}

/// The whole run of one input; `None` when it is too short to parse.
pub fn run(data: &[u8]) -> Option<Report> {
    let setup = Setup::parse(data)?;
    let mut h = Harness::logged_in(&setup, false);
    let sizes: Vec<usize> = setup.steps.iter().map(|s| s.chunk).collect();
    let pieces = chunks::cut(setup.stream, &sizes);
    for (i, piece) in pieces.iter().enumerate() {
        let step = setup
            .steps
            .get(i % setup.steps.len().max(1))
            .copied()
            .unwrap_or(Step {
                chunk: piece.len(),
                action: 0,
            });
        let before = h.conn.stats().pdus_received;
        h.feed(piece);
        let pdus_in = h.conn.stats().pdus_received - before;
        h.drain(pdus_in, 0);
        let moves = h.act(step.action);
        h.drain(0, moves);
        h.advance(step.time());
    }
    Some(h.finish())
}
