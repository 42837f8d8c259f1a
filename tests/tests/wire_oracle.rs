//! The wire oracle: tshark, an independent iSCSI dissector, reads our encoder's
//! bytes. One PDU of each of the 18 kinds travels in a TCP stream written to a
//! pcap file (initiator PDUs to port 3260, target PDUs back); tshark must find
//! no malformed frame and no expert error, and must name every PDU as the
//! opcode we meant, in order. Run once without digests and once with header
//! and data digests negotiated in the login (tshark follows the negotiation).
//!
//! tshark is required: a missing tshark fails the test rather than skipping it.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, PduEncoder};
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, BHS_LEN, DataIn, DataOut, Isid, Itt, LoginRequest, LoginResponse,
    LoginStatus, LogoutReason, LogoutRequest, LogoutResponse, LogoutResponseCode, Lun, NopIn,
    NopOut, Opcode, Pdu, R2t, Reject, RejectReason, Residual, ScsiCommand, ScsiResponse,
    ServiceResponse, SnackRequest, SnackType, Stage, TaskAttribute, TaskMgmtRequest,
    TaskMgmtResponse, TextRequest, TextResponse, TmfFunction, TmfResponse, Ttt,
};
use iscsi_proto::scsi::Cdb;
use riscsi_tests::pcap::{Direction, PcapWriter, TcpFlow};

const INITIATOR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 51000);
const TARGET: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 20), 3260);
const TARGET_IQN: &str = "iqn.2024-01.test.riscsi:oracle";
const LUN: u16 = 1;

fn text(pairs: &[&str]) -> Bytes {
    let mut out = Vec::new();
    for pair in pairs {
        out.extend_from_slice(pair.as_bytes());
        out.push(0);
    }
    Bytes::from(out)
}

/// A short, consistent session: login, discovery, a read, a write, a ping, an
/// abort, a SNACK the target rejects, an async logout request, logout.
/// Returns each PDU with the digests in force when it is sent (none during
/// login, the negotiated ones after it).
fn conversation(negotiated: Digests) -> Vec<(Pdu, Digests)> {
    let digest_value = |on: bool| if on { "CRC32C" } else { "None" };
    let header_digest = format!("HeaderDigest={}", digest_value(negotiated.header));
    let data_digest = format!("DataDigest={}", digest_value(negotiated.data));
    let isid = Isid([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);
    let lun = Lun::from_number(LUN).expect("single-level LUN");
    let login = Digests::default();

    let login_request = Pdu::LoginRequest(LoginRequest {
        transit: true,
        continue_: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid,
        tsih: 0,
        itt: Itt(0),
        cid: 0,
        cmd_sn: 1,
        exp_stat_sn: 0,
        data: text(&[
            "InitiatorName=iqn.2024-01.test.riscsi:initiator",
            &format!("TargetName={TARGET_IQN}"),
            "SessionType=Normal",
            &header_digest,
            &data_digest,
            "MaxRecvDataSegmentLength=262144",
            "InitialR2T=Yes",
            "ImmediateData=No",
            "ErrorRecoveryLevel=0",
        ]),
    });
    let login_response = Pdu::LoginResponse(LoginResponse {
        transit: true,
        continue_: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_active: 0,
        isid,
        tsih: 1,
        itt: Itt(0),
        stat_sn: 0,
        exp_cmd_sn: 1,
        max_cmd_sn: 32,
        status: LoginStatus::SUCCESS,
        data: text(&[
            "TargetPortalGroupTag=1",
            &header_digest,
            &data_digest,
            "MaxRecvDataSegmentLength=262144",
            "InitialR2T=Yes",
            "ImmediateData=No",
            "ErrorRecoveryLevel=0",
        ]),
    });
    let send_targets = Pdu::TextRequest(TextRequest {
        immediate: true,
        final_: true,
        continue_: false,
        lun: Lun::default(),
        itt: Itt(1),
        ttt: Ttt::RESERVED,
        cmd_sn: 1,
        exp_stat_sn: 1,
        data: text(&["SendTargets=All"]),
    });
    let targets = Pdu::TextResponse(TextResponse {
        final_: true,
        continue_: false,
        lun: Lun::default(),
        itt: Itt(1),
        ttt: Ttt::RESERVED,
        stat_sn: 1,
        exp_cmd_sn: 1,
        max_cmd_sn: 32,
        data: text(&[
            &format!("TargetName={TARGET_IQN}"),
            "TargetAddress=192.0.2.20:3260,1",
        ]),
    });
    // READ(10) of 8 blocks of 512 bytes at LBA 0x20.
    let read = Pdu::ScsiCommand(ScsiCommand {
        immediate: false,
        final_: true,
        read: true,
        write: false,
        attribute: TaskAttribute::Simple,
        lun,
        itt: Itt(2),
        expected_data_transfer_length: 4096,
        cmd_sn: 1,
        exp_stat_sn: 2,
        cdb: Cdb::from_slice(&[0x28, 0, 0, 0, 0, 0x20, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        bidi_read_length: None,
        data: Bytes::new(),
    });
    let read_data = Pdu::DataIn(DataIn {
        final_: true,
        acknowledge: false,
        status: None,
        lun,
        itt: Itt(2),
        ttt: Ttt::RESERVED,
        exp_cmd_sn: 2,
        max_cmd_sn: 33,
        data_sn: 0,
        buffer_offset: 0,
        data: Bytes::from((0..4096u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
    });
    let read_status = Pdu::ScsiResponse(ScsiResponse {
        response: ServiceResponse::CompletedAtTarget,
        status: 0,
        itt: Itt(2),
        snack_tag: 0,
        stat_sn: 2,
        exp_cmd_sn: 2,
        max_cmd_sn: 33,
        exp_data_sn: 1,
        bidi_read_residual: Residual::None,
        residual: Residual::None,
        data: Bytes::new(),
    });
    // WRITE(10) of 2 blocks at LBA 0x40; InitialR2T=Yes, so the target asks.
    let write = Pdu::ScsiCommand(ScsiCommand {
        immediate: false,
        final_: true,
        read: false,
        write: true,
        attribute: TaskAttribute::Simple,
        lun,
        itt: Itt(3),
        expected_data_transfer_length: 1024,
        cmd_sn: 2,
        exp_stat_sn: 3,
        cdb: Cdb::from_slice(&[0x2a, 0, 0, 0, 0, 0x40, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        bidi_read_length: None,
        data: Bytes::new(),
    });
    let r2t = Pdu::R2t(R2t {
        lun,
        itt: Itt(3),
        ttt: Ttt(0x100),
        stat_sn: 3,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
        r2t_sn: 0,
        buffer_offset: 0,
        desired_data_transfer_length: 1024,
    });
    let write_data = Pdu::DataOut(DataOut {
        final_: true,
        lun,
        itt: Itt(3),
        ttt: Ttt(0x100),
        exp_stat_sn: 3,
        data_sn: 0,
        buffer_offset: 0,
        data: Bytes::from(vec![0x5a; 1024]),
    });
    let write_status = Pdu::ScsiResponse(ScsiResponse {
        response: ServiceResponse::CompletedAtTarget,
        status: 0,
        itt: Itt(3),
        snack_tag: 0,
        stat_sn: 3,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
        exp_data_sn: 0,
        bidi_read_residual: Residual::None,
        residual: Residual::None,
        data: Bytes::new(),
    });
    let ping = Pdu::NopOut(NopOut {
        immediate: true,
        lun: Lun::default(),
        itt: Itt(4),
        ttt: Ttt::RESERVED,
        cmd_sn: 3,
        exp_stat_sn: 4,
        data: Bytes::from_static(b"riscsi ping"),
    });
    let pong = Pdu::NopIn(NopIn {
        lun: Lun::default(),
        itt: Itt(4),
        ttt: Ttt::RESERVED,
        stat_sn: 4,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
        data: Bytes::from_static(b"riscsi ping"),
    });
    let abort = Pdu::TaskMgmtRequest(TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::AbortTask,
        lun,
        itt: Itt(5),
        referenced_task_tag: Itt(3),
        cmd_sn: 3,
        exp_stat_sn: 5,
        ref_cmd_sn: 2,
        exp_data_sn: 0,
    });
    let abort_done = Pdu::TaskMgmtResponse(TaskMgmtResponse {
        response: TmfResponse::TaskDoesNotExist,
        itt: Itt(5),
        stat_sn: 5,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
    });
    let snack = SnackRequest {
        kind: SnackType::Status,
        lun: Lun::default(),
        itt: Itt::RESERVED,
        ttt: Ttt::RESERVED,
        exp_stat_sn: 6,
        beg_run: 5,
        run_length: 1,
    };
    let mut snack_bhs = BytesMut::new();
    Pdu::SnackRequest(snack.clone())
        .encode_header(&mut snack_bhs)
        .expect("SNACK header");
    // ErrorRecoveryLevel=0: the target rejects the SNACK and returns its header.
    let reject = Pdu::Reject(Reject {
        reason: RejectReason::SnackReject,
        stat_sn: 6,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
        data_sn_or_r2t_sn: 0,
        data: snack_bhs.freeze().slice(..BHS_LEN),
    });
    let async_logout = Pdu::AsyncMessage(AsyncMessage {
        lun: Lun::default(),
        stat_sn: 7,
        exp_cmd_sn: 3,
        max_cmd_sn: 34,
        event: AsyncEvent::LogoutRequest,
        vcode: 0,
        parameter1: 0,
        parameter2: 0,
        parameter3: 10,
        data: Bytes::new(),
    });
    let logout = Pdu::LogoutRequest(LogoutRequest {
        immediate: true,
        reason: LogoutReason::CloseSession,
        itt: Itt(6),
        cid: 0,
        cmd_sn: 3,
        exp_stat_sn: 8,
    });
    let logout_done = Pdu::LogoutResponse(LogoutResponse {
        response: LogoutResponseCode::Success,
        itt: Itt(6),
        stat_sn: 8,
        exp_cmd_sn: 4,
        max_cmd_sn: 35,
        time2wait: 0,
        time2retain: 0,
    });

    let mut out = vec![(login_request, login), (login_response, login)];
    out.extend(
        [
            send_targets,
            targets,
            read,
            read_data,
            read_status,
            write,
            r2t,
            write_data,
            write_status,
            ping,
            pong,
            abort,
            abort_done,
            Pdu::SnackRequest(snack),
            reject,
            async_logout,
            logout,
            logout_done,
        ]
        .into_iter()
        .map(|p| (p, negotiated)),
    );
    out
}

/// The Ethernet frames of the whole flow (handshake, one TCP send per PDU,
/// close). `tamper` may change the wire bytes of PDU `i` before framing.
fn frames(pdus: &[(Pdu, Digests)], tamper: impl Fn(usize, &mut BytesMut)) -> Vec<Vec<u8>> {
    let mut flow = TcpFlow::new(INITIATOR, TARGET);
    let mut frames = flow.handshake();
    for (i, (pdu, digests)) in pdus.iter().enumerate() {
        let mut wire = BytesMut::new();
        PduEncoder::new(*digests, 1 << 20)
            .encode(pdu, &mut wire)
            .expect("conversation PDUs encode");
        tamper(i, &mut wire);
        let dir = if pdu.opcode().is_initiator_opcode() {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        frames.extend(flow.send(dir, &wire));
    }
    frames.extend(flow.close());
    frames
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut pcap = PcapWriter::new(std::io::BufWriter::new(file)).expect("pcap header");
    pcap.write_frames(frames).expect("write frames");
    std::io::Write::flush(&mut pcap.into_inner()).expect("flush pcap");
}

/// Synthetic captures carry real checksums: have tshark check them too.
const CHECKSUMS: [&str; 2] = ["tcp.check_checksum:TRUE", "ip.check_checksum:TRUE"];

/// Runs tshark on `path` with IP and TCP checksum validation on; returns stdout.
fn tshark(path: &Path, args: &[&str]) -> String {
    riscsi_tests::tshark::read(path, &CHECKSUMS, args)
}

/// Frames tshark flags as malformed or with an expert error, one line each.
fn problems(path: &Path) -> Vec<String> {
    riscsi_tests::tshark::problems(path, &CHECKSUMS, &[])
}

/// What tshark shows for one top-level iSCSI PDU.
#[derive(Debug, Default)]
struct Dissected {
    /// "Opcode: <name> (0x<code>)"
    opcode: String,
    /// "HeaderDigest: 0x... (Good CRC32)", when tshark found one.
    header_digest: Option<String>,
    /// "DataDigest: 0x... (Good CRC32)", when tshark found one.
    data_digest: Option<String>,
}

/// The `showname` attribute of a PDML line, from `from` on.
fn showname(line: &str, from: &str) -> String {
    let start = line.find(from).expect("showname has the field label");
    let rest = &line[start..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// Every top-level iSCSI PDU tshark dissects, in order. PDML indents a
/// top-level protocol element by two spaces and its own fields by four; the
/// rejected header inside a Reject is nested deeper and so ignored.
fn dissect(path: &Path) -> Vec<Dissected> {
    let pdml = tshark(path, &["-Y", "iscsi", "-T", "pdml"]);
    let mut out: Vec<Dissected> = Vec::new();
    for line in pdml.lines() {
        if line.starts_with("  <proto name=\"iscsi\"") {
            out.push(Dissected::default());
        } else if let Some(pdu) = out.last_mut() {
            if line.starts_with("    <field name=\"iscsi.opcode\"") {
                pdu.opcode = showname(line, "Opcode: ");
            } else if line.starts_with("    <field name=\"iscsi.headerdigest32\"") {
                pdu.header_digest = Some(showname(line, "HeaderDigest: "));
            } else if line.starts_with("    <field name=\"iscsi.datadigest32\"") {
                pdu.data_digest = Some(showname(line, "DataDigest: "));
            }
        }
    }
    out
}

/// tshark's showname for an opcode field: "Opcode: <name> (0x<code>)".
fn expected_showname(op: Opcode) -> String {
    format!("Opcode: {} ({:#04x})", op.name(), op.code())
}

/// Compares tshark's reading of the capture at `path` with the PDUs written
/// into it; returns every disagreement.
fn disagreements(path: &Path, pdus: &[(Pdu, Digests)]) -> Vec<String> {
    let mut errors: Vec<String> = problems(path)
        .into_iter()
        .map(|p| format!("tshark flags frame: {p}"))
        .collect();
    let seen = dissect(path);
    if seen.len() != pdus.len() {
        errors.push(format!(
            "tshark found {} iSCSI PDUs, we sent {}: {:?}",
            seen.len(),
            pdus.len(),
            seen.iter().map(|d| &d.opcode).collect::<Vec<_>>()
        ));
    }
    for (i, ((pdu, digests), got)) in pdus.iter().zip(&seen).enumerate() {
        let want = expected_showname(pdu.opcode());
        if got.opcode != want {
            errors.push(format!(
                "PDU {i}: tshark reads {:?}, we sent {want:?}",
                got.opcode
            ));
        }
        if got.header_digest.is_some() != digests.header {
            errors.push(format!(
                "PDU {i} ({want}): header digest {:?}, expected one: {}",
                got.header_digest, digests.header
            ));
        }
        // tshark reads the 4 bytes after a Reject's rejected header as that
        // header's digest, so it shows no data digest for a Reject.
        let data_digest_expected =
            digests.data && !pdu.data().is_empty() && pdu.opcode() != Opcode::Reject;
        if got.data_digest.is_some() != data_digest_expected {
            errors.push(format!(
                "PDU {i} ({want}): data digest {:?}, expected one: {data_digest_expected}",
                got.data_digest
            ));
        }
        for digest in got.header_digest.iter().chain(&got.data_digest) {
            if !digest.ends_with("(Good CRC32)") {
                errors.push(format!("PDU {i} ({want}): {digest}"));
            }
        }
    }
    errors
}

/// Writes the capture (to WIRE_ORACLE_KEEP=DIR if set, for a look with
/// wireshark, else to a temporary directory) and returns tshark's disagreements.
fn run_oracle(
    name: &str,
    pdus: &[(Pdu, Digests)],
    tamper: impl Fn(usize, &mut BytesMut),
    tamper_frames: impl Fn(&mut [Vec<u8>]),
) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = match std::env::var_os("WIRE_ORACLE_KEEP") {
        Some(keep) => Path::new(&keep).join(name),
        None => dir.path().join(name),
    };
    let mut frames = frames(pdus, tamper);
    tamper_frames(&mut frames);
    write_pcap(&path, &frames);
    disagreements(&path, pdus)
}

fn check_oracle(negotiated: Digests) {
    let pdus = conversation(negotiated);
    let kinds: HashSet<u8> = pdus.iter().map(|(p, _)| p.opcode().code()).collect();
    assert_eq!(kinds.len(), Opcode::ALL.len(), "every PDU kind is sent");
    let name = format!("oracle-hd{}-dd{}.pcap", negotiated.header, negotiated.data);
    let errors = run_oracle(&name, &pdus, |_, _| {}, |_| {});
    assert!(
        errors.is_empty(),
        "tshark disagrees with the {negotiated:?} capture:\n{}",
        errors.join("\n")
    );
}

#[test]
fn tshark_reads_every_pdu_kind_without_digests() {
    check_oracle(Digests::default());
}

#[test]
fn tshark_reads_every_pdu_kind_with_header_and_data_digests() {
    check_oracle(Digests {
        header: true,
        data: true,
    });
}

/// Negative controls: the oracle must see a broken byte, or it proves nothing.
#[test]
fn tshark_oracle_catches_broken_captures() {
    let plain = conversation(Digests::default());
    let index_of = |pdus: &[(Pdu, Digests)], op: Opcode| {
        pdus.iter()
            .position(|(p, _)| p.opcode() == op)
            .expect("the conversation has this kind")
    };

    // A vendor-specific opcode in place of the NOP-Out's.
    let nop = index_of(&plain, Opcode::NopOut);
    let errors = run_oracle(
        "neg-opcode.pcap",
        &plain,
        |i, w| {
            if i == nop {
                w[0] = (w[0] & 0xc0) | 0x1c;
            }
        },
        |_| {},
    );
    assert!(
        errors.iter().any(|e| e.contains("Vendor Specific")),
        "a wrong opcode went unnoticed: {errors:?}"
    );

    // One flipped bit in the Data-In's data digest.
    let digests = Digests {
        header: true,
        data: true,
    };
    let with_digests = conversation(digests);
    let data_in = index_of(&with_digests, Opcode::DataIn);
    let errors = run_oracle(
        "neg-data-digest.pcap",
        &with_digests,
        |i, w| {
            if i == data_in {
                let last = w.len() - 1;
                w[last] ^= 0x01;
            }
        },
        |_| {},
    );
    assert!(
        errors.iter().any(|e| e.contains("Bad CRC32")),
        "a bad data digest went unnoticed: {errors:?}"
    );

    // A TCP payload byte changed after the checksum was computed: tshark's
    // expert error path (the one that flags malformed frames) must fire.
    let errors = run_oracle(
        "neg-tcp-checksum.pcap",
        &plain,
        |_, _| {},
        |frames| {
            // Frame 3 is the login request: handshake frames carry no payload.
            let frame = &mut frames[3];
            let last = frame.len() - 1;
            frame[last] ^= 0xff;
        },
    );
    assert!(
        errors.iter().any(|e| e.starts_with("tshark flags frame")),
        "a bad TCP checksum went unnoticed: {errors:?}"
    );
}
