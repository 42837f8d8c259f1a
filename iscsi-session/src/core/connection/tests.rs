//! Sans-IO tests of the connection: PDUs and time in, PDUs and events out.
//!
//! [`Harness`] plays the target over the real codec: its PDUs are encoded
//! into the connection's receive buffer, and whatever the connection
//! transmits is decoded again, with the digests and limits the login agreed
//! on. Time only moves through [`Harness::advance`], which fires every timer
//! on the way as a driver would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, EncodedPdu, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, BHS_LEN, DataIn, DataInStatus, ISCSI_VERSION, Isid, Itt,
    LoginRequest, LoginResponse, LoginStatus, LogoutReason, LogoutResponse, LogoutResponseCode,
    Lun, NopIn, Opcode, Pdu, Reject, RejectReason, Residual, ScsiResponse, ServiceResponse, Stage,
    TaskMgmtResponse, TextResponse, TmfFunction, TmfResponse, Ttt,
};
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::{Digest, KeyValue, OperationalParams, TextLimits, parse_pairs};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::TargetEvent;
use super::{Connection, ConnectionState, MAX_TEXT_RESPONSE};

type Event = super::ConnectionEvent<()>;
use crate::core::command::{Command, Direction};
use crate::core::config::{DigestPreference, SessionConfig};
use crate::core::error::{Error, TaskFailure};
use crate::core::portal::Portal;

const TSIH: u16 = 0x0b0b;
/// The MaxRecvDataSegmentLength the target declares unless a test says otherwise.
const TARGET_MRDSL: &str = "65536";

fn config() -> SessionConfig {
    let mut config = SessionConfig::new(
        Portal::new("192.0.2.20", 3260),
        "iqn.2001-04.com.example:disk1",
        "iqn.2024-01.io.riscsi:host1",
    );
    // Keepalive only where a test is about it: its pings would interleave.
    config.timeouts.nop_interval = Duration::ZERO;
    config
}

fn lun(number: u16) -> Lun {
    Lun::from_number(number).expect("single-level LUN")
}

fn test_unit_ready(on: u16) -> Command {
    Command::new(lun(on), Cdb::test_unit_ready(), Direction::None)
}

fn read(on: u16, len: u32) -> Command {
    Command::new(
        lun(on),
        Cdb::read(0, len / 512, false),
        Direction::Read { expected_len: len },
    )
}

fn write(on: u16, len: usize) -> Command {
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    Command::new(
        lun(on),
        Cdb::write(0, (len / 512) as u32, false),
        Direction::Write {
            data: Bytes::from(data),
        },
    )
}

/// The target's text, written byte by byte without any checks.
fn text<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Bytes {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref().as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_ref().as_bytes());
        out.push(0);
    }
    Bytes::from(out)
}

fn pairs_of(data: &[u8]) -> Vec<KeyValue> {
    parse_pairs(data, TextLimits::DEFAULT).expect("our text parses")
}

/// A target's answers to our operational offers: each offer echoed (the
/// first item of a list), its own MaxRecvDataSegmentLength declared, then
/// `overrides` applied.
fn target_answers(offers: &LoginRequest, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs_of(&offers.data)
        .into_iter()
        .filter(|kv| kv.key != "MaxRecvDataSegmentLength")
        .map(|kv| {
            let first = kv.value.split(',').next().unwrap_or_default().to_owned();
            (kv.key, first)
        })
        .collect();
    out.push(("MaxRecvDataSegmentLength".into(), TARGET_MRDSL.into()));
    for (key, value) in overrides {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = (*value).to_owned(),
            None => out.push(((*key).to_owned(), (*value).to_owned())),
        }
    }
    out
}

/// The target's side of one connection, and the clock.
struct Harness {
    conn: Connection,
    /// Decodes what the initiator sends, as the target would.
    decoder: PduDecoder,
    /// Encodes what the target sends.
    encoder: PduEncoder,
    now: Instant,
    isid: Isid,
    /// StatSN of the target's next status-bearing PDU.
    stat_sn: u32,
    /// The target's ExpCmdSN: one past the last non-immediate command seen.
    exp_cmd_sn: u32,
    /// Commands the target accepts beyond ExpCmdSN - 1 (0: zero window).
    window: u32,
}

impl Harness {
    fn new(config: SessionConfig) -> Harness {
        let now = Instant::now();
        let isid = config.isid();
        let conn = Connection::with_rng(Arc::new(config), 0, now, StdRng::seed_from_u64(1));
        Harness {
            conn,
            decoder: PduDecoder::default(),
            encoder: PduEncoder::default(),
            now,
            isid,
            stat_sn: 1000,
            exp_cmd_sn: 1,
            window: 32,
        }
    }

    fn logged_in(config: SessionConfig) -> Harness {
        let mut h = Harness::new(config);
        h.login(&[]);
        h
    }

    fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(self.window).wrapping_sub(1)
    }

    fn next_stat_sn(&mut self) -> u32 {
        let sn = self.stat_sn;
        self.stat_sn = self.stat_sn.wrapping_add(1);
        sn
    }

    // ---- wire ----

    fn send(&mut self, pdu: impl Into<Pdu>) {
        let wire = self.wire(pdu);
        self.send_bytes(&wire);
    }

    /// A PDU of the target's, as its encoder puts it on the wire.
    fn wire(&self, pdu: impl Into<Pdu>) -> BytesMut {
        let mut wire = BytesMut::new();
        self.encoder
            .encode(&pdu.into(), &mut wire)
            .expect("the target's PDU encodes");
        wire
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.conn.receive(bytes, self.now);
    }

    /// What the connection transmits, as encoded.
    fn sent_raw(&mut self) -> Vec<EncodedPdu> {
        std::iter::from_fn(|| self.conn.poll_transmit()).collect()
    }

    /// What the connection transmits, decoded by the target's decoder.
    fn sent(&mut self) -> Vec<Pdu> {
        let mut wire = BytesMut::new();
        for pdu in self.sent_raw() {
            pdu.write_to(&mut wire);
        }
        let mut out = Vec::new();
        while let Some(pdu) = self
            .decoder
            .decode(&mut wire)
            .expect("the initiator's PDUs decode")
        {
            if let Pdu::ScsiCommand(cmd) = &pdu
                && !cmd.immediate
            {
                self.exp_cmd_sn = cmd.cmd_sn.wrapping_add(1);
            }
            out.push(pdu);
        }
        assert!(wire.is_empty(), "a partial PDU was transmitted");
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Moves the clock, firing each timer when it is due.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..10_000 {
            match self.conn.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.conn.handle_timeout(self.now);
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("timers keep firing without time passing");
    }

    fn submit(&mut self, command: Command) -> Itt {
        self.conn
            .submit(command, (), self.now)
            .expect("command accepted")
    }

    // ---- login ----

    fn login_response(&mut self, csg: Stage, nsg: Stage, tsih: u16, data: Bytes) -> LoginResponse {
        LoginResponse {
            transit: true,
            continue_: false,
            csg,
            nsg,
            version_max: ISCSI_VERSION,
            version_active: ISCSI_VERSION,
            isid: self.isid,
            tsih,
            itt: Itt(0),
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            status: LoginStatus::SUCCESS,
            data,
        }
    }

    fn one_login_request(&mut self) -> LoginRequest {
        match self.sent().as_slice() {
            [Pdu::LoginRequest(req)] => req.clone(),
            other => panic!("expected one Login Request, got {other:?}"),
        }
    }

    /// A plain login (no authentication); the target answers our offers with
    /// [`target_answers`]. Afterwards the harness codec uses the agreed
    /// digests and limits, as the target's would.
    fn login(&mut self, overrides: &[(&str, &str)]) -> OperationalParams {
        let first = self.one_login_request();
        assert_eq!(first.csg, Stage::Security);
        let resp = self.login_response(
            Stage::Security,
            Stage::Operational,
            0,
            text(&[("AuthMethod", "None")]),
        );
        self.send(resp);
        let offers = self.one_login_request();
        assert_eq!(offers.csg, Stage::Operational);
        let answers = text(&target_answers(&offers, overrides));
        let resp = self.login_response(Stage::Operational, Stage::FullFeature, TSIH, answers);
        self.send(resp);
        let params = match self.events().as_slice() {
            [Event::LoggedIn { params, tsih }] => {
                assert_eq!(*tsih, TSIH);
                params.clone()
            }
            other => panic!("expected LoggedIn, got {other:?}"),
        };
        assert_eq!(self.conn.state(), ConnectionState::FullFeature);
        let digests = Digests {
            header: params.header_digest == Digest::Crc32c,
            data: params.data_digest == Digest::Crc32c,
        };
        self.decoder
            .configure(digests, params.max_xmit_data_segment_length);
        self.encoder
            .configure(digests, params.max_recv_data_segment_length);
        params
    }

    // ---- the target's PDUs ----

    fn scsi_response(&mut self, itt: Itt) -> ScsiResponse {
        ScsiResponse {
            response: ServiceResponse::CompletedAtTarget,
            status: 0,
            itt,
            snack_tag: 0,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            exp_data_sn: 0,
            bidi_read_residual: Residual::None,
            residual: Residual::None,
            data: Bytes::new(),
        }
    }

    /// NOP-In: the answer to our ping (ITT set), or with both tags reserved
    /// a bare window update, or with a TTT the target's own ping.
    fn nop_in(&mut self, itt: Itt, ttt: Ttt) -> NopIn {
        // §11.19: StatSN advances only when the NOP-In answers a NOP-Out.
        let stat_sn = if itt.is_reserved() {
            self.stat_sn
        } else {
            self.next_stat_sn()
        };
        NopIn {
            lun: Lun::default(),
            itt,
            ttt,
            stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data: Bytes::new(),
        }
    }

    fn tmf_response(&mut self, itt: Itt, response: TmfResponse) -> TaskMgmtResponse {
        TaskMgmtResponse {
            response,
            itt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
        }
    }

    fn text_response(&mut self, itt: Itt, ttt: Ttt, more: bool, data: Bytes) -> TextResponse {
        TextResponse {
            final_: !more,
            continue_: more,
            lun: Lun::default(),
            itt,
            ttt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data,
        }
    }

    fn data_in(&mut self, itt: Itt, data_sn: u32, offset: u32, len: usize) -> DataIn {
        DataIn {
            final_: false,
            acknowledge: false,
            status: None,
            lun: lun(1),
            itt,
            ttt: Ttt::RESERVED,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data_sn,
            buffer_offset: offset,
            data: Bytes::from(vec![0xd5; len]),
        }
    }

    fn async_message(&mut self, event: AsyncEvent, parameter2: u16) -> AsyncMessage {
        AsyncMessage {
            lun: Lun::default(),
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            event,
            vcode: 0,
            parameter1: 0,
            parameter2,
            parameter3: 0,
            data: Bytes::new(),
        }
    }

    fn logout_response(&mut self, itt: Itt) -> LogoutResponse {
        LogoutResponse {
            response: LogoutResponseCode::Success,
            itt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            time2wait: 0,
            time2retain: 0,
        }
    }
}

/// The ITT and CmdSN of each SCSI Command PDU among `pdus`.
fn commands(pdus: &[Pdu]) -> Vec<(Itt, u32)> {
    pdus.iter()
        .filter_map(|p| match p {
            Pdu::ScsiCommand(c) => Some((c.itt, c.cmd_sn)),
            _ => None,
        })
        .collect()
}

/// The one `Closed` event: its error and the ITTs handed back.
fn closed(events: &[Event]) -> (Option<Error>, Vec<Itt>) {
    let mut found = events.iter().filter_map(|e| match e {
        Event::Closed { error, unfinished } => Some((
            error.clone(),
            unfinished.iter().map(|u| u.itt).collect::<Vec<_>>(),
        )),
        _ => None,
    });
    let first = found.next().expect("the connection closed");
    assert!(found.next().is_none(), "closed twice: {events:?}");
    first
}

fn completion(events: &[Event], task: Itt) -> Result<(), TaskFailure> {
    events
        .iter()
        .find_map(|e| match e {
            Event::CommandComplete { itt: t, result, .. } if *t == task => {
                Some(result.clone().map(|_| ()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completion for {task} in {events:?}"))
}

/// A login the target never finishes ends at the login timeout.
#[test]
fn silent_target_fails_the_login_at_its_timeout() {
    let mut cfg = config();
    cfg.timeouts.login = Duration::from_secs(15);
    let mut h = Harness::new(cfg);
    assert!(matches!(h.sent().as_slice(), [Pdu::LoginRequest(_)]));
    h.advance(Duration::from_millis(14_999));
    assert_eq!(h.conn.state(), ConnectionState::LoggingIn);
    h.advance(Duration::from_millis(1));
    let (error, _) = closed(&h.events());
    assert!(
        matches!(error, Some(Error::Timeout { what: "login", .. })),
        "{error:?}"
    );
    assert!(h.conn.submit(test_unit_ready(0), (), h.now).is_err());
}

/// RFC 7143 §13.1 and §11.2.1 (digests follow the header and the data
/// segment from the first full-feature PDU on) and §7.8 (a digest error
/// leaves the connection untrustworthy at ErrorRecoveryLevel 0).
/// UNH-IOL: Login #9.3
#[test]
fn negotiated_crc32c_digests_are_applied_after_login() {
    use iscsi_proto::digest::{crc32c, to_wire};

    let mut cfg = config();
    cfg.operational.header_digest = DigestPreference::Crc32c;
    cfg.operational.data_digest = DigestPreference::Crc32c;
    let mut h = Harness::new(cfg);
    let params = h.login(&[]);
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::Crc32c, Digest::Crc32c)
    );

    h.submit(write(0, 1024));
    let raw = h.sent_raw();
    let [cmd] = raw.as_slice() else {
        panic!("expected one PDU, got {raw:?}")
    };
    assert_eq!(cmd.header.len(), BHS_LEN + 4);
    assert_eq!(
        cmd.header[BHS_LEN..],
        to_wire(crc32c(&cmd.header[..BHS_LEN]))
    );
    assert_eq!(cmd.data.len(), 1024);
    assert_eq!(cmd.trailer(), to_wire(crc32c(&cmd.data)));

    // A target PDU whose header digest is wrong fails the connection.
    let mut wire = BytesMut::new();
    let nop = h.nop_in(Itt::RESERVED, Ttt::RESERVED);
    h.encoder
        .encode(&Pdu::NopIn(nop), &mut wire)
        .expect("NOP-In encodes");
    wire[BHS_LEN] ^= 0x01;
    h.send_bytes(&wire);
    let (error, unfinished) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert_eq!(unfinished.len(), 1);
}

/// RFC 7143 §7.8: PDUs without digests on a connection that agreed on them
/// are refused too (the bytes where a digest belongs do not match).
#[test]
fn target_pdus_without_digests_fail_the_connection() {
    let mut cfg = config();
    cfg.operational.header_digest = DigestPreference::Crc32c;
    let mut h = Harness::new(cfg);
    h.login(&[]);
    let plain = PduEncoder::default();
    let mut wire = BytesMut::new();
    for _ in 0..2 {
        let nop = h.nop_in(Itt::RESERVED, Ttt::RESERVED);
        plain
            .encode(&Pdu::NopIn(nop), &mut wire)
            .expect("NOP-In encodes");
    }
    h.send_bytes(&wire);
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert_eq!(h.conn.state(), ConnectionState::Closed);
}

/// RFC 7143 §4.2.2.1: commands wait for CmdSN <= MaxCmdSN and go out when
/// a response opens the window; §4.2.2.2: ExpStatSN acknowledges StatSN.
/// UNH-IOL: FFP #1.1, FFP #3.3
#[test]
fn commands_beyond_max_cmd_sn_wait_for_the_window() {
    let mut h = Harness::new(config());
    h.window = 1;
    h.login(&[]);
    let a = h.submit(test_unit_ready(0));
    let b = h.submit(test_unit_ready(0));
    let c = h.submit(test_unit_ready(0));
    let pdus = h.sent();
    assert_eq!(commands(&pdus), vec![(a, 1)]);
    let Pdu::ScsiCommand(first) = &pdus[0] else {
        unreachable!()
    };
    assert!(!first.immediate);
    assert_eq!(
        first.exp_stat_sn, h.stat_sn,
        "acknowledges the login response"
    );
    assert_eq!(h.conn.outstanding_commands(), 3);

    h.window = 2;
    let resp = h.scsi_response(a);
    let acknowledged = resp.stat_sn + 1;
    h.send(resp);
    assert!(completion(&h.events(), a).is_ok());
    let pdus = h.sent();
    assert_eq!(commands(&pdus), vec![(b, 2), (c, 3)]);
    for pdu in &pdus {
        let Pdu::ScsiCommand(cmd) = pdu else {
            unreachable!()
        };
        assert_eq!(cmd.exp_stat_sn, acknowledged);
    }
}

/// RFC 7143 §4.2.2.1: immediate PDUs (NOP-Out, task management, logout) go
/// out whatever the window and carry the next CmdSN without consuming it.
/// UNH-IOL: FFP #2.1, FFP #2.2, FFP #3.1, FFP #19.1
#[test]
fn immediate_pdus_ignore_a_zero_window_and_do_not_consume_cmd_sn() {
    let mut cfg = config();
    cfg.timeouts.nop_interval = Duration::from_secs(5);
    let mut h = Harness::new(cfg);
    h.window = 1;
    h.login(&[]);
    let a = h.submit(test_unit_ready(1).with_timeout(Duration::from_secs(6)));
    assert_eq!(commands(&h.sent()), vec![(a, 1)]);
    // A used the only CmdSN: the window is now zero (MaxCmdSN = ExpCmdSN - 1),
    // and §4.2.2.1 does not let a target shrink it below what it granted.
    h.window = 0;
    let b = h.submit(test_unit_ready(1));
    assert!(h.sent().is_empty(), "B waits for the window");

    h.advance(Duration::from_secs(5));
    let ping = match h.sent().as_slice() {
        [Pdu::NopOut(nop)] => nop.clone(),
        other => panic!("expected a NOP-Out, got {other:?}"),
    };
    assert!(ping.immediate);
    assert_eq!(ping.cmd_sn, 2);
    let reply = h.nop_in(ping.itt, Ttt::RESERVED);
    h.send(reply);

    h.advance(Duration::from_secs(1));
    let abort = match h.sent().as_slice() {
        [Pdu::TaskMgmtRequest(tmf)] => tmf.clone(),
        other => panic!("expected ABORT TASK, got {other:?}"),
    };
    assert!(abort.immediate);
    assert_eq!(abort.cmd_sn, 2);

    // The window opens by one: B takes the CmdSN no immediate PDU used,
    // and closes it again.
    h.window = 1;
    let update = h.nop_in(Itt::RESERVED, Ttt::RESERVED);
    h.send(update);
    assert_eq!(commands(&h.sent()), vec![(b, 2)]);

    h.conn.start_logout(h.now);
    match h.sent().as_slice() {
        [Pdu::LogoutRequest(logout)] => {
            assert!(logout.immediate);
            assert_eq!(logout.cmd_sn, 3);
        }
        other => panic!("expected a Logout Request, got {other:?}"),
    }
}

/// The configured queue depth bounds commands in flight whatever the window.
#[test]
fn queue_depth_holds_the_fifth_command() {
    let mut cfg = config();
    cfg.queue_depth = 4;
    let mut h = Harness::logged_in(cfg);
    let itts: Vec<Itt> = (0..5).map(|_| h.submit(test_unit_ready(0))).collect();
    let sent: Vec<Itt> = commands(&h.sent()).into_iter().map(|(i, _)| i).collect();
    assert_eq!(sent, itts[..4]);
    assert_eq!(h.conn.outstanding_commands(), 5);

    let resp = h.scsi_response(itts[2]);
    h.send(resp);
    assert_eq!(commands(&h.sent()), vec![(itts[4], 5)]);
    assert_eq!(h.conn.outstanding_commands(), 4);
}

/// A target answering a command that already ended, after its slot in the
/// task table went to a new command, names the old generation: the answer
/// is ignored and the new command is neither completed nor disturbed by it.
#[test]
fn a_late_answer_never_completes_the_command_that_reused_its_slot() {
    let mut h = Harness::logged_in(config());
    let first = h.submit(test_unit_ready(0));
    h.sent();
    let resp = h.scsi_response(first);
    h.send(resp);
    assert_eq!(h.events().len(), 1);
    // One command at a time until the first one's slot comes round again.
    let mut reused = None;
    for _ in 0..1000 {
        let itt = h.submit(test_unit_ready(0));
        h.sent();
        if itt.0 & 0xffff == first.0 & 0xffff {
            reused = Some(itt);
            break;
        }
        let resp = h.scsi_response(itt);
        h.send(resp);
        h.events();
    }
    let reused = reused.expect("the slot is reused");
    assert_ne!(reused, first);

    let late = h.scsi_response(first);
    h.send(late);
    assert!(h.events().is_empty(), "the late answer ends nothing");
    assert!(h.conn.tasks.get(reused).is_some());
    assert_eq!(h.conn.outstanding_commands(), 1);

    let resp = h.scsi_response(reused);
    h.send(resp);
    match h.events().as_slice() {
        [Event::CommandComplete { itt, result, .. }] => {
            assert_eq!(*itt, reused);
            assert!(result.is_ok());
        }
        other => panic!("expected the command to complete, got {other:?}"),
    }
}

/// RFC 7143 §7.5 and §11.5: a command past its deadline is aborted with
/// ABORT TASK naming its ITT and CmdSN; "function complete" ends it as timed
/// out.
/// UNH-IOL: FFP #19.1, FFP #19.2, FFP #19.3
#[test]
fn command_timeout_aborts_the_task() {
    let mut h = Harness::logged_in(config());
    let timeout = Duration::from_secs(10);
    let other = h.submit(test_unit_ready(1));
    let late = h.submit(read(1, 4096).with_timeout(timeout));
    let cmd_sns = commands(&h.sent());
    assert_eq!(cmd_sns, vec![(other, 1), (late, 2)]);

    h.advance(timeout - Duration::from_millis(1));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(1));
    let abort = match h.sent().as_slice() {
        [Pdu::TaskMgmtRequest(tmf)] => tmf.clone(),
        other => panic!("expected ABORT TASK, got {other:?}"),
    };
    assert_eq!(abort.function, TmfFunction::AbortTask);
    assert_eq!(abort.lun, lun(1));
    assert_eq!(abort.referenced_task_tag, late);
    assert_eq!(abort.ref_cmd_sn, 2);
    assert!(abort.immediate);
    assert_ne!(abort.itt, late);

    let done = h.tmf_response(abort.itt, TmfResponse::FunctionComplete);
    h.send(done);
    let events = h.events();
    assert_eq!(
        completion(&events, late),
        Err(TaskFailure::Timeout(timeout))
    );
    assert_eq!(
        events.len(),
        1,
        "the other command is untouched: {events:?}"
    );
    // A status arriving after the abort belongs to no task any more.
    let stale = h.scsi_response(late);
    h.send(stale);
    assert!(h.events().is_empty());
    assert_eq!(h.conn.outstanding_commands(), 1);
}

/// Submits A (timed out soon) and B on LUN 1, C on LUN 2, and D, which the
/// queue depth of 3 holds back; returns them once ABORT TASK for A is out.
fn abort_in_progress(h: &mut Harness) -> [Itt; 4] {
    let a = h.submit(test_unit_ready(1).with_timeout(Duration::from_secs(10)));
    let b = h.submit(test_unit_ready(1));
    let c = h.submit(test_unit_ready(2));
    let d = h.submit(test_unit_ready(1));
    assert_eq!(commands(&h.sent()).len(), 3);
    h.advance(Duration::from_secs(10));
    assert!(matches!(
        h.sent().as_slice(),
        [Pdu::TaskMgmtRequest(t)] if t.function == TmfFunction::AbortTask
    ));
    [a, b, c, d]
}

fn escalation_config() -> SessionConfig {
    let mut cfg = config();
    cfg.queue_depth = 3;
    cfg.timeouts.task_management = Duration::from_secs(5);
    cfg
}

/// RFC 7143 §11.5.1 and §11.5.4: an unanswered ABORT TASK escalates to
/// LOGICAL UNIT RESET (Referenced Task Tag reserved); its completion ends
/// the timed-out command as Timeout and the others on the LU as Reset.
/// UNH-IOL: FFP #19.2
#[test]
fn unanswered_abort_escalates_to_logical_unit_reset() {
    let mut h = Harness::logged_in(escalation_config());
    let [a, b, _, d] = abort_in_progress(&mut h);

    h.advance(Duration::from_secs(5));
    let reset = match h.sent().as_slice() {
        [Pdu::TaskMgmtRequest(tmf)] => tmf.clone(),
        other => panic!("expected LOGICAL UNIT RESET, got {other:?}"),
    };
    assert_eq!(reset.function, TmfFunction::LogicalUnitReset);
    assert_eq!(reset.lun, lun(1));
    assert!(reset.immediate);
    assert_eq!(
        reset.referenced_task_tag,
        Itt::RESERVED,
        "§11.5.4: only ABORT TASK and TASK REASSIGN name a task"
    );
    assert_eq!(reset.ref_cmd_sn, 0, "§11.5.5: reserved for LU reset");

    let done = h.tmf_response(reset.itt, TmfResponse::FunctionComplete);
    h.send(done);
    let events = h.events();
    assert_eq!(
        completion(&events, a),
        Err(TaskFailure::Timeout(Duration::from_secs(10)))
    );
    assert_eq!(completion(&events, b), Err(TaskFailure::Reset));
    assert_eq!(
        events.len(),
        2,
        "C (LUN 2) and D (not sent) live on: {events:?}"
    );
    // D was never sent, so the reset did not touch it: it goes out now.
    assert_eq!(
        commands(&h.sent())
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        vec![d]
    );
    assert_eq!(h.conn.outstanding_commands(), 2);
}

/// RFC 7143 §7.5: when even the LU reset goes unanswered the connection is
/// dropped; the command that timed out fails with its timeout (replaying it
/// would only time out again), every other unfinished command comes back in
/// submission order.
#[test]
fn unanswered_logical_unit_reset_closes_with_every_command_unfinished() {
    let mut h = Harness::logged_in(escalation_config());
    let [a, b, c, d] = abort_in_progress(&mut h);
    h.advance(Duration::from_secs(5));
    assert!(matches!(
        h.sent().as_slice(),
        [Pdu::TaskMgmtRequest(t)] if t.function == TmfFunction::LogicalUnitReset
    ));
    h.advance(Duration::from_secs(5));
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::CommandComplete { itt: task, result: Err(TaskFailure::Timeout(_)), .. } if *task == a
        )),
        "{events:?}"
    );
    let (error, unfinished) = closed(&events);
    assert!(
        matches!(
            error,
            Some(Error::Timeout {
                what: "task management",
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(unfinished, vec![b, c, d]);
    assert_eq!(h.conn.state(), ConnectionState::Closed);
    assert_eq!(h.conn.poll_timeout(), None);
}

/// RFC 7143 §4.2.2.1: a command the window never let out times out without
/// a PDU: there is nothing at the target to abort.
#[test]
fn command_waiting_for_the_window_times_out_without_a_pdu() {
    let mut h = Harness::new(config());
    h.window = 0;
    h.login(&[]);
    let timeout = Duration::from_secs(3);
    let a = h.submit(read(0, 512).with_timeout(timeout));
    h.advance(timeout);
    assert_eq!(
        completion(&h.events(), a),
        Err(TaskFailure::Timeout(timeout))
    );
    assert!(h.sent().is_empty());
    assert_eq!(h.conn.outstanding_commands(), 0);
    assert_eq!(h.conn.state(), ConnectionState::FullFeature);
}

fn keepalive_config() -> SessionConfig {
    let mut cfg = config();
    cfg.timeouts.nop_interval = Duration::from_secs(5);
    cfg.timeouts.nop_timeout = Duration::from_secs(10);
    cfg
}

/// RFC 7143 §11.18 and §11.19: after `nop_interval` of silence a NOP-Out
/// ping (ITT set, TTT reserved, immediate) goes out; a NOP-In answering it
/// clears it; a ping left unanswered for `nop_timeout` kills the connection.
/// UNH-IOL: FFP #15.2
#[test]
fn nop_keepalive_pings_and_declares_a_silent_target_dead() {
    let mut h = Harness::logged_in(keepalive_config());
    h.advance(Duration::from_millis(4999));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(1));
    let ping = match h.sent().as_slice() {
        [Pdu::NopOut(nop)] => nop.clone(),
        other => panic!("expected a NOP-Out, got {other:?}"),
    };
    assert!(!ping.itt.is_reserved());
    assert_eq!(ping.ttt, Ttt::RESERVED);
    assert!(ping.immediate);

    h.advance(Duration::from_secs(2));
    let reply = h.nop_in(ping.itt, Ttt::RESERVED);
    h.send(reply);
    // Answered: nothing until the next idle interval, then a fresh ping.
    h.advance(Duration::from_millis(4999));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(1));
    let second = match h.sent().as_slice() {
        [Pdu::NopOut(nop)] => nop.clone(),
        other => panic!("expected a second NOP-Out, got {other:?}"),
    };
    assert_ne!(second.itt, ping.itt);

    h.advance(Duration::from_millis(9999));
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(1));
    let (error, _) = closed(&h.events());
    assert!(
        matches!(
            error,
            Some(Error::Timeout {
                what: "NOP-Out ping",
                ..
            })
        ),
        "{error:?}"
    );
}

/// RFC 7143 §11.19: any PDU from the target shows it alive and restarts the
/// idle interval, so a busy connection is never pinged.
#[test]
fn any_received_pdu_postpones_the_ping() {
    let mut h = Harness::logged_in(keepalive_config());
    h.advance(Duration::from_secs(4));
    let scsi_event = h.async_message(AsyncEvent::ScsiEvent, 0);
    h.send(scsi_event);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Target(TargetEvent::ScsiEvent { .. })]
    ));
    h.advance(Duration::from_millis(4999));
    assert!(
        h.sent().is_empty(),
        "pinged although the target spoke 5 s ago"
    );
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.sent().as_slice(), [Pdu::NopOut(_)]));
}

/// RFC 7143 §11.18.1 and §11.19.1: the target's own ping (ITT reserved, TTT
/// set) is answered with a NOP-Out echoing the TTT and its data.
/// UNH-IOL: FFP #15.1
#[test]
fn target_ping_is_answered_with_its_ttt() {
    let mut h = Harness::logged_in(config());
    let mut ping = h.nop_in(Itt::RESERVED, Ttt(0x5151));
    ping.data = Bytes::from_static(b"echo me!");
    h.send(ping);
    match h.sent().as_slice() {
        [Pdu::NopOut(nop)] => {
            assert_eq!(nop.ttt, Ttt(0x5151));
            assert!(nop.itt.is_reserved());
            assert!(nop.immediate);
            assert_eq!(&nop.data[..], b"echo me!");
        }
        other => panic!("expected a NOP-Out, got {other:?}"),
    }
}

/// RFC 7143 §4.2.2.3 and §11.7.4–§11.7.6: with DataPDUInOrder=Yes each Data-In
/// continues the last (DataSN, Buffer Offset) and stays within the expected
/// length; a violation drops the connection and hands every command back.
#[test]
fn data_in_protocol_violations_close_the_connection() {
    type Feed = fn(&mut Harness, Itt) -> Vec<DataIn>;
    let cases: [(&str, Feed); 4] = [
        ("DataSN skips", |h, itt| vec![h.data_in(itt, 1, 0, 512)]),
        ("DataSN repeats", |h, itt| {
            vec![h.data_in(itt, 0, 0, 512), h.data_in(itt, 0, 512, 512)]
        }),
        ("offset leaves a hole", |h, itt| {
            vec![h.data_in(itt, 0, 512, 512)]
        }),
        ("more data than expected", |h, itt| {
            vec![h.data_in(itt, 0, 0, 1024), h.data_in(itt, 1, 1024, 4)]
        }),
    ];
    for (what, feed) in cases {
        let mut h = Harness::logged_in(config());
        let a = h.submit(read(1, 1024));
        let b = h.submit(test_unit_ready(1));
        assert_eq!(commands(&h.sent()).len(), 2);
        for din in feed(&mut h, a) {
            h.send(din);
        }
        let (error, unfinished) = closed(&h.events());
        assert!(
            matches!(error, Some(Error::Protocol { .. })),
            "{what}: {error:?}"
        );
        assert_eq!(unfinished, vec![a, b], "{what}");
    }
}

/// The well-formed counterpart of the cases above: Data-In in order, the
/// status in the last one.
/// UNH-IOL: FFP #10.1
#[test]
fn data_in_in_order_completes_the_read() {
    let mut h = Harness::logged_in(config());
    let a = h.submit(read(1, 1024));
    h.sent();
    let first = h.data_in(a, 0, 0, 512);
    h.send(first);
    let mut last = h.data_in(a, 1, 512, 512);
    last.final_ = true;
    last.status = Some(DataInStatus {
        status: 0,
        stat_sn: h.next_stat_sn(),
        residual: Residual::None,
    });
    h.send(last);
    let events = h.events();
    match events.as_slice() {
        [
            Event::CommandComplete {
                itt: task,
                result: Ok(outcome),
                ..
            },
        ] => {
            assert_eq!(*task, a);
            assert_eq!(outcome.data.len(), 1024);
        }
        other => panic!("expected the read to complete, got {other:?}"),
    }
}

/// RFC 7143 §11.9.1 (AsyncEvent 2): the target drops the connection;
/// Parameter2 is Time2Wait.
/// UNH-IOL: FFP #20.2
#[test]
fn async_drop_connection_closes_with_time2wait() {
    let mut h = Harness::logged_in(config());
    let a = h.submit(read(1, 512));
    h.sent();
    let dropping = h.async_message(AsyncEvent::DropConnection, 7);
    h.send(dropping);
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Target(TargetEvent::DroppingConnection { time2wait })
                if *time2wait == Duration::from_secs(7)
        )),
        "{events:?}"
    );
    let (error, unfinished) = closed(&events);
    assert!(
        matches!(error, Some(Error::ConnectionLost { .. })),
        "{error:?}"
    );
    assert_eq!(unfinished, vec![a]);
}

/// RFC 7143 §11.9.1 (AsyncEvent 4) and §6.4: asked to renegotiate, we offer
/// MaxRecvDataSegmentLength in a Text Request; the target's new declaration
/// bounds every later data segment we send.
/// UNH-IOL: FFP #11.1.1, FFP #20.4
#[test]
fn renegotiated_max_recv_data_segment_length_bounds_data_out() {
    let mut h = Harness::new(config());
    let params = h.login(&[("FirstBurstLength", "65536")]);
    assert_eq!(params.max_xmit_data_segment_length, 65536);
    // Before: the whole 16 KiB write rides in the command as immediate data.
    h.submit(write(0, 16384));
    match h.sent().as_slice() {
        [Pdu::ScsiCommand(cmd)] => assert_eq!(cmd.data.len(), 16384),
        other => panic!("expected one SCSI Command, got {other:?}"),
    }

    let renegotiate = h.async_message(AsyncEvent::RenegotiateParameters, 0);
    h.send(renegotiate);
    let request = match h.sent().as_slice() {
        [Pdu::TextRequest(req)] => req.clone(),
        other => panic!("expected a Text Request, got {other:?}"),
    };
    assert_eq!(
        pairs_of(&request.data),
        vec![KeyValue::new("MaxRecvDataSegmentLength", "262144")]
    );
    assert!(request.final_ && request.ttt.is_reserved());
    let answer = h.text_response(
        request.itt,
        Ttt::RESERVED,
        false,
        text(&[("MaxRecvDataSegmentLength", "4096")]),
    );
    h.send(answer);
    assert!(h.events().is_empty(), "renegotiation is internal");
    // The target's decoder now refuses anything above 4096.
    let digests = h.decoder.digests();
    h.decoder.configure(digests, 4096);

    h.submit(write(0, 16384));
    let pdus = h.sent();
    let mut covered = 0;
    for pdu in &pdus {
        let (offset, len) = match pdu {
            Pdu::ScsiCommand(cmd) => (0, cmd.data.len()),
            Pdu::DataOut(d) => (d.buffer_offset as usize, d.data.len()),
            other => panic!("unexpected {other:?}"),
        };
        assert!(len <= 4096, "{len}-byte segment after renegotiating 4096");
        assert_eq!(offset, covered);
        covered += len;
    }
    assert_eq!(covered, 16384);
    assert_eq!(pdus.len(), 4);
}

/// RFC 7143 §11.10.2 and §11.11.2: a Text Response with F=0 and a TTT asks
/// for an empty continuation request echoing the TTT; the text is
/// delivered whole, even when a pair spans the two responses.
/// UNH-IOL: FFP #18.3.2
#[test]
fn continued_text_response_is_requested_and_assembled() {
    let mut h = Harness::logged_in(config());
    let task = h
        .conn
        .submit_text(&[("SendTargets", "All")], h.now)
        .expect("text accepted");
    let request = match h.sent().as_slice() {
        [Pdu::TextRequest(req)] => req.clone(),
        other => panic!("expected a Text Request, got {other:?}"),
    };
    assert_eq!(request.itt, task);
    assert_eq!(
        pairs_of(&request.data),
        vec![KeyValue::new("SendTargets", "All")]
    );

    let whole = text(&[
        ("TargetName", "iqn.2001-04.com.example:disk1"),
        ("TargetAddress", "192.0.2.20:3260,1"),
    ]);
    let cut = 20; // inside the first value
    let first = h.text_response(task, Ttt(0x77), true, whole.slice(..cut));
    h.send(first);
    match h.sent().as_slice() {
        [Pdu::TextRequest(more)] => {
            assert_eq!(more.itt, task);
            assert_eq!(more.ttt, Ttt(0x77));
            assert!(more.data.is_empty());
            assert!(more.final_);
        }
        other => panic!("expected an empty Text Request, got {other:?}"),
    }
    assert!(h.events().is_empty());

    let rest = h.text_response(task, Ttt::RESERVED, false, whole.slice(cut..));
    h.send(rest);
    match h.events().as_slice() {
        [
            Event::TextComplete {
                itt: t,
                result: Ok(pairs),
            },
        ] => {
            assert_eq!(*t, task);
            assert_eq!(
                *pairs,
                vec![
                    KeyValue::new("TargetName", "iqn.2001-04.com.example:disk1"),
                    KeyValue::new("TargetAddress", "192.0.2.20:3260,1"),
                ]
            );
        }
        other => panic!("expected TextComplete, got {other:?}"),
    }
}

/// A target that keeps a text answer going past MAX_TEXT_RESPONSE bytes is
/// hostile: the connection closes with a protocol error.
#[test]
fn text_response_over_the_limit_is_a_protocol_error() {
    let mut h = Harness::logged_in(config());
    let task = h
        .conn
        .submit_text(&[("SendTargets", "All")], h.now)
        .expect("text accepted");
    h.sent();
    let segment = 256 * 1024;
    let chunk = Bytes::from(vec![b'a'; segment]);
    for _ in 0..MAX_TEXT_RESPONSE / segment {
        let more = h.text_response(task, Ttt(1), true, chunk.clone());
        h.send(more);
        assert!(
            matches!(h.sent().as_slice(), [Pdu::TextRequest(r)] if r.data.is_empty()),
            "each piece up to the limit is asked for"
        );
    }
    let over = h.text_response(task, Ttt(1), true, Bytes::from_static(b"a"));
    h.send(over);
    let events = h.events();
    let (error, _) = closed(&events);
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::TextComplete { itt: t, result: Err(_) } if *t == task
        )),
        "the text task is failed: {events:?}"
    );
}

/// RFC 7143 §11.14 and §11.15: logout closes the session; the response
/// ends the connection cleanly.
/// UNH-IOL: FFP #17.1
#[test]
fn logout_closes_cleanly() {
    let mut h = Harness::logged_in(config());
    h.conn.start_logout(h.now);
    let request = match h.sent().as_slice() {
        [Pdu::LogoutRequest(req)] => req.clone(),
        other => panic!("expected a Logout Request, got {other:?}"),
    };
    assert_eq!(request.reason, LogoutReason::CloseSession);
    assert!(request.immediate);
    assert_eq!(h.conn.state(), ConnectionState::LoggingOut);
    assert!(h.conn.submit(test_unit_ready(0), (), h.now).is_err());

    let resp = h.logout_response(request.itt);
    h.send(resp);
    let (error, unfinished) = closed(&h.events());
    assert!(error.is_none(), "{error:?}");
    assert!(unfinished.is_empty());
    assert_eq!(h.conn.state(), ConnectionState::Closed);
}

/// RFC 7143 §11.15: a Logout Response answers our Logout Request only. One
/// carrying a SCSI command's ITT must neither end the connection as a clean
/// logout nor make the command vanish.
#[test]
fn logout_response_for_a_command_loses_nothing() {
    let mut h = Harness::logged_in(config());
    let a = h.submit(read(1, 512));
    h.sent();
    let stray = h.logout_response(a);
    h.send(stray);
    let events = h.events();
    if h.conn.state() == ConnectionState::Closed {
        let (error, unfinished) = closed(&events);
        assert!(error.is_some(), "closed as a clean logout: {events:?}");
        assert_eq!(unfinished, vec![a]);
    } else {
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(h.conn.outstanding_commands(), 1);
    }
}

/// A Reject whose data segment is the header of one of "our" PDUs.
fn reject_of(h: &mut Harness, opcode: Opcode, itt: Itt) -> Reject {
    let mut header = [0u8; BHS_LEN];
    header[0] = opcode.code();
    header[16..20].copy_from_slice(&itt.0.to_be_bytes());
    Reject {
        reason: RejectReason::ProtocolError,
        stat_sn: h.next_stat_sn(),
        exp_cmd_sn: h.exp_cmd_sn,
        max_cmd_sn: h.max_cmd_sn(),
        data_sn_or_r2t_sn: 0,
        data: Bytes::copy_from_slice(&header),
    }
}

/// `Err` unless `task` is tracked, or was reported exactly once with the
/// event its kind calls for.
fn not_lost(h: &Harness, events: &[Event], task: Itt, text: bool) -> Result<(), String> {
    let reported = events
        .iter()
        .filter(|e| match e {
            Event::CommandComplete { itt: t, .. } => !text && *t == task,
            Event::TextComplete { itt: t, .. } => text && *t == task,
            Event::Closed { unfinished, .. } => !text && unfinished.iter().any(|u| u.itt == task),
            _ => false,
        })
        .count();
    let tracked = h.conn.tasks.get(task).is_some();
    if reported + usize::from(tracked) == 1 {
        Ok(())
    } else {
        Err(format!("{task} tracked: {tracked}, events: {events:?}"))
    }
}

/// A target PDU naming one of our tasks by ITT may only act on a task of
/// the kind it answers (RFC 7143 §11.6, §11.15, §11.17, §11.19); any other
/// task stays tracked or is reported, never silently dropped.
#[test]
fn responses_naming_a_task_of_another_kind_lose_nothing() {
    type Stray = fn(&mut Harness, Itt) -> Pdu;
    let on_command: [(&str, Stray); 6] = [
        ("TMF Response", |h, itt| {
            h.tmf_response(itt, TmfResponse::FunctionComplete).into()
        }),
        ("Logout Response", |h, itt| h.logout_response(itt).into()),
        ("NOP-In", |h, itt| h.nop_in(itt, Ttt::RESERVED).into()),
        ("Text Response", |h, itt| {
            h.text_response(itt, Ttt::RESERVED, false, Bytes::new())
                .into()
        }),
        ("Reject of a NOP-Out", |h, itt| {
            reject_of(h, Opcode::NopOut, itt).into()
        }),
        ("Reject of a Text Request", |h, itt| {
            reject_of(h, Opcode::TextRequest, itt).into()
        }),
    ];
    let mut lost = Vec::new();
    for (what, stray) in on_command {
        let mut h = Harness::logged_in(config());
        let a = h.submit(read(1, 512));
        h.sent();
        let pdu = stray(&mut h, a);
        h.send(pdu);
        let events = h.events();
        if let Err(e) = not_lost(&h, &events, a, false) {
            lost.push(format!("{what} naming a SCSI command: {e}"));
        }
    }

    let on_text: [(&str, Stray); 3] = [
        ("Reject of a SCSI Command", |h, itt| {
            reject_of(h, Opcode::ScsiCommand, itt).into()
        }),
        ("SCSI Response", |h, itt| h.scsi_response(itt).into()),
        ("TMF Response", |h, itt| {
            h.tmf_response(itt, TmfResponse::FunctionComplete).into()
        }),
    ];
    for (what, stray) in on_text {
        let mut h = Harness::logged_in(config());
        let t = h
            .conn
            .submit_text(&[("SendTargets", "All")], h.now)
            .expect("text accepted");
        h.sent();
        let pdu = stray(&mut h, t);
        h.send(pdu);
        let events = h.events();
        if let Err(e) = not_lost(&h, &events, t, true) {
            lost.push(format!("{what} naming a text task: {e}"));
        }
    }
    assert!(lost.is_empty(), "tasks lost:\n{}", lost.join("\n"));
}

// ---- a peer that does not speak iSCSI ----

const HTTP_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";

/// The one line a non-iSCSI peer's answer gives, whichever way it ends.
#[track_caller]
fn not_iscsi(h: &mut Harness) -> String {
    let (error, _) = closed(&h.events());
    match error {
        Some(e @ Error::NotIscsi { .. }) => {
            assert!(e.is_permanent_login_failure());
            e.to_string()
        }
        other => panic!("expected NotIscsi, got {other:?}"),
    }
}

/// An HTTP server's answer to our Login Request, shorter than a BHS: known
/// at its line end, before the peer even closes.
#[test]
fn an_http_answer_to_the_login_is_not_iscsi() {
    let mut h = Harness::new(config());
    h.sent();
    h.send_bytes(HTTP_400);
    assert_eq!(
        not_iscsi(&mut h),
        "login to iqn.2001-04.com.example:disk1 at 192.0.2.20:3260: the peer does not speak \
         iSCSI: it sent \"HTTP/1.1 400 Bad Request\""
    );
}

/// A longer answer parses as a BHS of a reserved opcode ('H' is 0x48): the
/// error quotes the text, not the opcode nor an "ITT" made of letters.
#[test]
fn a_long_http_answer_is_not_a_reserved_opcode() {
    let mut h = Harness::new(config());
    h.sent();
    h.send_bytes(
        b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\
          Content-Length: 150\r\nConnection: close\r\n\r\n",
    );
    let line = not_iscsi(&mut h);
    assert!(
        line.ends_with("it sent \"HTTP/1.1 400 Bad Request\""),
        "{line}"
    );
    assert!(!line.contains("opcode") && !line.contains("ITT"), "{line}");
}

/// Text that happens to decode as a PDU of another opcode ('A' is 0x41, a
/// SCSI Command with the immediate bit) is not iSCSI either; a line of text
/// longer than the quote is cut.
#[test]
fn a_first_pdu_of_another_opcode_is_not_iscsi() {
    let mut h = Harness::new(config());
    h.sent();
    let mut banner = b"A".repeat(BHS_LEN);
    banner[4..8].fill(0); // no AHS, no data segment: a whole BHS
    h.send_bytes(&banner);
    let line = not_iscsi(&mut h);
    assert!(
        line.ends_with(r#"it sent "AAAA\x00\x00\x00\x00AAAAAAAAAAAAAAAAAAAA"..."#),
        "{line}"
    );
}

/// Binary bytes too short for a BHS, then the peer hangs up (a TLS alert):
/// escaped, never written raw.
#[test]
fn a_short_binary_answer_then_close_is_not_iscsi() {
    let mut h = Harness::new(config());
    h.sent();
    h.send_bytes(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
    assert!(
        h.events().is_empty(),
        "undecided until more comes or the peer closes"
    );
    h.conn.handle_disconnect("target closed the connection");
    let line = not_iscsi(&mut h);
    assert!(
        line.ends_with(r#"it sent "\x15\x03\x03\x00\x02\x02F""#),
        "{line}"
    );
}

/// The same bytes from a peer that keeps the socket open: the login timeout
/// reports what it sent rather than a bare timeout.
#[test]
fn a_short_binary_answer_then_silence_is_not_iscsi() {
    let mut h = Harness::new(config());
    h.sent();
    h.send_bytes(&[0x15, 0x03, 0x03]);
    h.advance(h.conn.config.timeouts.login);
    let line = not_iscsi(&mut h);
    assert!(line.ends_with(r#"it sent "\x15\x03\x03""#), "{line}");
}

/// A peer that closes without a byte, or a partial Login Response, stays a
/// connection failure; after a first Login Response, garbage is the
/// protocol error it always was.
/// UNH-IOL: Login #8.1
#[test]
fn iscsi_peers_keep_their_own_errors() {
    let mut h = Harness::new(config());
    h.sent();
    h.conn.handle_disconnect("target closed the connection");
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Connect { .. })), "{error:?}");

    let mut h = Harness::new(config());
    h.sent();
    h.send_bytes(&[0x23, 0x80, 0x00]);
    h.conn.handle_disconnect("target closed the connection");
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Connect { .. })), "{error:?}");

    let mut h = Harness::new(config());
    h.sent();
    let resp = h.login_response(
        Stage::Security,
        Stage::Operational,
        0,
        text(&[("AuthMethod", "None")]),
    );
    h.send(resp);
    h.sent();
    h.send_bytes(&b"HTTP/1.1 400 Bad Request\r\n".repeat(3));
    let (error, _) = closed(&h.events());
    match error {
        Some(Error::Protocol { reason, .. }) => {
            assert!(reason.contains("undecodable PDU"), "{reason}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// RFC 7143 §6.3 and §7.7: during login only Login Responses may come; any
/// other PDU, even a well-formed one, ends the login with a protocol error
/// instead of being taken for part of it.
/// UNH-IOL: Login #8.1
#[test]
fn a_pdu_other_than_a_login_response_ends_the_login() {
    let mut h = Harness::new(config());
    h.sent();
    let resp = h.login_response(
        Stage::Security,
        Stage::Operational,
        0,
        text(&[("AuthMethod", "None")]),
    );
    h.send(resp);
    h.sent();
    let nop = h.nop_in(Itt::RESERVED, Ttt(5));
    h.send(nop);
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert!(
        h.sent().iter().all(|pdu| !matches!(pdu, Pdu::NopOut(_))),
        "the ping was answered"
    );
}

/// §13.12: login PDUs carry at most 8192 bytes of data. A first Login
/// Response announcing more is refused from its header alone, as the
/// protocol error of an iSCSI target (its opcode says what it is), not as a
/// peer that does not speak iSCSI.
#[test]
fn a_first_login_response_over_8192_bytes_is_a_protocol_error() {
    let mut h = Harness::new(config());
    h.sent();
    let resp = h.login_response(Stage::Security, Stage::Operational, 0, Bytes::new());
    let mut header = BytesMut::new();
    h.encoder
        .encode(&Pdu::LoginResponse(resp), &mut header)
        .unwrap();
    header[5..8].copy_from_slice(&8193u32.to_be_bytes()[1..]);
    h.send_bytes(&header);
    let (error, _) = closed(&h.events());
    match error {
        Some(Error::Protocol { reason, .. }) => assert!(
            reason.contains("8193-byte data segment") && reason.contains("8192"),
            "{reason}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Target opcodes, to make random headers parse more often.
const TARGET_OPCODES: [u8; 10] = [0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f];

/// One hostile chunk: random bytes, or a header with a target opcode, a
/// live ITT and a small data segment, whose other fields are random.
fn hostile_chunk() -> impl Strategy<Value = Vec<u8>> {
    let raw = prop::collection::vec(any::<u8>(), 0..160);
    let header = (
        prop::sample::select(TARGET_OPCODES.to_vec()),
        prop::sample::select(vec![1u32, 2, 3, u32::MAX]),
        prop::collection::vec(any::<u8>(), BHS_LEN),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(opcode, itt, mut bhs, data)| {
            bhs[0] = opcode;
            bhs[4] = 0;
            let len = data.len() as u32;
            bhs[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
            bhs[16..20].copy_from_slice(&itt.to_be_bytes());
            bhs.extend_from_slice(&data);
            bhs.resize(bhs.len().next_multiple_of(4), 0);
            bhs
        });
    prop_oneof![raw, header]
}

// ---- the receive path: long data segments in buffers of their own ----

use super::receive::{OWN_BUFFER_MIN, RECEIVE_ALLOCATION};
use bytes::BufMut;

// The tests' long segments are long, their short ones short.
const _: () = assert!(70_001 >= OWN_BUFFER_MIN && 62_072 < OWN_BUFFER_MIN);

/// Bytes that tell one offset from another.
fn pattern(len: usize, seed: usize) -> Bytes {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// A logged-in harness with the digests asked for, and our
/// MaxRecvDataSegmentLength set to `mrdsl`.
fn with_digests(header: bool, data: bool, mrdsl: u32) -> Harness {
    let mut cfg = config();
    let pick = |on| {
        if on {
            DigestPreference::Crc32c
        } else {
            DigestPreference::None
        }
    };
    cfg.operational.header_digest = pick(header);
    cfg.operational.data_digest = pick(data);
    cfg.operational.max_recv_data_segment_length = mrdsl;
    let mut h = Harness::logged_in(cfg);
    assert_eq!(h.conn.params().max_recv_data_segment_length, mrdsl);
    assert_eq!(
        (
            h.conn.params().header_digest == Digest::Crc32c,
            h.conn.params().data_digest == Digest::Crc32c
        ),
        (header, data)
    );
    h.sent();
    h
}

/// Data-In with `data` at `offset`, the status in it when `last`.
fn data_in_with(
    h: &mut Harness,
    itt: Itt,
    data_sn: u32,
    offset: u32,
    data: Bytes,
    last: bool,
) -> DataIn {
    let mut pdu = h.data_in(itt, data_sn, offset, 0);
    pdu.data = data;
    if last {
        pdu.final_ = true;
        pdu.status = Some(DataInStatus {
            status: 0,
            stat_sn: h.next_stat_sn(),
            residual: Residual::None,
        });
    }
    pdu
}

/// The allocation the shared receive buffer takes up now, as a range.
fn shared_range(h: &mut Harness) -> std::ops::Range<usize> {
    let room = h.conn.receive_buffer();
    let buf = room.get_ref();
    let start = buf.as_ptr() as usize;
    start..start + buf.capacity()
}

/// Each completed read's data segments, by ITT, the events dropped.
fn read_segments(events: Vec<Event>) -> Vec<(Itt, Vec<Bytes>)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::CommandComplete {
                itt,
                result: Ok(outcome),
                ..
            } => Some((itt, outcome.data.segments().to_vec())),
            Event::CommandComplete { result: Err(e), .. } => panic!("read failed: {e:?}"),
            _ => None,
        })
        .collect()
}

/// Whether `segment` is the sole owner of an allocation of its exact size,
/// once the connection's segment pool has let go of it.
fn owns_exact_buffer(h: &mut Harness, segment: Bytes) -> bool {
    h.conn.forget_lent_segments();
    let len = segment.len();
    match segment.try_into_mut() {
        Ok(own) => own.capacity() == len,
        Err(_) => false,
    }
}

/// The wire of a long read (a 70001-byte Data-In, then a 62072-byte one
/// with the status) and of a short one (4 KiB with the status).
fn long_and_short_reads(h: &mut Harness) -> (Itt, Itt, Vec<Bytes>, BytesMut) {
    let long = h.submit(read(1, 132_073));
    let short = h.submit(read(1, 4096));
    h.sent();
    let pieces = vec![pattern(70_001, 1), pattern(62_072, 2), pattern(4096, 3)];
    let mut wire = BytesMut::new();
    let a0 = data_in_with(h, long, 0, 0, pieces[0].clone(), false);
    wire.extend_from_slice(&h.wire(a0));
    let a1 = data_in_with(h, long, 1, 70_001, pieces[1].clone(), true);
    wire.extend_from_slice(&h.wire(a1));
    let b = data_in_with(h, short, 0, 0, pieces[2].clone(), true);
    wire.extend_from_slice(&h.wire(b));
    (long, short, pieces, wire)
}

/// Deliverable 4 of the data-path issue: a long Data-In segment is read into
/// a buffer of its exact size, whatever pieces the stream arrives in and
/// with any digests; a short one stays a slice of the shared buffer. The
/// data digest is checked and the padding skipped on both paths.
#[test]
fn a_long_data_in_segment_gets_a_buffer_of_its_exact_size_in_any_chunks() {
    for (header, data) in [(false, false), (true, false), (false, true), (true, true)] {
        for step in [1, 3, 7, 48, 53, 1000, 4099, 65_537] {
            let mut h = with_digests(header, data, 256 * 1024);
            let (long, short, pieces, wire) = long_and_short_reads(&mut h);
            let shared = shared_range(&mut h);
            let before = h.conn.stats().bytes_received as usize;
            for chunk in wire.chunks(step) {
                h.send_bytes(chunk);
            }
            let mut done = read_segments(h.events());
            let why = format!("digests {header}/{data}, {step} bytes at a time");
            assert_eq!(done.len(), 2, "{why}");
            let (itt, short_segments) = done.pop().unwrap();
            assert_eq!(itt, short, "{why}");
            assert_eq!(short_segments, [pieces[2].clone()], "{why}");
            let at = short_segments[0].as_ptr() as usize;
            assert!(
                shared.contains(&at),
                "{why}: a short segment is a slice of the shared buffer"
            );
            let (itt, mut long_segments) = done.pop().unwrap();
            assert_eq!(itt, long, "{why}");
            assert_eq!(long_segments, pieces[..2], "{why}");
            let second = long_segments.pop().unwrap();
            assert!(shared.contains(&(second.as_ptr() as usize)), "{why}");
            let first = long_segments.pop().unwrap();
            assert!(!shared.contains(&(first.as_ptr() as usize)), "{why}");
            assert!(
                owns_exact_buffer(&mut h, first),
                "{why}: the long segment has its own buffer"
            );
            let counted = h.conn.stats().bytes_received as usize - before;
            assert_eq!(counted, wire.len(), "{why}");
            assert_eq!(h.conn.state(), ConnectionState::FullFeature, "{why}");
        }
    }
}

/// A long segment's buffer is read into again once the caller has dropped
/// the result, and not while it holds it.
#[test]
fn a_dropped_long_result_lends_its_buffer_to_the_next() {
    let mut h = with_digests(false, true, 256 * 1024);
    let long_read = |h: &mut Harness, byte: usize| {
        let itt = h.submit(read(1, 128 * 1024));
        h.sent();
        let pdu = data_in_with(h, itt, 0, 0, pattern(128 * 1024, byte), true);
        let wire = h.wire(pdu);
        // The header alone first, so that the segment goes to its own buffer.
        h.send_bytes(&wire[..BHS_LEN]);
        h.send_bytes(&wire[BHS_LEN..]);
        let mut done = read_segments(h.events());
        assert_eq!(done.len(), 1);
        let segment = done.pop().unwrap().1.pop().unwrap();
        assert_eq!(segment, pattern(128 * 1024, byte));
        segment
    };
    let first = long_read(&mut h, 1);
    let at = first.as_ptr();
    let second = long_read(&mut h, 2);
    assert_ne!(second.as_ptr(), at, "the first is still the caller's");
    assert_eq!(first, pattern(128 * 1024, 1), "and left as it was");
    drop(first);
    let third = long_read(&mut h, 3);
    // malloc could hand out the freed address again by itself; the handle
    // the pool keeps on it says it came from the pool.
    assert_eq!(third.as_ptr(), at);
    assert!(!third.is_unique(), "lent again, so watched");
    h.conn.forget_lent_segments();
    assert!(third.is_unique());
}

/// A long segment that arrives whole within one read is not copied out of
/// the shared buffer either: it stays a slice of it.
#[test]
fn a_long_segment_that_came_in_whole_stays_a_slice() {
    let mut h = with_digests(true, true, 256 * 1024);
    let (long, _, pieces, wire) = long_and_short_reads(&mut h);
    let shared = shared_range(&mut h);
    h.send_bytes(&wire);
    let done = read_segments(h.events());
    assert_eq!(done[0].0, long);
    assert_eq!(done[0].1, pieces[..2]);
    assert!(shared.contains(&(done[0].1[0].as_ptr() as usize)));
}

/// After a long segment, the next read into the shared buffer stops at the
/// end of the next header (the trailer of the long one first), so that a
/// second long segment goes straight into its own buffer, none of it copied.
#[test]
fn after_a_long_segment_reads_stop_at_the_next_header() {
    for (header, data) in [(false, false), (true, true)] {
        let mut h = with_digests(header, data, 256 * 1024);
        let itt = h.submit(read(1, 140_002));
        h.sent();
        let first = data_in_with(&mut h, itt, 0, 0, pattern(70_001, 4), false);
        let first = h.wire(first);
        let second = data_in_with(&mut h, itt, 1, 70_001, pattern(70_001, 5), true);
        let second = h.wire(second);
        let header_len = BHS_LEN + if header { 4 } else { 0 };
        let trailer_len = 3 + if data { 4 } else { 0 };

        // The first header, in a read that takes the header and no more.
        h.send_bytes(&first[..header_len]);
        assert_eq!(h.conn.receive_buffer().remaining_mut(), 70_001);
        h.send_bytes(&first[header_len..header_len + 70_001]);
        assert_eq!(
            h.conn.receive_buffer().remaining_mut(),
            trailer_len + header_len,
            "the trailer and the next header"
        );
        h.send_bytes(&first[header_len + 70_001..]);
        assert_eq!(h.conn.receive_buffer().remaining_mut(), header_len);
        // So the second one's segment is read into its own buffer from its
        // first byte.
        h.send_bytes(&second[..header_len]);
        let room = h.conn.receive_buffer();
        assert_eq!(room.remaining_mut(), 70_001);
        assert_eq!(
            room.get_ref().capacity(),
            70_001,
            "a buffer of the exact size"
        );
        assert!(room.get_ref().is_empty(), "nothing copied into it");
        h.send_bytes(&second[header_len..]);
        let done = read_segments(h.events());
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1, [pattern(70_001, 4), pattern(70_001, 5)]);
        for segment in done.into_iter().next().unwrap().1 {
            assert!(owns_exact_buffer(&mut h, segment));
        }
        // A short PDU with data next: reads are free again after its header.
        let more = h.submit(read(1, 4096));
        h.sent();
        let short = data_in_with(&mut h, more, 0, 0, pattern(4096, 6), true);
        let short = h.wire(short);
        h.send_bytes(&short[..header_len]);
        assert!(h.conn.receive_buffer().remaining_mut() > OWN_BUFFER_MIN);
        h.send_bytes(&short[header_len..]);
        assert_eq!(read_segments(h.events()).len(), 1);
    }
}

/// A short result pins the shared buffer, and only that: however large a
/// MaxRecvDataSegmentLength we declare, the shared buffer stays at its size
/// (it was twice the largest PDU, 32 MiB at 16 MiB segments), and a long
/// segment takes only its own size.
#[test]
fn a_short_result_does_not_pin_a_large_buffer() {
    let mut h = with_digests(false, true, 16_777_215);
    let shared = shared_range(&mut h);
    assert!(shared.len() <= RECEIVE_ALLOCATION, "{} bytes", shared.len());
    let short = h.submit(read(1, 4096));
    let long = h.submit(read(1, 1 << 20));
    h.sent();
    let b = data_in_with(&mut h, short, 0, 0, pattern(4096, 7), true);
    let b = h.wire(b);
    let a = data_in_with(&mut h, long, 0, 0, pattern(1 << 20, 8), true);
    let a = h.wire(a);
    for chunk in b.chunks(1500).chain(a.chunks(9000)) {
        h.send_bytes(chunk);
    }
    let done = read_segments(h.events());
    assert_eq!(done.len(), 2);
    assert!(shared.contains(&(done[0].1[0].as_ptr() as usize)));
    assert_eq!(done[1].1, [pattern(1 << 20, 8)]);
    let mut done = done;
    let last = done.pop().unwrap().1.pop().unwrap();
    assert!(owns_exact_buffer(&mut h, last));
    assert!(shared_range(&mut h).len() <= RECEIVE_ALLOCATION);
}

/// Hostile input on the long path: a segment over our limit, a bad data
/// digest or a PDU kind without data announcing a long segment close the
/// connection with a protocol error, before anything of the size is
/// allocated where the header alone tells.
#[test]
fn hostile_long_segments_close_the_connection() {
    // Over the limit: refused at the header.
    let mut h = with_digests(false, false, 256 * 1024);
    let itt = h.submit(read(1, 1 << 20));
    h.sent();
    let plain = PduEncoder::new(Digests::default(), 1 << 24);
    let too_long = data_in_with(&mut h, itt, 0, 0, pattern(256 * 1024 + 4, 9), true);
    let mut wire = BytesMut::new();
    plain.encode(&Pdu::DataIn(too_long), &mut wire).unwrap();
    h.send_bytes(&wire[..BHS_LEN]);
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert!(shared_range(&mut h).len() <= RECEIVE_ALLOCATION);

    // A data digest that does not match, on a segment in its own buffer.
    let mut h = with_digests(true, true, 256 * 1024);
    let itt = h.submit(read(1, 70_001));
    h.sent();
    let pdu = data_in_with(&mut h, itt, 0, 0, pattern(70_001, 10), true);
    let mut wire = h.wire(pdu);
    wire[BHS_LEN + 4 + 60_000] ^= 1;
    for chunk in wire.chunks(4096) {
        h.send_bytes(chunk);
    }
    let (error, unfinished) = closed(&h.events());
    match error {
        Some(Error::Protocol { reason, .. }) => assert!(reason.contains("data digest"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(unfinished, vec![itt]);

    // An R2T announcing a long segment.
    let mut h = with_digests(false, false, 256 * 1024);
    let itt = h.submit(read(1, 70_001));
    h.sent();
    let pdu = data_in_with(&mut h, itt, 0, 0, pattern(70_001, 11), true);
    let mut wire = h.wire(pdu);
    wire[0] = Opcode::R2t.code();
    h.send_bytes(&wire[..BHS_LEN + 10]);
    let (error, _) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Long and short Data-In arrive in arbitrary pieces, with any
    /// digests: the data is right and the connection stays up.
    #[test]
    fn reads_arrive_whole_from_any_chunking(
        steps in prop::collection::vec(1usize..100_000, 1..40),
        header in any::<bool>(),
        data in any::<bool>(),
    ) {
        let mut h = with_digests(header, data, 256 * 1024);
        let (long, short, pieces, wire) = long_and_short_reads(&mut h);
        let mut rest = &wire[..];
        for step in steps.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*step).min(rest.len());
            h.send_bytes(&rest[..n]);
            rest = &rest[n..];
        }
        let done = read_segments(h.events());
        prop_assert_eq!(done.len(), 2);
        prop_assert_eq!(done[0].0, long);
        prop_assert_eq!(&done[0].1[..], &pieces[..2]);
        prop_assert_eq!(done[1].0, short);
        prop_assert_eq!(&done[1].1[..], &pieces[2..]);
        prop_assert_eq!(h.conn.state(), ConnectionState::FullFeature);
    }

    /// Hostile input: whatever the target sends after login, the connection
    /// neither panics nor hangs, and either keeps going or closes once with
    /// an error.
    #[test]
    fn hostile_bytes_after_login_never_panic(
        chunks in prop::collection::vec(hostile_chunk(), 1..8)
    ) {
        let mut cfg = config();
        cfg.timeouts.nop_interval = Duration::from_secs(2);
        cfg.timeouts.nop_timeout = Duration::from_secs(3);
        let mut h = Harness::logged_in(cfg);
        let submitted = [h.submit(read(1, 4096)), h.submit(write(1, 2048))];
        h.sent();
        for chunk in &chunks {
            h.send_bytes(chunk);
            h.sent();
            h.advance(Duration::from_secs(1));
            h.sent();
        }
        let events = h.events();
        let closes: Vec<&Option<Error>> = events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { error, .. } => Some(error),
                _ => None,
            })
            .collect();
        if h.conn.state() == ConnectionState::Closed {
            prop_assert_eq!(closes.len(), 1);
            prop_assert!(closes[0].is_some(), "closed without an error");
        } else {
            prop_assert!(closes.is_empty());
        }
        // No command is lost: each one completed, was handed back, or is
        // still outstanding, exactly once.
        let mut accounted = 0;
        for itt in submitted {
            let seen = events
                .iter()
                .filter(|e| match e {
                    Event::CommandComplete { itt: task, .. } => *task == itt,
                    Event::Closed { unfinished, .. } => unfinished.iter().any(|u| u.itt == itt),
                    _ => false,
                })
                .count();
            prop_assert!(seen <= 1, "{} reported {} times", itt, seen);
            accounted += seen;
        }
        prop_assert_eq!(accounted + h.conn.outstanding_commands(), submitted.len());
    }
}

// ---- regressions from review: hostile or buggy target behaviour ----

fn r2t_for(h: &mut Harness, itt: Itt, r2t_sn: u32, offset: u32, len: u32) -> iscsi_proto::pdu::R2t {
    iscsi_proto::pdu::R2t {
        lun: lun(1),
        itt,
        ttt: Ttt(0x77),
        stat_sn: h.stat_sn,
        exp_cmd_sn: h.exp_cmd_sn,
        max_cmd_sn: h.max_cmd_sn(),
        r2t_sn,
        buffer_offset: offset,
        desired_data_transfer_length: len,
    }
}

/// §4.2.5.2 with DataSequenceInOrder=Yes at ERL 0: every byte is asked for
/// once, in order. A repeated R2T would make one 48-byte PDU cost a burst of
/// Data-Out each time: it is a protocol violation.
#[test]
fn repeated_r2t_is_a_protocol_violation() {
    let mut h = Harness::logged_in(config());
    let itt = h.submit(write(1, 1 << 20));
    let sent = h.sent();
    let Pdu::ScsiCommand(cmd) = &sent[0] else {
        panic!("{sent:?}")
    };
    let unsolicited: usize = cmd.data.len()
        + sent
            .iter()
            .filter_map(|p| match p {
                Pdu::DataOut(d) => Some(d.data.len()),
                _ => None,
            })
            .sum::<usize>();
    let rest = ((1 << 20) - unsolicited) as u32;
    assert!(rest > 0, "the test needs solicited data");
    let first = r2t_for(&mut h, itt, 0, unsolicited as u32, rest.min(4096));
    h.send(first);
    assert!(!h.sent().is_empty(), "the first R2T is answered");
    let again = r2t_for(&mut h, itt, 1, unsolicited as u32, rest.min(4096));
    h.send(again);
    assert!(h.sent().is_empty(), "the repeated range is not sent again");
    let (error, unfinished) = closed(&h.events());
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert_eq!(unfinished, vec![itt], "the write comes back for replay");
}

/// A response naming a command the window has not let out yet: the target
/// answers something it never received.
#[test]
fn response_for_a_command_not_yet_sent_is_a_protocol_violation() {
    let mut h = Harness::new(config());
    h.window = 1;
    h.login(&[]);
    let first = h.submit(test_unit_ready(1));
    let waiting = h.submit(test_unit_ready(1));
    assert_eq!(commands(&h.sent()).len(), 1, "the window lets one out");
    let bogus = h.scsi_response(waiting);
    h.send(bogus);
    let events = h.events();
    assert!(
        !events.iter().any(
            |e| matches!(e, Event::CommandComplete { itt: task, result: Ok(_), .. } if *task == waiting)
        ),
        "a command never sent was completed: {events:?}"
    );
    let (error, unfinished) = closed(&events);
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");
    assert_eq!(unfinished, vec![first, waiting]);
}

/// §11.5.1: a rejected command's CmdSN is a hole at the target; an ABORT
/// TASK naming that CmdSN plugs it, and the caller hears of the reject.
#[test]
fn rejected_command_gets_its_cmd_sn_plugged() {
    let mut h = Harness::logged_in(config());
    let itt = h.submit(test_unit_ready(1));
    let cmd_sn = commands(&h.sent())[0].1;
    let reject = reject_of(&mut h, Opcode::ScsiCommand, itt);
    h.send(reject);
    assert!(matches!(
        completion(&h.events(), itt),
        Err(TaskFailure::Rejected(RejectReason::ProtocolError))
    ));
    match h.sent().as_slice() {
        [Pdu::TaskMgmtRequest(t)] => {
            assert_eq!(t.function, TmfFunction::AbortTask);
            assert_eq!(t.referenced_task_tag, itt);
            assert_eq!(t.ref_cmd_sn, cmd_sn);
            assert!(t.immediate);
        }
        other => panic!("expected an ABORT TASK, got {other:?}"),
    }
    assert_eq!(h.conn.state(), ConnectionState::FullFeature);
}

/// §11.9.1: renegotiation is answered unless a text exchange is under way:
/// a flood of requests makes one Text Request, not one each.
#[test]
fn renegotiation_requests_do_not_pile_up() {
    let mut h = Harness::logged_in(config());
    for _ in 0..50 {
        let msg = h.async_message(AsyncEvent::RenegotiateParameters, 0);
        h.send(msg);
    }
    let texts = h
        .sent()
        .iter()
        .filter(|p| matches!(p, Pdu::TextRequest(_)))
        .count();
    assert_eq!(texts, 1);
}

/// Found by the session_after_login fuzz target: a renegotiation the
/// target never answers times out quietly; the caller, who asked for no
/// text, gets no TextComplete for it.
#[test]
fn unanswered_renegotiation_is_not_the_callers_text() {
    let mut h = Harness::logged_in(config());
    let msg = h.async_message(AsyncEvent::RenegotiateParameters, 0);
    h.send(msg);
    assert!(matches!(h.sent().as_slice(), [Pdu::TextRequest(_)]));
    h.advance(Duration::from_secs(31));
    assert!(h.events().is_empty(), "a renegotiation timeout surfaced");
    assert_eq!(h.conn.state(), ConnectionState::FullFeature);
    // The exchange is over: the next request is answered again.
    let msg = h.async_message(AsyncEvent::RenegotiateParameters, 0);
    h.send(msg);
    assert!(matches!(h.sent().as_slice(), [Pdu::TextRequest(_)]));
}

/// A GOOD status must come with every byte the residual promises.
#[test]
fn good_status_with_missing_data_is_refused() {
    let mut h = Harness::logged_in(config());
    let itt = h.submit(read(1, 8192));
    h.sent();
    let din = h.data_in(itt, 0, 0, 4096);
    h.send(din);
    let resp = h.scsi_response(itt);
    h.send(resp);
    assert!(matches!(
        completion(&h.events(), itt),
        Err(TaskFailure::Protocol(_))
    ));
}

/// §11.19: a ping's echo never exceeds what the target said it takes.
#[test]
fn ping_echo_is_bounded_by_the_target_limit() {
    let mut h = Harness::logged_in(config());
    let limit = h.conn.params().max_xmit_data_segment_length as usize;
    let mut ping = h.nop_in(Itt::RESERVED, Ttt(9));
    ping.data = Bytes::from(vec![7u8; limit * 2]);
    // Our own receive limit is larger than the target's: this decodes.
    h.send(ping);
    match h.sent().as_slice() {
        [Pdu::NopOut(n)] => assert_eq!(n.data.len(), limit),
        other => panic!("expected the echo, got {other:?}"),
    }
}
