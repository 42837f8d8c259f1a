//! `login_chap`: a [`Connection`] in login with CHAP configured (one-way or
//! mutual, several CHAP_A offers), answered by Login Responses the fuzzer
//! writes, optionally after a scripted prefix of a correct CHAP exchange so
//! that the fuzzer starts deep in the security stage.
//!
//! Input layout ([`Setup::parse`]):
//! - byte 0: bit 0 mutual CHAP; bits 1-2 the CHAP_A offer ([`ALGORITHMS`]);
//!   bit 3 framed records instead of raw bytes; bits 4-5 how much of a
//!   correct exchange the harness plays first (0 nothing, 1 AuthMethod=CHAP,
//!   2 also CHAP_A/CHAP_I/CHAP_C, 3 also the target's answer, mutual
//!   CHAP_N/CHAP_R included, moving to the operational stage); bit 6 a
//!   discovery session;
//! - byte 1: K chunk sizes (low 4 bits), then K bytes of chunk size - 1 (raw
//!   mode: how the stream is cut);
//! - the rest: raw bytes for the receive buffer, or records. A record is
//!   flags (bit 0 T, bit 1 C, bits 2-3 CSG, bits 4-5 NSG, bit 6 a TSIH, bit 7
//!   a wrong ITT), status class, status detail, a big-endian u16 length and
//!   that much text, sent as one Login Response. In a record's text,
//!   `CHAP_R=@` becomes the correct answer to our last challenge, with the
//!   target secret and the last CHAP_A the target named (MD5 before any), so
//!   that mutual CHAP can succeed.
//!
//! Asserted, beyond "no panic, no hang": no secret (as text or hex) ever
//! appears in an error's Display or Debug, in any event, in the
//! connection's Debug or in what we send (unless the fuzzer wrote the
//! secret into the input itself); our Login Requests decode; the login
//! ends (logged in or closed) once its timeout has passed; a connection
//! closes exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, LoginResponse, LoginStatus, Pdu, Stage};
use iscsi_proto::text::pairs::find;
use iscsi_proto::text::value::{parse_binary, parse_number};
use iscsi_session::core::chap::to_hex_value;
use iscsi_session::{
    ChapAlgorithm, ChapConfig, ChapCredentials, Connection, ConnectionEvent, ConnectionState,
    Portal, Secret, SessionConfig,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::chunks;
use crate::target::{TargetWire, pairs_of, text};

/// Our CHAP name.
pub const USER: &str = "fuzz-initiator";
/// Our CHAP secret: must never be seen outside the CHAP computation.
pub const SECRET: &str = "Init-S3cret-9f4e";
/// The name the target must authenticate as (mutual CHAP).
pub const TARGET_USER: &str = "fuzz-target";
/// The target's secret (mutual CHAP).
pub const TARGET_SECRET: &str = "Targ-S3cret-07b2";
/// The challenge the scripted target sends.
pub const CHALLENGE: [u8; 16] = *b"fuzz-challenge-1";
/// The CHAP_I the scripted target sends.
pub const IDENTIFIER: u8 = 7;

/// CHAP_A offers, by bits 1-2 of byte 0.
pub const ALGORITHMS: [&[ChapAlgorithm]; 4] = [
    &[ChapAlgorithm::Md5],
    &[ChapAlgorithm::Sha256, ChapAlgorithm::Md5],
    &[ChapAlgorithm::Sha1],
    &[
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Md5,
    ],
];

/// Past the login timeout (15 s) by far.
const AFTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The parsed input.
#[derive(Clone, Debug)]
pub struct Setup<'a> {
    /// Byte 0.
    pub flags: u8,
    /// Raw mode: how the stream is cut.
    pub chunk_sizes: Vec<usize>,
    /// Raw bytes or records.
    pub stream: &'a [u8],
}

impl<'a> Setup<'a> {
    /// Reads the layout; `None` when the input is too short for its header.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (head, rest) = data.split_at_checked(2)?;
        let k = usize::from(head[1] & 0x0f);
        let (sizes, stream) = rest.split_at_checked(k)?;
        Some(Setup {
            flags: head[0],
            chunk_sizes: sizes.iter().map(|&s| usize::from(s) + 1).collect(),
            stream,
        })
    }

    /// The input bytes for this setup (for the seed generator).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.chunk_sizes.len() <= 15);
        let mut out = vec![self.flags, self.chunk_sizes.len() as u8];
        out.extend(self.chunk_sizes.iter().map(|&s| (s - 1) as u8));
        out.extend_from_slice(self.stream);
        out
    }

    fn mutual(&self) -> bool {
        self.flags & 1 != 0
    }

    fn algorithms(&self) -> &'static [ChapAlgorithm] {
        ALGORITHMS[usize::from((self.flags >> 1) & 3)]
    }

    fn framed(&self) -> bool {
        self.flags & 8 != 0
    }

    fn scripted(&self) -> u8 {
        (self.flags >> 4) & 3
    }

    fn config(&self) -> SessionConfig {
        let portal = Portal::new("192.0.2.30", 3260);
        let mut config = if self.flags & 0x40 != 0 {
            SessionConfig::discovery(portal, "iqn.2024-01.io.riscsi:fuzz")
        } else {
            SessionConfig::new(
                portal,
                "iqn.2001-04.com.example:chap",
                "iqn.2024-01.io.riscsi:fuzz",
            )
        };
        let ours = ChapCredentials::new(USER, Secret::from(SECRET));
        let mut chap = if self.mutual() {
            ChapConfig::mutual(ours, ChapCredentials::new(TARGET_USER, TARGET_SECRET))
        } else {
            ChapConfig::one_way(ours)
        };
        chap.algorithms = self.algorithms().to_vec();
        config.chap = Some(chap);
        config
    }
}

/// One record of the framed mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Flags byte (see the module documentation).
    pub flags: u8,
    /// Status class and detail.
    pub status: (u8, u8),
    /// Text, before `CHAP_R=@` is replaced.
    pub text: Vec<u8>,
}

impl Record {
    /// The record as input bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.flags, self.status.0, self.status.1];
        out.extend_from_slice(&(self.text.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.text);
        out
    }

    /// Splits records off `stream`; a truncated last record takes what is left.
    pub fn parse_all(mut stream: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some((head, rest)) = stream.split_at_checked(5) {
            let len = usize::from(u16::from_be_bytes([head[3], head[4]])).min(rest.len());
            let (text, tail) = rest.split_at(len);
            out.push(Record {
                flags: head[0],
                status: (head[1], head[2]),
                text: text.to_vec(),
            });
            stream = tail;
        }
        out
    }
}

fn stage(bits: u8) -> Stage {
    match bits & 3 {
        0 => Stage::Security,
        1 | 2 => Stage::Operational,
        _ => Stage::FullFeature,
    }
}

/// The connection in login and the target's end.
#[derive(Debug)]
pub struct Harness {
    /// The connection under test.
    pub conn: Connection,
    /// The target's end.
    pub target: TargetWire,
    /// The clock.
    pub now: Instant,
    /// Our last challenge (CHAP_I, CHAP_C) in a Login Request, if any.
    our_challenge: Option<(u8, Vec<u8>)>,
    /// The last CHAP_A the target named.
    algorithm: ChapAlgorithm,
    /// Whether the input holds a secret itself (then echoes are not leaks).
    input_has_secret: bool,
    closed: bool,
    logged_in: bool,
    /// Every Login Request sent, when recording (the seed generator).
    pub log: Option<Vec<Pdu>>,
}

/// Whether `needle` occurs in `haystack`. Byte by byte on purpose: slice
/// equality is a `bcmp` call, which libFuzzer intercepts, and that made
/// this check most of the run time and fed the secrets to its dictionary
/// (after which inputs carrying them would switch the check off).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.iter().enumerate().any(|(i, &b)| {
        b == first
            && haystack.len() - i > rest.len()
            && rest
                .iter()
                .enumerate()
                .all(|(j, &n)| haystack[i + 1 + j] == n)
    })
}

/// Every form a secret could leak in: the text, and its hex.
fn secret_forms() -> [Vec<u8>; 4] {
    let hex = |s: &str| to_hex_value(s.as_bytes()).as_bytes()[2..].to_vec();
    [
        SECRET.as_bytes().to_vec(),
        TARGET_SECRET.as_bytes().to_vec(),
        hex(SECRET),
        hex(TARGET_SECRET),
    ]
}

impl Harness {
    /// A connection whose first Login Request is out; `input` is checked
    /// for secrets the fuzzer may have written itself.
    pub fn new(setup: &Setup<'_>, input: &[u8], record: bool) -> Harness {
        let config = setup.config();
        let now = Instant::now();
        let target = TargetWire::new(config.isid(), 16);
        let conn = Connection::with_rng(Arc::new(config), 0, now, StdRng::seed_from_u64(1));
        let input_has_secret = secret_forms().iter().any(|s| contains(input, s));
        let mut h = Harness {
            conn,
            target,
            now,
            our_challenge: None,
            algorithm: ChapAlgorithm::Md5,
            input_has_secret,
            closed: false,
            logged_in: false,
            log: record.then(Vec::new),
        };
        h.drain();
        h
    }

    /// Checks a string for secrets.
    fn clean(&self, what: &str, s: &str) {
        if self.input_has_secret {
            return;
        }
        for secret in secret_forms() {
            assert!(!contains(s.as_bytes(), &secret), "a secret in {what}: {s}");
        }
    }

    /// Our Login Requests and the events, checked.
    pub fn drain(&mut self) {
        for pdu in self.target.sent(&mut self.conn) {
            if let Pdu::LoginRequest(req) = &pdu {
                if !self.input_has_secret {
                    for secret in secret_forms() {
                        assert!(!contains(&req.data, &secret), "a secret on the wire");
                    }
                }
                let pairs = pairs_of(req);
                let identifier = find(&pairs, "CHAP_I").and_then(|v| parse_number(v).ok());
                let challenge = find(&pairs, "CHAP_C").and_then(|v| parse_binary(v).ok());
                if let (Some(i), Some(c)) = (identifier, challenge) {
                    self.our_challenge = Some((i as u8, c));
                }
            }
            if let Some(log) = &mut self.log {
                log.push(pdu);
            }
        }
        while let Some(event) = self.conn.poll_event() {
            self.clean("an event", &format!("{event:?}"));
            match event {
                ConnectionEvent::Closed { error, unfinished } => {
                    assert!(!self.closed, "Closed twice");
                    assert!(unfinished.is_empty(), "commands handed back from a login");
                    self.closed = true;
                    if let Some(e) = error {
                        self.clean("an error's Display", &e.to_string());
                        self.clean("an error's Debug", &format!("{e:?}"));
                    }
                }
                ConnectionEvent::LoggedIn { .. } => {
                    assert!(!self.logged_in, "LoggedIn twice");
                    assert!(!self.closed, "LoggedIn after Closed");
                    self.logged_in = true;
                }
                ConnectionEvent::Redirected { .. } => {}
                other => panic!("unexpected event in login: {other:?}"),
            }
        }
    }

    /// Sends one Login Response.
    pub fn send(&mut self, resp: LoginResponse) {
        let bytes = self.target.encode(&Pdu::LoginResponse(resp));
        self.feed(&bytes);
    }

    /// Delivers raw bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.conn.receive(bytes, self.now);
        self.drain();
    }

    /// A correct exchange up to `depth` (see the module documentation).
    pub fn script(&mut self, setup: &Setup<'_>) {
        let depth = setup.scripted();
        if depth >= 1 {
            let resp = self.target.login_response(
                Stage::Security,
                None,
                0,
                text(&[("AuthMethod", "CHAP")]),
            );
            self.send(resp);
        }
        if depth >= 2 {
            self.algorithm = setup.algorithms()[0];
            let a = self.algorithm.code().to_string();
            let i = IDENTIFIER.to_string();
            let c = to_hex_value(&CHALLENGE);
            let resp = self.target.login_response(
                Stage::Security,
                None,
                0,
                text(&[("CHAP_A", a.as_str()), ("CHAP_I", &i), ("CHAP_C", &c)]),
            );
            self.send(resp);
        }
        if depth >= 3 {
            let mut pairs = Vec::new();
            if setup.mutual() {
                pairs.push(("CHAP_N".to_owned(), TARGET_USER.to_owned()));
                pairs.push(("CHAP_R".to_owned(), self.target_response()));
            }
            let resp = self.target.login_response(
                Stage::Security,
                Some(Stage::Operational),
                0,
                text(&pairs),
            );
            self.send(resp);
        }
    }

    /// The target's correct answer to our last challenge, as a CHAP_R value.
    pub fn target_response(&self) -> String {
        let (identifier, challenge) = self.our_challenge.clone().unwrap_or((0, vec![0]));
        let secret = Secret::from(TARGET_SECRET);
        to_hex_value(&self.algorithm.response(identifier, &secret, &challenge))
    }

    /// One framed record as a Login Response.
    pub fn send_record(&mut self, record: &Record) {
        // The target's CHAP_A choice decides the algorithm of CHAP_R=@.
        if let Ok(pairs) =
            iscsi_proto::text::parse_pairs(&record.text, iscsi_proto::text::TextLimits::DEFAULT)
            && let Some(a) = find(&pairs, "CHAP_A")
                .and_then(|v| v.parse::<u64>().ok())
                .and_then(ChapAlgorithm::from_code)
        {
            self.algorithm = a;
        }
        let data = substitute(&record.text, self.target_response().as_bytes());
        let f = record.flags;
        let resp = LoginResponse {
            transit: f & 1 != 0,
            continue_: f & 2 != 0,
            csg: stage(f >> 2),
            nsg: stage(f >> 4),
            tsih: if f & 0x40 != 0 { 0x0c0c } else { 0 },
            itt: if f & 0x80 != 0 { Itt(0x55) } else { Itt(0) },
            status: LoginStatus {
                class: record.status.0,
                detail: record.status.1,
            },
            ..self
                .target
                .login_response(Stage::Security, None, 0, Bytes::from(data))
        };
        self.send(resp);
    }

    /// After the input: the login must end by its timeout; then the socket
    /// closes, and the connection must be closed exactly once.
    pub fn finish(mut self) -> (bool, bool) {
        self.now += AFTER_TIMEOUT;
        self.conn.handle_timeout(self.now);
        self.drain();
        assert_ne!(
            self.conn.state(),
            ConnectionState::LoggingIn,
            "still logging in after the login timeout"
        );
        let logged_in = self.logged_in;
        self.conn.handle_disconnect("end of the fuzz input");
        self.drain();
        assert!(self.closed, "no Closed event");
        self.clean("the connection's Debug", &format!("{:?}", self.conn));
        (logged_in, self.closed)
    }
}

/// `text` with each `CHAP_R=@` (ending the text or followed by NUL)
/// replaced by `CHAP_R=<response>`.
fn substitute(text: &[u8], response: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"CHAP_R=@";
    let mut out = Vec::with_capacity(text.len() + response.len());
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with(MARK) && matches!(rest.get(MARK.len()), None | Some(0)) {
            out.extend_from_slice(b"CHAP_R=");
            out.extend_from_slice(response);
            rest = &rest[MARK.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// The whole run of one input: (logged in, closed), `None` when too short.
pub fn run(data: &[u8]) -> Option<(bool, bool)> {
    let setup = Setup::parse(data)?;
    let mut h = Harness::new(&setup, data, false);
    h.script(&setup);
    if setup.framed() {
        for record in Record::parse_all(setup.stream) {
            h.send_record(&record);
        }
    } else {
        for piece in chunks::cut(setup.stream, &setup.chunk_sizes) {
            h.feed(piece);
        }
    }
    Some(h.finish())
}
