//! Writes the seeds of the session, login, NBD and connection_info targets
//! into `fuzz/seeds/<target>/`, through the harnesses the targets run: a
//! seed's task tags, sequence numbers and digests are what the connection
//! under test expects, and each seed is replayed here and checked to do
//! what its name says before it is written.
//!
//!     cd fuzz && cargo run --example make_seeds
//!
//! (Stable is enough: nothing here is instrumented.)

use std::path::Path;

use bytes::Bytes;
use iscsi_proto::codec::PduEncoder;
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, DataIn, DataInStatus, Itt, LogoutResponse, LogoutResponseCode, Lun,
    NopIn, Pdu, R2t, Reject, RejectReason, Residual, ScsiResponse, ServiceResponse,
    TaskMgmtResponse, TextResponse, TmfFunction, TmfResponse, Ttt,
};
use libfuzzer_sys::arbitrary::Unstructured;
use riscsi_fuzz::session::{self, Harness, Setup, Step};
use riscsi_fuzz::{login, target::text};

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("seed directory");
    std::fs::write(dir.join(name), bytes).expect("seed written");
    println!("{target}/{name}: {} bytes", bytes.len());
}

/// A scripted session seed: the harness runs each step as the target will
/// in `session::run`, and the bytes each step feeds are built from what the
/// connection sent so far.
struct Script {
    flags: u8,
    initial: u8,
    h: Harness,
    /// (bytes fed, action) per step.
    steps: Vec<(Vec<u8>, u8)>,
    seen: usize,
}

impl Script {
    fn new(flags: u8, initial: u8) -> Script {
        let setup = Setup {
            flags,
            initial,
            steps: Vec::new(),
            stream: &[],
        };
        let h = Harness::logged_in(&setup, true);
        Script {
            flags,
            initial,
            h,
            steps: Vec::new(),
            seen: 0,
        }
    }

    /// PDUs the connection sent since the last call.
    fn sent(&mut self) -> Vec<Pdu> {
        let log = self.h.log.as_ref().expect("recording");
        let new = log[self.seen..].to_vec();
        self.seen = log.len();
        new
    }

    fn command_itts(pdus: &[Pdu]) -> Vec<Itt> {
        pdus.iter()
            .filter_map(|p| match p {
                Pdu::ScsiCommand(c) => Some(c.itt),
                _ => None,
            })
            .collect()
    }

    /// One step: `pdus` from the target, then `action`.
    fn step(&mut self, pdus: &[Pdu], action: u8) {
        let mut bytes = Vec::new();
        for pdu in pdus {
            bytes.extend(self.h.target.encode(pdu));
        }
        let before = self.h.conn.stats().pdus_received;
        self.h.feed(&bytes);
        let pdus_in = self.h.conn.stats().pdus_received - before;
        self.h.drain(pdus_in, 0);
        let moves = self.h.act(action);
        self.h.drain(0, moves);
        let step = Step {
            chunk: bytes.len(),
            action,
        };
        self.h.advance(step.time());
        self.steps.push((bytes, action));
    }

    /// The input: one step per scripted step when they fit the layout
    /// (at most 15, each at most 256 bytes), else the whole stream at once
    /// (which only fits scripts without actions).
    fn finish(self, name: &str, expect: impl Fn(&session::Report)) {
        let fits =
            self.steps.len() <= 15 && self.steps.iter().all(|(b, _)| (1..=256).contains(&b.len()));
        let stream: Vec<u8> = self.steps.iter().flat_map(|(b, _)| b.clone()).collect();
        let steps = if fits {
            self.steps
                .iter()
                .map(|(b, a)| Step {
                    chunk: b.len(),
                    action: *a,
                })
                .collect()
        } else {
            assert!(
                self.steps.iter().all(|(_, a)| *a == 0),
                "{name}: a script with actions must fit the step layout"
            );
            Vec::new()
        };
        let setup = Setup {
            flags: self.flags,
            initial: self.initial,
            steps,
            stream: &stream,
        };
        let bytes = setup.to_bytes();
        let report = session::run(&bytes).expect("the seed parses");
        println!("  {name}: {report:?}");
        expect(&report);
        write_seed("session_after_login", name, &bytes);
    }

    /// The input: the whole stream, delivered `piece` bytes per step
    /// (scripts without actions).
    fn finish_in_pieces(self, name: &str, piece: usize, expect: impl Fn(&session::Report)) {
        assert!(
            self.steps.iter().all(|(_, a)| *a == 0),
            "{name}: a script in pieces has no actions"
        );
        let stream: Vec<u8> = self.steps.iter().flat_map(|(b, _)| b.clone()).collect();
        let setup = Setup {
            flags: self.flags,
            initial: self.initial,
            steps: vec![Step {
                chunk: piece,
                action: 0,
            }],
            stream: &stream,
        };
        let bytes = setup.to_bytes();
        let report = session::run(&bytes).expect("the seed parses");
        println!("  {name}: {report:?}");
        expect(&report);
        write_seed("session_after_login", name, &bytes);
    }

    // ---- the target's PDUs, numbered as the harness's target ----

    fn response(&mut self, itt: Itt, status: u8, sense: &[u8]) -> Pdu {
        let t = &mut self.h.target;
        let data = if sense.is_empty() {
            Bytes::new()
        } else {
            let mut d = (sense.len() as u16).to_be_bytes().to_vec();
            d.extend_from_slice(sense);
            Bytes::from(d)
        };
        Pdu::ScsiResponse(ScsiResponse {
            response: ServiceResponse::CompletedAtTarget,
            status,
            itt,
            snack_tag: 0,
            stat_sn: t.next_stat_sn(),
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            exp_data_sn: 0,
            bidi_read_residual: Residual::None,
            residual: Residual::None,
            data,
        })
    }

    fn data_in(&mut self, itt: Itt, data_sn: u32, offset: u32, len: usize, last: bool) -> Pdu {
        let t = &mut self.h.target;
        let status = last.then(|| DataInStatus {
            status: 0,
            stat_sn: t.next_stat_sn(),
            residual: Residual::None,
        });
        Pdu::DataIn(DataIn {
            final_: last,
            acknowledge: false,
            status,
            lun: Lun::default(),
            itt,
            ttt: Ttt::RESERVED,
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            data_sn,
            buffer_offset: offset,
            data: Bytes::from(vec![0xd5; len]),
        })
    }

    fn nop_in(&mut self, itt: Itt, ttt: Ttt, data: &[u8]) -> Pdu {
        let t = &mut self.h.target;
        let stat_sn = if itt.is_reserved() {
            t.stat_sn
        } else {
            t.next_stat_sn()
        };
        Pdu::NopIn(NopIn {
            lun: Lun::default(),
            itt,
            ttt,
            stat_sn,
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            data: Bytes::copy_from_slice(data),
        })
    }

    fn async_message(&mut self, event: AsyncEvent, parameter3: u16, data: &[u8]) -> Pdu {
        let t = &mut self.h.target;
        Pdu::AsyncMessage(AsyncMessage {
            lun: Lun::from_number(1).expect("LUN 1"),
            stat_sn: t.next_stat_sn(),
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            event,
            vcode: 0,
            parameter1: 0,
            parameter2: 0,
            parameter3,
            data: Bytes::copy_from_slice(data),
        })
    }

    fn tmf_response(&mut self, itt: Itt, response: TmfResponse) -> Pdu {
        let t = &mut self.h.target;
        Pdu::TaskMgmtResponse(TaskMgmtResponse {
            response,
            itt,
            stat_sn: t.next_stat_sn(),
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
        })
    }

    fn text_response(&mut self, itt: Itt, ttt: Ttt, more: bool, data: Bytes) -> Pdu {
        let t = &mut self.h.target;
        Pdu::TextResponse(TextResponse {
            final_: !more,
            continue_: more,
            lun: Lun::default(),
            itt,
            ttt,
            stat_sn: t.next_stat_sn(),
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            data,
        })
    }

    fn logout_response(&mut self, itt: Itt) -> Pdu {
        let t = &mut self.h.target;
        Pdu::LogoutResponse(LogoutResponse {
            response: LogoutResponseCode::Success,
            itt,
            stat_sn: t.next_stat_sn(),
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            time2wait: 0,
            time2retain: 0,
        })
    }
}

/// Action byte: `op` (bits 5-7) and time exponent `e` (2^(e-1) ms).
fn action(op: u8, e: u8) -> u8 {
    (op << 5) | e
}

/// Fixed-format sense: UNIT ATTENTION, CAPACITY DATA HAS CHANGED (2Ah/09h).
const CAPACITY_CHANGED: [u8; 18] = [
    0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x09, 0, 0, 0, 0,
];

fn session_seeds() {
    // Five commands, answered in order: status only, Data-In with status,
    // Data-In in two pieces then a response, and two writes (immediate data).
    let mut s = Script::new(0, 0b1_1111);
    let itts = Script::command_itts(&s.sent());
    assert_eq!(itts.len(), 5);
    let mut pdus = vec![s.response(itts[0], 0, &[])];
    pdus.push(s.data_in(itts[1], 0, 0, 512, true));
    // The 64 KiB read comes back short (two 2 KiB pieces and an underflow
    // residual), which keeps the seed small.
    pdus.push(s.data_in(itts[2], 0, 0, 2048, false));
    pdus.push(s.data_in(itts[2], 1, 2048, 2048, false));
    let mut short = s.response(itts[2], 0, &[]);
    if let Pdu::ScsiResponse(r) = &mut short {
        r.residual = Residual::Underflow(60 * 1024);
    }
    pdus.push(short);
    pdus.push(s.response(itts[3], 0, &[]));
    pdus.push(s.response(itts[4], 0, &[]));
    s.step(&pdus, 0);
    s.finish("reads_and_writes", |r| assert_eq!(r.completed, 5));

    // Digests on, InitialR2T=Yes, ImmediateData=No, the target takes 8 KiB
    // segments: a 300 KiB write goes out only on R2Ts, in two bursts.
    let mut s = Script::new(0x01 | 0x02 | 0x08 | 0x10 | 0x40, 1 << 5);
    let itts = Script::command_itts(&s.sent());
    let t = &mut s.h.target;
    let r2t = |sn: u32, offset: u32, len: u32, t: &mut riscsi_fuzz::target::TargetWire| {
        Pdu::R2t(R2t {
            lun: Lun::from_number(2).expect("LUN 2"),
            itt: itts[0],
            ttt: Ttt(0x100 + sn),
            stat_sn: t.stat_sn,
            exp_cmd_sn: t.exp_cmd_sn,
            max_cmd_sn: t.max_cmd_sn(),
            r2t_sn: sn,
            buffer_offset: offset,
            desired_data_transfer_length: len,
        })
    };
    let first = r2t(0, 0, 256 * 1024, t);
    let second = r2t(1, 256 * 1024, 44 * 1024, t);
    s.step(&[first, second], 0);
    let outs = s.sent().len();
    assert_eq!(outs, 300 / 8 + 1, "Data-Out PDUs of 8 KiB");
    let done = s.response(itts[0], 0, &[]);
    s.step(&[done], 0);
    s.finish("write_r2t_digests", |r| assert_eq!(r.completed, 1));

    // A UNIT ATTENTION, a SCSI async event, the target's ping and a bare
    // window update; keepalive on, with our own ping answered.
    let mut s = Script::new(0x04, 0b10);
    let itts = Script::command_itts(&s.sent());
    let ua = s.response(itts[0], 0x02, &CAPACITY_CHANGED);
    s.step(&[ua], 0);
    let mut event = vec![0, 18];
    event.extend_from_slice(&CAPACITY_CHANGED);
    let ev = s.async_message(AsyncEvent::ScsiEvent, 0, &event);
    s.step(&[ev], 0);
    let ping = s.nop_in(Itt::RESERVED, Ttt(0x77), b"ping");
    s.step(&[ping], 0);
    let window = s.nop_in(Itt::RESERVED, Ttt::RESERVED, &[]);
    // Six seconds of silence: our keepalive NOP-Out goes out.
    s.step(&[window], action(0, 14));
    let nop = s
        .sent()
        .into_iter()
        .find_map(|p| match p {
            Pdu::NopOut(n) if !n.itt.is_reserved() => Some(n.itt),
            _ => None,
        })
        .expect("a keepalive ping");
    let pong = s.nop_in(nop, Ttt::RESERVED, &[]);
    s.step(&[pong], 0);
    s.finish("unit_attention_and_pings", |r| assert_eq!(r.completed, 1));

    // The target asks for a logout while a read is in flight: the read
    // completes, we log out, the target confirms.
    let mut s = Script::new(0, 0b10);
    let itts = Script::command_itts(&s.sent());
    let ask = s.async_message(AsyncEvent::LogoutRequest, 10, &[]);
    s.step(&[ask], 0);
    let read = s.data_in(itts[0], 0, 0, 512, true);
    s.step(&[read], 0);
    let logout = s
        .sent()
        .into_iter()
        .find_map(|p| match p {
            Pdu::LogoutRequest(l) => Some(l.itt),
            _ => None,
        })
        .expect("a Logout Request");
    let bye = s.logout_response(logout);
    s.step(&[bye], 0);
    s.finish("logout_requested", |r| {
        assert_eq!(r.completed, 1);
        assert!(r.closed_early);
    });

    // A command times out (33 s pass): ABORT TASK, which the target
    // refuses, then LOGICAL UNIT RESET, which it completes.
    let mut s = Script::new(0, 0b1);
    let _ = s.sent();
    let window = s.nop_in(Itt::RESERVED, Ttt::RESERVED, &[]);
    s.step(&[window], action(0, 16));
    let tmf = |pdus: Vec<Pdu>, function| {
        pdus.into_iter()
            .find_map(|p| match p {
                Pdu::TaskMgmtRequest(t) if t.function == function => Some(t.itt),
                _ => None,
            })
            .expect("a task management request")
    };
    let abort = tmf(s.sent(), TmfFunction::AbortTask);
    let refused = s.tmf_response(abort, TmfResponse::FunctionNotSupported);
    s.step(&[refused], 0);
    let reset = tmf(s.sent(), TmfFunction::LogicalUnitReset);
    let reset_done = s.tmf_response(reset, TmfResponse::FunctionComplete);
    s.step(&[reset_done], 0);
    s.finish("timeout_abort_reset", |r| assert_eq!(r.failed, 1));

    // SendTargets answered in two parts (C bit), then the target asks to
    // renegotiate and answers our MaxRecvDataSegmentLength; a write follows
    // under the new limit.
    let mut s = Script::new(0, 0);
    let window = s.nop_in(Itt::RESERVED, Ttt::RESERVED, &[]);
    s.step(&[window], action(5, 0));
    let text_itt = s
        .sent()
        .into_iter()
        .find_map(|p| match p {
            Pdu::TextRequest(t) => Some(t.itt),
            _ => None,
        })
        .expect("a Text Request");
    let part1 = s.text_response(
        text_itt,
        Ttt(0x42),
        true,
        text(&[("TargetName", "iqn.2001-04.com.example:disk1")]),
    );
    s.step(&[part1], 0);
    let part2 = s.text_response(
        text_itt,
        Ttt::RESERVED,
        false,
        text(&[("TargetAddress", "192.0.2.20:3260,1")]),
    );
    s.step(&[part2], 0);
    let reneg = s.async_message(AsyncEvent::RenegotiateParameters, 5, &[]);
    s.step(&[reneg], 0);
    // The renegotiation's request, not the empty one that asked for the
    // rest of SendTargets.
    let reneg_itt = s
        .sent()
        .into_iter()
        .find_map(|p| match p {
            Pdu::TextRequest(t) if t.itt != text_itt => Some(t.itt),
            _ => None,
        })
        .expect("a renegotiation Text Request");
    let answer = s.text_response(
        reneg_itt,
        Ttt::RESERVED,
        false,
        text(&[("MaxRecvDataSegmentLength", "4096")]),
    );
    // Then submit command 4 of the mix (WRITE 8 KiB): two 4 KiB segments.
    s.step(&[answer], action(4, 0));
    s.finish("text_and_renegotiation", |r| assert_eq!(r.texts, 1));

    // What the fuzz target first found: a renegotiation left unanswered
    // used to time out as a TextComplete the caller never asked for.
    let mut s = Script::new(0, 0);
    let reneg = s.async_message(AsyncEvent::RenegotiateParameters, 5, &[]);
    s.step(&[reneg], 0);
    s.finish("regression_renegotiation_timeout", |r| {
        assert_eq!(r.texts, 0)
    });

    // A command rejected: it completes as rejected and the CmdSN hole is
    // plugged with an ABORT TASK the target completes.
    let mut s = Script::new(0, 0b1000);
    let cmd = s
        .sent()
        .into_iter()
        .find(|p| matches!(p, Pdu::ScsiCommand(_)))
        .expect("the write");
    let mut bhs = Vec::new();
    let mut buf = bytes::BytesMut::new();
    PduEncoder::default()
        .encode(&cmd, &mut buf)
        .expect("our command encodes");
    bhs.extend_from_slice(&buf[..48]);
    let t = &mut s.h.target;
    let reject = Pdu::Reject(Reject {
        reason: RejectReason::InvalidPduField,
        stat_sn: t.next_stat_sn(),
        exp_cmd_sn: t.exp_cmd_sn,
        max_cmd_sn: t.max_cmd_sn(),
        data_sn_or_r2t_sn: 0,
        data: Bytes::from(bhs),
    });
    s.step(&[reject], 0);
    let plug = s
        .sent()
        .into_iter()
        .find_map(|p| match p {
            Pdu::TaskMgmtRequest(t) => Some(t.itt),
            _ => None,
        })
        .expect("the hole-plugging abort");
    let done = s.tmf_response(plug, TmfResponse::FunctionComplete);
    s.step(&[done], 0);
    s.finish("reject_and_plug", |r| assert_eq!(r.failed, 1));

    // Digests on, the 64 KiB read answered by one Data-In of 64 KiB: a long
    // segment, read into its own buffer once its header is in, here fed
    // 251 bytes at a time (odd, so pieces end anywhere in header, segment
    // or digest); then the same stream cut off inside the segment, where
    // the read times out (its abort unanswered, the connection dropped).
    for (name, cut, done) in [
        ("long_data_in", false, 1),
        ("long_data_in_cut_off", true, 0),
    ] {
        let mut s = Script::new(0x01 | 0x02, 1 << 2);
        let itts = Script::command_itts(&s.sent());
        let read = s.data_in(itts[0], 0, 0, 64 * 1024, true);
        s.step(&[read], 0);
        if cut {
            s.steps[0].0.truncate(40_000);
        }
        s.finish_in_pieces(name, 251, |r| {
            assert_eq!(r.completed, done);
            assert_eq!(r.failed, 1 - done);
        });
    }
}

fn login_seed(name: &str, setup: login::Setup<'_>, expect_logged_in: bool) {
    let bytes = setup.to_bytes();
    let (logged_in, _) = login::run(&bytes).expect("the seed parses");
    println!("  {name}: logged in {logged_in}");
    assert_eq!(logged_in, expect_logged_in, "{name}");
    write_seed("login_chap", name, &bytes);
}

fn record(flags: u8, pairs: &[(&str, &str)]) -> Vec<u8> {
    login::Record {
        flags,
        status: (0, 0),
        text: text(pairs).to_vec(),
    }
    .to_bytes()
}

/// Record flags: T, CSG, NSG.
fn rflags(transit: bool, csg: u8, nsg: u8) -> u8 {
    u8::from(transit) | (csg << 2) | (nsg << 4)
}

fn login_seeds() {
    // The operational answers of a target that echoes our offers.
    let operational: &[(&str, &str)] = &[
        ("HeaderDigest", "None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", "65536"),
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
        ("MaxBurstLength", "262144"),
        ("FirstBurstLength", "65536"),
        ("DefaultTime2Wait", "2"),
        ("DefaultTime2Retain", "0"),
        ("MaxOutstandingR2T", "1"),
        ("MaxConnections", "1"),
        ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"),
        ("ErrorRecoveryLevel", "0"),
    ];
    // Framed, nothing scripted: one-way CHAP with MD5 all the way.
    let c = iscsi_session::core::chap::to_hex_value(&login::CHALLENGE);
    let mut stream = record(rflags(false, 0, 0), &[("AuthMethod", "CHAP")]);
    stream.extend(record(
        rflags(false, 0, 0),
        &[("CHAP_A", "5"), ("CHAP_I", "7"), ("CHAP_C", &c)],
    ));
    stream.extend(record(rflags(true, 0, 1), &[]));
    let mut last = login::Record::parse_all(&record(rflags(true, 1, 3), operational))
        .pop()
        .expect("a record");
    last.flags |= 0x40;
    stream.extend(last.to_bytes());
    login_seed(
        "one_way_framed",
        login::Setup {
            flags: 0x08,
            chunk_sizes: vec![],
            stream: &stream,
        },
        true,
    );

    // Mutual CHAP with SHA-256 first in the offer; the target's CHAP_R is
    // filled in by the harness (CHAP_R=@).
    let mut stream = record(rflags(false, 0, 0), &[("AuthMethod", "CHAP")]);
    stream.extend(record(
        rflags(false, 0, 0),
        &[("CHAP_A", "7"), ("CHAP_I", "9"), ("CHAP_C", &c)],
    ));
    stream.extend(record(
        rflags(true, 0, 1),
        &[("CHAP_N", login::TARGET_USER), ("CHAP_R", "@")],
    ));
    let mut last = login::Record::parse_all(&record(rflags(true, 1, 3), operational))
        .pop()
        .expect("a record");
    last.flags |= 0x40;
    stream.extend(last.to_bytes());
    login_seed(
        "mutual_sha256_framed",
        login::Setup {
            flags: 0x08 | 0x01 | (1 << 1),
            chunk_sizes: vec![],
            stream: &stream,
        },
        true,
    );

    // Mutual CHAP scripted through security; the target then fails the
    // login with "authorization failure" (0201h).
    let failure = login::Record {
        flags: rflags(false, 1, 1),
        status: (2, 1),
        text: Vec::new(),
    };
    login_seed(
        "mutual_scripted_refused",
        login::Setup {
            flags: 0x08 | 0x01 | (3 << 4),
            chunk_sizes: vec![],
            stream: &failure.to_bytes(),
        },
        false,
    );

    // Raw bytes after a scripted AuthMethod: a Login Response with a wrong
    // CHAP_A, cut into small pieces.
    let setup = login::Setup {
        flags: 1 << 4,
        chunk_sizes: vec![],
        stream: &[],
    };
    let mut h = login::Harness::new(&setup, &[], false);
    h.script(&setup);
    let resp = h.target.login_response(
        iscsi_proto::pdu::Stage::Security,
        None,
        0,
        text(&[("CHAP_A", "99"), ("CHAP_I", "1"), ("CHAP_C", "0x00")]),
    );
    let raw = h.target.encode(&Pdu::LoginResponse(resp));
    login_seed(
        "raw_wrong_algorithm",
        login::Setup {
            flags: 1 << 4,
            chunk_sizes: vec![7, 40, 3],
            stream: &raw,
        },
        false,
    );
}

/// An NBD request header.
fn nbd_request(flags: u16, command: u16, handle: u64, offset: u64, length: u32) -> Vec<u8> {
    let mut v = 0x2560_9513u32.to_be_bytes().to_vec();
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&command.to_be_bytes());
    v.extend_from_slice(&handle.to_be_bytes());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(&length.to_be_bytes());
    v
}

/// A client option: IHAVEOPT, option, length, data.
fn nbd_option(option: u32, data: &[u8]) -> Vec<u8> {
    let mut v = 0x4948_4156_454f_5054u64.to_be_bytes().to_vec();
    v.extend_from_slice(&option.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn nbd_seeds() {
    // Decoder: a read, a write, an oversized write skipped, a flush; cut
    // into 5, 29 and 64-byte pieces; payload limit 1024.
    let mut stream = nbd_request(0, 0, 1, 0, 4096);
    stream.extend(nbd_request(1, 1, 2, 512, 16));
    stream.extend([0xab; 16]);
    stream.extend(nbd_request(0, 1, 3, 0, 2000));
    stream.extend([0xcd; 2000]);
    stream.extend(nbd_request(0, 3, 4, 0, 0));
    let mut seed = vec![0x00, 0x04, 0x00, 3, 4, 28, 63];
    seed.extend(&stream);
    riscsi_fuzz::nbd::run(&seed);
    write_seed("nbd_requests", "decoder_mixed", &seed);

    // Session: fixed newstyle, STRUCTURED_REPLY, INFO, LIST, then GO and
    // transmission: write, read, write zeroes, trim, flush, cache, disconnect.
    let mut go = 0u32.to_be_bytes().to_vec();
    go.extend_from_slice(&2u16.to_be_bytes());
    go.extend_from_slice(&1u16.to_be_bytes());
    go.extend_from_slice(&3u16.to_be_bytes());
    let mut client = 3u32.to_be_bytes().to_vec();
    client.extend(nbd_option(8, &[]));
    client.extend(nbd_option(6, &go));
    client.extend(nbd_option(3, &[]));
    client.extend(nbd_option(7, &go));
    client.extend(nbd_request(1, 1, 10, 4096, 8192));
    client.extend((0..8192).map(|i| (i % 7) as u8));
    client.extend(nbd_request(0, 0, 11, 4096, 8192));
    client.extend(nbd_request(0, 6, 12, 0, 4096));
    client.extend(nbd_request(0, 4, 13, 8192, 1024));
    client.extend(nbd_request(0, 3, 14, 0, 0));
    client.extend(nbd_request(0, 5, 15, 0, 512));
    client.extend(nbd_request(0, 2, 16, 0, 0));
    for (name, flags) in [
        ("session_structured", 0x01 | 0x04),
        ("session_no_write_same", 0x01 | 0x04 | 0x08),
    ] {
        let mut seed = vec![flags, 2, 99, 255];
        seed.extend(&client);
        let (out, ended) = riscsi_fuzz::nbd::run_session(&seed).expect("parses");
        println!("  {name}: {out} bytes out, {ended}");
        assert!(ended.starts_with("transmission"), "{name}: {ended}");
        write_seed("nbd_requests", name, &seed);
    }

    // Old-style EXPORT_NAME without fixed newstyle, then a read past the end.
    let mut client = 0u32.to_be_bytes().to_vec();
    client.extend(nbd_option(1, b"fuzz"));
    client.extend(nbd_request(0, 0, 1, 65536 - 512, 1024));
    let mut seed = vec![0x01 | 0x02, 0];
    seed.extend(&client);
    let (out, ended) = riscsi_fuzz::nbd::run_session(&seed).expect("parses");
    println!("  session_export_name: {out} bytes out, {ended}");
    write_seed("nbd_requests", "session_export_name", &seed);
}

fn connection_info_seeds() {
    let docs = [
        (
            "singular_chap",
            r#"{"driver_volume_type":"iscsi","data":{"target_discovered":false,"target_portal":"10.0.0.1:3260","target_iqn":"iqn.2010-10.org.openstack:volume-1","target_lun":1,"auth_method":"CHAP","auth_username":"user","auth_password":"hunter2-secret","discovery_auth_method":"CHAP","discovery_auth_username":"duser","discovery_auth_password":"d1scovery-secret","access_mode":"rw","discard":true,"volume_id":"vol-1","encrypted":false}}"#,
        ),
        (
            "lists_bare",
            r#"{"target_portals":["10.0.0.1:3260","[fe80::1]:3260,2"],"target_iqns":["iqn.2010-10.org.openstack:volume-1","iqn.2010-10.org.openstack:volume-1"],"target_luns":[1,"2"],"target_portal":"[fe80::1]:3260","access_mode":"ro","qos_specs":{"read_iops_sec":"100"},"cacheable":true}"#,
        ),
        (
            "bad_lun_and_password_type",
            r#"{"target_portal":"10.0.0.1:3260","target_iqn":"iqn.x","target_lun":16384.0,"auth_method":"chap","auth_username":"u","auth_password":12345}"#,
        ),
        (
            // A password key inside qos_specs is an ordinary string, shown
            // in the Debug as given; the harness took it for a password.
            "regression_password_key_in_qos_specs",
            "{\"target_portal\":\"10.0.0.1:3260\",\"target_iqn\":\"iqn.x\",\"target_lun\":0,\"auth_method\":\"CHAP\",\"auth_username\":\"u\",\"auth_password\":\"\u{1F511}kept\",\"qos_specs\":{\"discovery_auth_password\":\"\u{1F511}shown\"}}",
        ),
    ];
    for (name, doc) in docs {
        let mut seed = vec![0u8];
        seed.extend_from_slice(doc.as_bytes());
        riscsi_fuzz::connection_info::run(&seed);
        write_seed("connection_info", name, &seed);
    }
    // Structured mode: bytes that build a document (any bytes do).
    let seed: Vec<u8> = std::iter::once(1u8)
        .chain((0u8..=255).map(|b| b.wrapping_mul(37)))
        .collect();
    riscsi_fuzz::connection_info::run(&seed);
    write_seed("connection_info", "structured_any", &seed);

    // Structured mode building `{"target_lun": 1.1631898716904038e-28}`:
    // target_portal and target_iqn absent (choice 0), target_lun a number
    // (choice 4) that is a float (3) from these 8 bits; every later key is
    // absent once the bytes run out, and the document is the bare object.
    // Its text read 1 ULP off before serde_json's float_roundtrip.
    let lun = 1.163_189_871_690_403_8e-28_f64;
    let mut seed = vec![1u8, 0, 0, 4, 3];
    seed.extend(lun.to_bits().to_le_bytes());
    let doc =
        riscsi_fuzz::connection_info::document(&mut Unstructured::new(&seed[1..])).expect("builds");
    assert_eq!(doc, serde_json::json!({ "target_lun": lun }), "{doc}");
    riscsi_fuzz::connection_info::run(&seed);
    write_seed("connection_info", "regression_float_lun", &seed);
}

fn main() {
    session_seeds();
    login_seeds();
    nbd_seeds();
    connection_info_seeds();
}
