//! Golden byte vectors: one PDU of each kind written by hand from the RFC 7143
//! §11 field tables (byte offsets in the comments), never produced by our
//! encoder. Each asserts decode(bytes) == the expected struct and
//! encode(struct) == bytes. Digest vectors reuse the CRC32C values of RFC 7143
//! Appendix B. The `captured_*` vectors are real PDUs between libiscsi's
//! iscsi-inq and tgtd 1.0.85, captured with tshark; the fields asserted are the
//! ones tshark printed for them.

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, DataIn, DataInStatus, DataOut, Isid, Itt, LoginRequest,
    LoginResponse, LoginStatus, LogoutReason, LogoutRequest, LogoutResponse, LogoutResponseCode,
    Lun, NopIn, NopOut, Pdu, R2t, Reject, RejectReason, Residual, ScsiCommand, ScsiResponse,
    ServiceResponse, SnackRequest, SnackType, Stage, TaskAttribute, TaskMgmtRequest,
    TaskMgmtResponse, TextRequest, TextResponse, TmfFunction, TmfResponse, Ttt,
};
use iscsi_proto::scsi::Cdb;

const NO_DIGESTS: Digests = Digests {
    header: false,
    data: false,
};

/// Decodes `wire` whole and encodes `expected`, both must match exactly.
fn assert_golden(wire: &[u8], digests: Digests, expected: &Pdu) {
    let mut buf = BytesMut::from(wire);
    let decoded = PduDecoder::new(digests, 1 << 20)
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("golden {:?} refused: {e}", expected.opcode()))
        .unwrap_or_else(|| panic!("golden {:?} incomplete", expected.opcode()));
    assert_eq!(&decoded, expected);
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    let mut encoded = BytesMut::new();
    PduEncoder::new(digests, 1 << 20)
        .encode(expected, &mut encoded)
        .expect("golden PDU encodes");
    assert_eq!(&encoded[..], wire, "encoding of {:?}", expected.opcode());
}

fn lun(n: u8) -> Lun {
    Lun([0, n, 0, 0, 0, 0, 0, 0])
}

// ---------------------------------------------------------------- initiator PDUs

#[rustfmt::skip]
const NOP_OUT: [u8; 56] = [
    0x40, 0x80, 0x00, 0x00, // 0: .I + 0x00 NOP-Out | F=1 | reserved
    0x00, 0x00, 0x00, 0x05, // 4: TotalAHSLength 0 | DataSegmentLength 5
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 1
    0x00, 0x00, 0x00, 0x0a, // 16: Initiator Task Tag
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (reserved: not answering a ping)
    0x00, 0x00, 0x00, 0x10, // 24: CmdSN
    0x00, 0x00, 0x00, 0x20, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
    b'p', b'i', b'n', b'g', b'!', 0x00, 0x00, 0x00, // 48: ping data + 3 bytes padding
];

fn nop_out() -> Pdu {
    Pdu::NopOut(NopOut {
        immediate: true,
        lun: lun(1),
        itt: Itt(0x0a),
        ttt: Ttt::RESERVED,
        cmd_sn: 0x10,
        exp_stat_sn: 0x20,
        data: Bytes::from_static(b"ping!"),
    })
}

#[test]
fn golden_nop_out() {
    assert_golden(&NOP_OUT, NO_DIGESTS, &nop_out());
}

#[rustfmt::skip]
const SCSI_COMMAND_READ10: [u8; 48] = [
    0x01, 0xc1, 0x00, 0x00, // 0: 0x01 SCSI Command | F=1 R=1 W=0 ATTR=1 (simple) | reserved
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength 0 | DataSegmentLength 0
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x11, // 16: Initiator Task Tag
    0x00, 0x00, 0x10, 0x00, // 20: Expected Data Transfer Length 4096
    0x00, 0x00, 0x00, 0x21, // 24: CmdSN
    0x00, 0x00, 0x00, 0x31, // 28: ExpStatSN
    // 32: CDB: READ(10), LBA 0x1000, transfer length 8 blocks, zero padded to 16
    0x28, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn golden_scsi_command_read10() {
    let mut cdb = [0u8; 16];
    cdb[..10].copy_from_slice(&[0x28, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0]);
    let expected = Pdu::ScsiCommand(ScsiCommand {
        immediate: false,
        final_: true,
        read: true,
        write: false,
        attribute: TaskAttribute::Simple,
        lun: lun(2),
        itt: Itt(0x11),
        expected_data_transfer_length: 4096,
        cmd_sn: 0x21,
        exp_stat_sn: 0x31,
        cdb: Cdb::from_slice(&cdb).unwrap(),
        bidi_read_length: None,
        data: Bytes::new(),
    });
    assert_golden(&SCSI_COMMAND_READ10, NO_DIGESTS, &expected);
}

/// A 32-byte variable-length CDB (§11.3.5: the 16 bytes beyond the BHS go in an
/// Extended CDB AHS), a bidirectional read length AHS (§11.2.2.4) and 8 bytes
/// of immediate data.
#[rustfmt::skip]
const SCSI_COMMAND_EXTENDED: [u8; 84] = [
    0x41, 0x60, 0x00, 0x00, // 0: .I + 0x01 | F=0 R=1 W=1 ATTR=0 (untagged)
    0x07, 0x00, 0x00, 0x08, // 4: TotalAHSLength 7 words | DataSegmentLength 8
    0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 3
    0xde, 0xad, 0xbe, 0xef, // 16: Initiator Task Tag
    0x00, 0x00, 0x02, 0x00, // 20: Expected Data Transfer Length 512 (the write part)
    0x00, 0x00, 0x00, 0x22, // 24: CmdSN
    0x00, 0x00, 0x00, 0x32, // 28: ExpStatSN
    // 32: CDB bytes 0..16: variable-length CDB, additional CDB length 0x18
    0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    // 48: AHS: AHSLength 0x0011 (CDB length - 15) | AHSType 1 (extended CDB) | reserved
    0x00, 0x11, 0x01, 0x00,
    // 52: CDB bytes 16..32
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    // 68: AHS: AHSLength 0x0005 | AHSType 2 (bidi read length) | reserved
    0x00, 0x05, 0x02, 0x00,
    0x00, 0x00, 0x10, 0x00, // 72: Expected Bidirectional Read Data Length 4096
    // 76: immediate data
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
];

#[test]
fn golden_scsi_command_extended_cdb_and_bidi() {
    let mut cdb = vec![0u8; 32];
    cdb[..16].copy_from_slice(&SCSI_COMMAND_EXTENDED[32..48]);
    cdb[16..].copy_from_slice(&SCSI_COMMAND_EXTENDED[52..68]);
    let expected = Pdu::ScsiCommand(ScsiCommand {
        immediate: true,
        final_: false,
        read: true,
        write: true,
        attribute: TaskAttribute::Untagged,
        lun: lun(3),
        itt: Itt(0xdead_beef),
        expected_data_transfer_length: 512,
        cmd_sn: 0x22,
        exp_stat_sn: 0x32,
        cdb: Cdb::new(Bytes::from(cdb)).unwrap(),
        bidi_read_length: Some(4096),
        data: Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]),
    });
    assert_golden(&SCSI_COMMAND_EXTENDED, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const TASK_MGMT_REQUEST: [u8; 48] = [
    0x42, 0x81, 0x00, 0x00, // 0: .I + 0x02 TMF Request | 1 + Function 1 (ABORT TASK)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x12, // 16: Initiator Task Tag
    0x00, 0x00, 0x00, 0x11, // 20: Referenced Task Tag
    0x00, 0x00, 0x00, 0x22, // 24: CmdSN
    0x00, 0x00, 0x00, 0x32, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x21, // 32: RefCmdSN
    0x00, 0x00, 0x00, 0x03, // 36: ExpDataSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
];

#[test]
fn golden_task_mgmt_request() {
    let expected = Pdu::TaskMgmtRequest(TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::AbortTask,
        lun: lun(2),
        itt: Itt(0x12),
        referenced_task_tag: Itt(0x11),
        cmd_sn: 0x22,
        exp_stat_sn: 0x32,
        ref_cmd_sn: 0x21,
        exp_data_sn: 3,
    });
    assert_golden(&TASK_MGMT_REQUEST, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const LOGIN_REQUEST: [u8; 100] = [
    0x43, 0x81, 0x00, 0x00, // 0: .I + 0x03 Login | T=1 C=0 CSG=0 NSG=1 | Version-max 0 | Version-min 0
    0x00, 0x00, 0x00, 0x31, // 4: TotalAHSLength | DataSegmentLength 49
    0x80, 0x12, 0x34, 0x56, 0x78, 0x9a, // 8: ISID (T=10b random, A..D)
    0x00, 0x00, // 14: TSIH 0 (new session)
    0x00, 0x00, 0x00, 0x00, // 16: Initiator Task Tag
    0x00, 0x01, 0x00, 0x00, // 20: CID 1 | reserved
    0x00, 0x00, 0x00, 0x01, // 24: CmdSN
    0x00, 0x00, 0x00, 0x00, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
    // 48: "InitiatorName=iqn.2024-01.test:i\0" (33 bytes)
    b'I', b'n', b'i', b't', b'i', b'a', b't', b'o', b'r', b'N', b'a', b'm', b'e', b'=',
    b'i', b'q', b'n', b'.', b'2', b'0', b'2', b'4', b'-', b'0', b'1', b'.', b't', b'e', b's', b't',
    b':', b'i', 0x00,
    // 81: "AuthMethod=None\0" (16 bytes), then 3 bytes padding
    b'A', b'u', b't', b'h', b'M', b'e', b't', b'h', b'o', b'd', b'=', b'N', b'o', b'n', b'e', 0x00,
    0x00, 0x00, 0x00,
];

#[test]
fn golden_login_request() {
    let expected = Pdu::LoginRequest(LoginRequest {
        transit: true,
        continue_: false,
        csg: Stage::Security,
        nsg: Stage::Operational,
        version_max: 0,
        version_min: 0,
        isid: Isid([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]),
        tsih: 0,
        itt: Itt(0),
        cid: 1,
        cmd_sn: 1,
        exp_stat_sn: 0,
        data: Bytes::from_static(b"InitiatorName=iqn.2024-01.test:i\0AuthMethod=None\0"),
    });
    assert_golden(&LOGIN_REQUEST, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const TEXT_REQUEST: [u8; 64] = [
    0x44, 0x80, 0x00, 0x00, // 0: .I + 0x04 Text Request | F=1 C=0
    0x00, 0x00, 0x00, 0x10, // 4: TotalAHSLength | DataSegmentLength 16
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN (reserved)
    0x00, 0x00, 0x00, 0x13, // 16: Initiator Task Tag
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (new exchange)
    0x00, 0x00, 0x00, 0x23, // 24: CmdSN
    0x00, 0x00, 0x00, 0x33, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
    // 48: "SendTargets=All\0", a multiple of 4: no padding
    b'S', b'e', b'n', b'd', b'T', b'a', b'r', b'g', b'e', b't', b's', b'=', b'A', b'l', b'l', 0x00,
];

#[test]
fn golden_text_request() {
    let expected = Pdu::TextRequest(TextRequest {
        immediate: true,
        final_: true,
        continue_: false,
        lun: Lun::default(),
        itt: Itt(0x13),
        ttt: Ttt::RESERVED,
        cmd_sn: 0x23,
        exp_stat_sn: 0x33,
        data: Bytes::from_static(b"SendTargets=All\0"),
    });
    assert_golden(&TEXT_REQUEST, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const DATA_OUT: [u8; 56] = [
    0x05, 0x80, 0x00, 0x00, // 0: 0x05 SCSI Data-Out | F=1
    0x00, 0x00, 0x00, 0x06, // 4: TotalAHSLength | DataSegmentLength 6
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x14, // 16: Initiator Task Tag
    0x00, 0x00, 0x01, 0x00, // 20: Target Transfer Tag (from the R2T)
    0x00, 0x00, 0x00, 0x00, // 24: reserved
    0x00, 0x00, 0x00, 0x34, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x01, // 36: DataSN
    0x00, 0x00, 0x20, 0x00, // 40: Buffer Offset
    0x00, 0x00, 0x00, 0x00, // 44: reserved
    0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0x00, 0x00, // 48: data + 2 bytes padding
];

#[test]
fn golden_data_out() {
    let expected = Pdu::DataOut(DataOut {
        final_: true,
        lun: lun(2),
        itt: Itt(0x14),
        ttt: Ttt(0x100),
        exp_stat_sn: 0x34,
        data_sn: 1,
        buffer_offset: 0x2000,
        data: Bytes::from_static(&[0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6]),
    });
    assert_golden(&DATA_OUT, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const LOGOUT_REQUEST: [u8; 48] = [
    0x46, 0x81, 0x00, 0x00, // 0: .I + 0x06 Logout Request | 1 + Reason 1 (close connection)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: reserved
    0x00, 0x00, 0x00, 0x15, // 16: Initiator Task Tag
    0x00, 0x02, 0x00, 0x00, // 20: CID 2 | reserved
    0x00, 0x00, 0x00, 0x25, // 24: CmdSN
    0x00, 0x00, 0x00, 0x35, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
];

#[test]
fn golden_logout_request() {
    let expected = Pdu::LogoutRequest(LogoutRequest {
        immediate: true,
        reason: LogoutReason::CloseConnection,
        itt: Itt(0x15),
        cid: 2,
        cmd_sn: 0x25,
        exp_stat_sn: 0x35,
    });
    assert_golden(&LOGOUT_REQUEST, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const SNACK_REQUEST: [u8; 48] = [
    0x10, 0x81, 0x00, 0x00, // 0: 0x10 SNACK | 1 + Type 1 (Status)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN (reserved)
    0xff, 0xff, 0xff, 0xff, // 16: Initiator Task Tag (reserved for a Status SNACK)
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag / SNACK Tag (reserved)
    0x00, 0x00, 0x00, 0x00, // 24: reserved
    0x00, 0x00, 0x00, 0x36, // 28: ExpStatSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32: reserved
    0x00, 0x00, 0x00, 0x30, // 40: BegRun: first StatSN to resend
    0x00, 0x00, 0x00, 0x02, // 44: RunLength
];

#[test]
fn golden_snack_request() {
    let expected = Pdu::SnackRequest(SnackRequest {
        kind: SnackType::Status,
        lun: Lun::default(),
        itt: Itt::RESERVED,
        ttt: Ttt::RESERVED,
        exp_stat_sn: 0x36,
        beg_run: 0x30,
        run_length: 2,
    });
    assert_golden(&SNACK_REQUEST, NO_DIGESTS, &expected);
}

// ------------------------------------------------------------------ target PDUs

#[rustfmt::skip]
const NOP_IN: [u8; 56] = [
    0x20, 0x80, 0x00, 0x00, // 0: 0x20 NOP-In | F=1
    0x00, 0x00, 0x00, 0x05, // 4: TotalAHSLength | DataSegmentLength 5
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 1
    0x00, 0x00, 0x00, 0x0a, // 16: Initiator Task Tag (answers our ping)
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (no reply wanted)
    0x00, 0x00, 0x00, 0x20, // 24: StatSN
    0x00, 0x00, 0x00, 0x11, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x50, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 36: reserved
    0x00, 0x00, 0x00, 0x00, //
    b'p', b'i', b'n', b'g', b'!', 0x00, 0x00, 0x00, // 48: echoed data + padding
];

#[test]
fn golden_nop_in() {
    let expected = Pdu::NopIn(NopIn {
        lun: lun(1),
        itt: Itt(0x0a),
        ttt: Ttt::RESERVED,
        stat_sn: 0x20,
        exp_cmd_sn: 0x11,
        max_cmd_sn: 0x50,
        data: Bytes::from_static(b"ping!"),
    });
    assert_golden(&NOP_IN, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const SCSI_RESPONSE: [u8; 68] = [
    0x21, 0x82, 0x00, 0x02, // 0: 0x21 SCSI Response | 1 o=0 u=0 O=0 U=1 | Response 0 | Status 0x02 CHECK CONDITION
    0x00, 0x00, 0x00, 0x14, // 4: TotalAHSLength | DataSegmentLength 20
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: reserved
    0x00, 0x00, 0x00, 0x11, // 16: Initiator Task Tag
    0x00, 0x00, 0x00, 0x00, // 20: SNACK Tag
    0x00, 0x00, 0x00, 0x21, // 24: StatSN
    0x00, 0x00, 0x00, 0x12, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x51, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x01, // 36: ExpDataSN
    0x00, 0x00, 0x00, 0x00, // 40: Bidirectional Read Residual Count
    0x00, 0x00, 0x10, 0x00, // 44: Residual Count 4096 (nothing was read)
    0x00, 0x12, // 48: SenseLength 18, then fixed-format sense:
    0x70, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x0a, // ILLEGAL REQUEST, additional length 10
    0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, // ASC/ASCQ 0x24/0x00 invalid field in CDB
    0x00, 0x00,
];

#[test]
fn golden_scsi_response_with_sense() {
    let expected = ScsiResponse {
        response: ServiceResponse::CompletedAtTarget,
        status: 0x02,
        itt: Itt(0x11),
        snack_tag: 0,
        stat_sn: 0x21,
        exp_cmd_sn: 0x12,
        max_cmd_sn: 0x51,
        exp_data_sn: 1,
        bidi_read_residual: Residual::None,
        residual: Residual::Underflow(4096),
        data: Bytes::copy_from_slice(&SCSI_RESPONSE[48..]),
    };
    assert_eq!(
        expected.sense_bytes().as_deref(),
        Some(&SCSI_RESPONSE[50..68])
    );
    assert_golden(&SCSI_RESPONSE, NO_DIGESTS, &Pdu::ScsiResponse(expected));
}

#[rustfmt::skip]
const TASK_MGMT_RESPONSE: [u8; 48] = [
    0x22, 0x80, 0x01, 0x00, // 0: 0x22 TMF Response | 1 | Response 1 (task does not exist)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: reserved
    0x00, 0x00, 0x00, 0x12, // 16: Initiator Task Tag
    0x00, 0x00, 0x00, 0x00, // 20: reserved
    0x00, 0x00, 0x00, 0x22, // 24: StatSN
    0x00, 0x00, 0x00, 0x13, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x52, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 36: reserved
    0x00, 0x00, 0x00, 0x00, //
];

#[test]
fn golden_task_mgmt_response() {
    let expected = Pdu::TaskMgmtResponse(TaskMgmtResponse {
        response: TmfResponse::TaskDoesNotExist,
        itt: Itt(0x12),
        stat_sn: 0x22,
        exp_cmd_sn: 0x13,
        max_cmd_sn: 0x52,
    });
    assert_golden(&TASK_MGMT_RESPONSE, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const LOGIN_RESPONSE_REDIRECT: [u8; 80] = [
    0x23, 0x04, 0x00, 0x00, // 0: 0x23 Login Response | T=0 C=0 CSG=1 NSG=0 | Version-max 0 | Version-active 0
    0x00, 0x00, 0x00, 0x1f, // 4: TotalAHSLength | DataSegmentLength 31
    0x80, 0x12, 0x34, 0x56, 0x78, 0x9a, // 8: ISID
    0x00, 0x00, // 14: TSIH
    0x00, 0x00, 0x00, 0x01, // 16: Initiator Task Tag
    0x00, 0x00, 0x00, 0x00, // 20: reserved
    0x00, 0x00, 0x00, 0x07, // 24: StatSN
    0x00, 0x00, 0x00, 0x02, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x02, // 32: MaxCmdSN
    0x01, 0x01, 0x00, 0x00, // 36: Status-Class 1 | Status-Detail 1 (moved temporarily) | reserved
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
    // 48: "TargetAddress=127.0.0.2:3260,1\0" (31 bytes) + 1 byte padding
    b'T', b'a', b'r', b'g', b'e', b't', b'A', b'd', b'd', b'r', b'e', b's', b's', b'=',
    b'1', b'2', b'7', b'.', b'0', b'.', b'0', b'.', b'2', b':', b'3', b'2', b'6', b'0', b',', b'1',
    0x00, 0x00,
];

#[test]
fn golden_login_response_redirect() {
    let expected = Pdu::LoginResponse(LoginResponse {
        transit: false,
        continue_: false,
        csg: Stage::Operational,
        nsg: Stage::Operational,
        version_max: 0,
        version_active: 0,
        isid: Isid([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]),
        tsih: 0,
        itt: Itt(1),
        stat_sn: 7,
        exp_cmd_sn: 2,
        max_cmd_sn: 2,
        status: LoginStatus::TARGET_MOVED_TEMPORARILY,
        data: Bytes::from_static(b"TargetAddress=127.0.0.2:3260,1\0"),
    });
    assert_golden(&LOGIN_RESPONSE_REDIRECT, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const TEXT_RESPONSE: [u8; 100] = [
    0x24, 0x80, 0x00, 0x00, // 0: 0x24 Text Response | F=1 C=0
    0x00, 0x00, 0x00, 0x32, // 4: TotalAHSLength | DataSegmentLength 50
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN (reserved)
    0x00, 0x00, 0x00, 0x13, // 16: Initiator Task Tag
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (exchange complete)
    0x00, 0x00, 0x00, 0x23, // 24: StatSN
    0x00, 0x00, 0x00, 0x24, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x63, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 36: reserved
    0x00, 0x00, 0x00, 0x00, //
    // 48: "TargetName=iqn.2024-01.t:a\0" (27 bytes)
    b'T', b'a', b'r', b'g', b'e', b't', b'N', b'a', b'm', b'e', b'=',
    b'i', b'q', b'n', b'.', b'2', b'0', b'2', b'4', b'-', b'0', b'1', b'.', b't', b':', b'a', 0x00,
    // 75: "TargetAddress=10.0.0.1\0" (23 bytes), then 2 bytes padding
    b'T', b'a', b'r', b'g', b'e', b't', b'A', b'd', b'd', b'r', b'e', b's', b's', b'=',
    b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'1', 0x00,
    0x00, 0x00,
];

#[test]
fn golden_text_response() {
    let expected = Pdu::TextResponse(TextResponse {
        final_: true,
        continue_: false,
        lun: Lun::default(),
        itt: Itt(0x13),
        ttt: Ttt::RESERVED,
        stat_sn: 0x23,
        exp_cmd_sn: 0x24,
        max_cmd_sn: 0x63,
        data: Bytes::from_static(b"TargetName=iqn.2024-01.t:a\0TargetAddress=10.0.0.1\0"),
    });
    assert_golden(&TEXT_RESPONSE, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const DATA_IN_WITH_STATUS: [u8; 60] = [
    0x25, 0x83, 0x00, 0x00, // 0: 0x25 SCSI Data-In | F=1 A=0 O=0 U=1 S=1 | reserved | Status 0 GOOD
    0x00, 0x00, 0x00, 0x0a, // 4: TotalAHSLength | DataSegmentLength 10
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x11, // 16: Initiator Task Tag
    0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (no DataACK wanted)
    0x00, 0x00, 0x00, 0x24, // 24: StatSN
    0x00, 0x00, 0x00, 0x12, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x51, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x02, // 36: DataSN
    0x00, 0x00, 0x20, 0x00, // 40: Buffer Offset
    0x00, 0x00, 0x00, 0xf6, // 44: Residual Count 246
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, // 48: data
    0x00, 0x00, // padding
];

#[test]
fn golden_data_in_with_status() {
    let expected = Pdu::DataIn(DataIn {
        final_: true,
        acknowledge: false,
        status: Some(DataInStatus {
            status: 0,
            stat_sn: 0x24,
            residual: Residual::Underflow(246),
        }),
        lun: lun(2),
        itt: Itt(0x11),
        ttt: Ttt::RESERVED,
        exp_cmd_sn: 0x12,
        max_cmd_sn: 0x51,
        data_sn: 2,
        buffer_offset: 0x2000,
        data: Bytes::copy_from_slice(&DATA_IN_WITH_STATUS[48..58]),
    });
    assert_golden(&DATA_IN_WITH_STATUS, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const DATA_IN_ACK_REQUESTED: [u8; 52] = [
    0x25, 0x40, 0x00, 0x00, // 0: 0x25 | F=0 A=1 S=0 | reserved | Status (reserved without S)
    0x00, 0x00, 0x00, 0x04, // 4: TotalAHSLength | DataSegmentLength 4
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x16, // 16: Initiator Task Tag
    0x00, 0x00, 0x07, 0x77, // 20: Target Transfer Tag for the DataACK
    0x00, 0x00, 0x00, 0x00, // 24: StatSN (reserved without S)
    0x00, 0x00, 0x00, 0x12, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x51, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, // 36: DataSN
    0x00, 0x00, 0x00, 0x00, // 40: Buffer Offset
    0x00, 0x00, 0x00, 0x00, // 44: Residual Count (reserved without S)
    0xca, 0xfe, 0xba, 0xbe, // 48: data, no padding
];

#[test]
fn golden_data_in_ack_requested() {
    let expected = Pdu::DataIn(DataIn {
        final_: false,
        acknowledge: true,
        status: None,
        lun: lun(2),
        itt: Itt(0x16),
        ttt: Ttt(0x777),
        exp_cmd_sn: 0x12,
        max_cmd_sn: 0x51,
        data_sn: 0,
        buffer_offset: 0,
        data: Bytes::from_static(&[0xca, 0xfe, 0xba, 0xbe]),
    });
    assert_golden(&DATA_IN_ACK_REQUESTED, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const LOGOUT_RESPONSE: [u8; 48] = [
    0x26, 0x80, 0x02, 0x00, // 0: 0x26 Logout Response | 1 | Response 2 (recovery not supported)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: reserved
    0x00, 0x00, 0x00, 0x15, // 16: Initiator Task Tag
    0x00, 0x00, 0x00, 0x00, // 20: reserved
    0x00, 0x00, 0x00, 0x25, // 24: StatSN
    0x00, 0x00, 0x00, 0x26, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x65, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, // 36: reserved
    0x00, 0x02, 0x00, 0x14, // 40: Time2Wait 2 | Time2Retain 20
    0x00, 0x00, 0x00, 0x00, // 44: reserved
];

#[test]
fn golden_logout_response() {
    let expected = Pdu::LogoutResponse(LogoutResponse {
        response: LogoutResponseCode::RecoveryNotSupported,
        itt: Itt(0x15),
        stat_sn: 0x25,
        exp_cmd_sn: 0x26,
        max_cmd_sn: 0x65,
        time2wait: 2,
        time2retain: 20,
    });
    assert_golden(&LOGOUT_RESPONSE, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const R2T: [u8; 48] = [
    0x31, 0x80, 0x00, 0x00, // 0: 0x31 R2T | F=1
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
    0x00, 0x00, 0x00, 0x14, // 16: Initiator Task Tag
    0x00, 0x00, 0x01, 0x00, // 20: Target Transfer Tag
    0x00, 0x00, 0x00, 0x26, // 24: StatSN
    0x00, 0x00, 0x00, 0x15, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x54, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x01, // 36: R2TSN
    0x00, 0x01, 0x00, 0x00, // 40: Buffer Offset 65536
    0x00, 0x00, 0x80, 0x00, // 44: Desired Data Transfer Length 32768
];

#[test]
fn golden_r2t() {
    let expected = Pdu::R2t(R2t {
        lun: lun(2),
        itt: Itt(0x14),
        ttt: Ttt(0x100),
        stat_sn: 0x26,
        exp_cmd_sn: 0x15,
        max_cmd_sn: 0x54,
        r2t_sn: 1,
        buffer_offset: 65536,
        desired_data_transfer_length: 32768,
    });
    assert_golden(&R2T, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const ASYNC_MESSAGE: [u8; 48] = [
    0x32, 0x80, 0x00, 0x00, // 0: 0x32 Asynchronous Message | F=1
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN (reserved)
    0xff, 0xff, 0xff, 0xff, // 16: 0xffffffff
    0x00, 0x00, 0x00, 0x00, // 20: reserved
    0x00, 0x00, 0x00, 0x27, // 24: StatSN
    0x00, 0x00, 0x00, 0x16, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x55, // 32: MaxCmdSN
    0x02, 0x00, 0x00, 0x03, // 36: AsyncEvent 2 (drop connection) | AsyncVCode | Parameter1: CID 3
    0x00, 0x05, 0x00, 0x14, // 40: Parameter2: Time2Wait 5 | Parameter3: Time2Retain 20
    0x00, 0x00, 0x00, 0x00, // 44: reserved
];

#[test]
fn golden_async_message() {
    let expected = Pdu::AsyncMessage(AsyncMessage {
        lun: Lun::default(),
        stat_sn: 0x27,
        exp_cmd_sn: 0x16,
        max_cmd_sn: 0x55,
        event: AsyncEvent::DropConnection,
        vcode: 0,
        parameter1: 3,
        parameter2: 5,
        parameter3: 20,
        data: Bytes::new(),
    });
    assert_golden(&ASYNC_MESSAGE, NO_DIGESTS, &expected);
}

#[rustfmt::skip]
const REJECT_HEADER: [u8; 48] = [
    0x3f, 0x80, 0x09, 0x00, // 0: 0x3f Reject | 1 | Reason 0x09 (invalid PDU field)
    0x00, 0x00, 0x00, 0x30, // 4: TotalAHSLength | DataSegmentLength 48
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: reserved
    0xff, 0xff, 0xff, 0xff, // 16: 0xffffffff
    0x00, 0x00, 0x00, 0x00, // 20: reserved
    0x00, 0x00, 0x00, 0x28, // 24: StatSN
    0x00, 0x00, 0x00, 0x17, // 28: ExpCmdSN
    0x00, 0x00, 0x00, 0x56, // 32: MaxCmdSN
    0x00, 0x00, 0x00, 0x00, // 36: DataSN/R2TSN (reserved: not a SNACK)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40: reserved
];

#[test]
fn golden_reject() {
    // 48: the complete header of the rejected PDU: our NOP-Out's BHS.
    let wire = [&REJECT_HEADER[..], &NOP_OUT[..48]].concat();
    let reject = Reject {
        reason: RejectReason::InvalidPduField,
        stat_sn: 0x28,
        exp_cmd_sn: 0x17,
        max_cmd_sn: 0x56,
        data_sn_or_r2t_sn: 0,
        data: Bytes::copy_from_slice(&NOP_OUT[..48]),
    };
    assert_eq!(reject.rejected_itt(), Some(Itt(0x0a)));
    assert_eq!(reject.rejected_opcode(), Some(nop_out().opcode()));
    assert_golden(&wire, NO_DIGESTS, &Pdu::Reject(reject));
}

// ---------------------------------------------------------------------- digests

/// RFC 7143 Appendix B: "an iSCSI - SCSI Read (10) Command PDU" whose CRC is
/// sent as 56 3a 96 d9. As a header digest it makes a complete golden PDU.
#[rustfmt::skip]
const APPENDIX_B_READ10: [u8; 52] = [
    0x01, 0xc0, 0x00, 0x00, // 0: 0x01 SCSI Command | F=1 R=1 ATTR=0 (untagged)
    0x00, 0x00, 0x00, 0x00, // 4: TotalAHSLength | DataSegmentLength
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 0
    0x14, 0x00, 0x00, 0x00, // 16: Initiator Task Tag
    0x00, 0x00, 0x04, 0x00, // 20: Expected Data Transfer Length 1024
    0x00, 0x00, 0x00, 0x14, // 24: CmdSN
    0x00, 0x00, 0x00, 0x18, // 28: ExpStatSN
    // 32: READ(10) LBA 0, 2 blocks
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x56, 0x3a, 0x96, 0xd9, // 48: header digest
];

#[test]
fn golden_header_digest_appendix_b() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x28;
    cdb[8] = 0x02;
    let expected = Pdu::ScsiCommand(ScsiCommand {
        immediate: false,
        final_: true,
        read: true,
        write: false,
        attribute: TaskAttribute::Untagged,
        lun: Lun::default(),
        itt: Itt(0x1400_0000),
        expected_data_transfer_length: 1024,
        cmd_sn: 0x14,
        exp_stat_sn: 0x18,
        cdb: Cdb::from_slice(&cdb).unwrap(),
        bidi_read_length: None,
        data: Bytes::new(),
    });
    let digests = Digests {
        header: true,
        data: false,
    };
    assert_golden(&APPENDIX_B_READ10, digests, &expected);
    // The same bytes with a wrong digest are refused.
    let mut bad = BytesMut::from(&APPENDIX_B_READ10[..]);
    bad[51] ^= 0x80;
    assert!(PduDecoder::new(digests, 1 << 20).decode(&mut bad).is_err());
}

/// RFC 7143 Appendix B: 32 bytes of 0xff have the CRC sent as 43 ab a8 62.
#[test]
fn golden_data_digest_appendix_b() {
    #[rustfmt::skip]
    let header: [u8; 48] = [
        0x05, 0x00, 0x00, 0x00, // 0: 0x05 SCSI Data-Out | F=0
        0x00, 0x00, 0x00, 0x20, // 4: TotalAHSLength | DataSegmentLength 32
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 8: LUN 2
        0x00, 0x00, 0x00, 0x14, // 16: Initiator Task Tag
        0xff, 0xff, 0xff, 0xff, // 20: Target Transfer Tag (unsolicited data)
        0x00, 0x00, 0x00, 0x00, // 24: reserved
        0x00, 0x00, 0x00, 0x34, // 28: ExpStatSN
        0x00, 0x00, 0x00, 0x00, // 32: reserved
        0x00, 0x00, 0x00, 0x00, // 36: DataSN
        0x00, 0x00, 0x00, 0x00, // 40: Buffer Offset
        0x00, 0x00, 0x00, 0x00, // 44: reserved
    ];
    let wire = [&header[..], &[0xff; 32], &[0x43, 0xab, 0xa8, 0x62]].concat();
    let expected = Pdu::DataOut(DataOut {
        final_: false,
        lun: lun(2),
        itt: Itt(0x14),
        ttt: Ttt::RESERVED,
        exp_stat_sn: 0x34,
        data_sn: 0,
        buffer_offset: 0,
        data: Bytes::from_static(&[0xff; 32]),
    });
    let digests = Digests {
        header: false,
        data: true,
    };
    assert_golden(&wire, digests, &expected);
}

// ------------------------------------------------- captured: iscsi-inq vs tgtd

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn decode_captured(wire: &[u8]) -> Pdu {
    let mut buf = BytesMut::from(wire);
    let pdu = PduDecoder::new(NO_DIGESTS, 1 << 20)
        .decode(&mut buf)
        .expect("captured PDU decodes")
        .expect("captured PDU is complete");
    assert!(buf.is_empty());
    // Real peers leave reserved fields zero: re-encoding gives the same bytes.
    let mut again = BytesMut::new();
    PduEncoder::new(NO_DIGESTS, 1 << 20)
        .encode(&pdu, &mut again)
        .expect("encodes");
    assert_eq!(&again[..], wire);
    pdu
}

/// libiscsi's operational-stage Login Request (frame 4 of the capture).
const CAPTURED_LOGIN_REQUEST: &str = concat!(
    "43870000000001ba807aa0a4000000006e2f4f34000000000d6e082500000001",
    "00000000000000000000000000000000",
    "496e69746961746f724e616d653d69716e2e323030372d31302e636f6d2e6769746875623a7361686c626572673a",
    "6c696269736373693a69736373692d696e71005461726765744e616d653d69716e2e323032342d30312e74657374",
    "2e7269736373693a676f6c64656e0053657373696f6e547970653d4e6f726d616c00486561646572446967657374",
    "3d4e6f6e652c43524333324300446174614469676573743d4e6f6e6500496e697469616c5232543d4e6f00496d6d",
    "656469617465446174613d596573004d617842757273744c656e6774683d32363231343400466972737442757273",
    "744c656e6774683d3236323134340044656661756c7454696d6532576169743d320044656661756c7454696d6532",
    "52657461696e3d30004d61784f75747374616e64696e675232543d31004572726f725265636f766572794c657665",
    "6c3d300049464d61726b65723d4e6f004f464d61726b65723d4e6f004d6178436f6e6e656374696f6e733d31004d",
    "617852656376446174615365676d656e744c656e6774683d3236323134340044617461504455496e4f726465723d",
    "596573004461746153657175656e6365496e4f726465723d596573000000",
);

#[test]
fn captured_login_request() {
    let Pdu::LoginRequest(p) = decode_captured(&hex(CAPTURED_LOGIN_REQUEST)) else {
        panic!("not a login request");
    };
    // tshark: T=1 CSG=1 NSG=3, DataSegmentLength 442, ISID 807aa0a40000, TSIH 0,
    // ITT 0x6e2f4f34, CID 0, CmdSN 0x0d6e0825, ExpStatSN 1, padding 0000.
    assert!(p.transit && !p.continue_);
    assert_eq!((p.csg, p.nsg), (Stage::Operational, Stage::FullFeature));
    assert_eq!(p.data.len(), 442);
    assert_eq!(p.isid, Isid([0x80, 0x7a, 0xa0, 0xa4, 0x00, 0x00]));
    assert_eq!((p.tsih, p.itt, p.cid), (0, Itt(0x6e2f_4f34), 0));
    assert_eq!((p.cmd_sn, p.exp_stat_sn), (0x0d6e_0825, 1));
    assert!(
        p.data
            .starts_with(b"InitiatorName=iqn.2007-10.com.github:sahlberg:")
    );
    assert!(p.data.ends_with(b"DataSequenceInOrder=Yes\0"));
}

/// tgtd's final Login Response (frame 6).
const CAPTURED_LOGIN_RESPONSE: &str = concat!(
    "238700000000012c807aa0a4000001006e2f4f3400000000000000000d6e08250d6e0826",
    "000000000000000000000000",
    "546172676574506f7274616c47726f75705461673d31004865616465724469676573743d4e6f6e6500446174614469",
    "676573743d4e6f6e6500496e697469616c5232543d59657300496d6d656469617465446174613d596573004d6178",
    "42757273744c656e6774683d32363231343400466972737442757273744c656e6774683d36353533360044656661",
    "756c7454696d6532576169743d320044656661756c7454696d653252657461696e3d30004d61784f75747374616e",
    "64696e675232543d31004572726f725265636f766572794c6576656c3d300049464d61726b65723d4e6f004f464d",
    "61726b65723d4e6f004d6178436f6e6e656374696f6e733d310044617461504455496e4f726465723d5965730044",
    "61746153657175656e6365496e4f726465723d59657300",
);

#[test]
fn captured_login_response() {
    let Pdu::LoginResponse(p) = decode_captured(&hex(CAPTURED_LOGIN_RESPONSE)) else {
        panic!("not a login response");
    };
    // tshark: DataSegmentLength 300, ISID 807aa0a40000, TSIH 0x0100, ITT 0x6e2f4f34,
    // StatSN 0, ExpCmdSN 0x0d6e0825, MaxCmdSN 0x0d6e0826, Status: Success.
    assert!(p.transit);
    assert_eq!((p.csg, p.nsg), (Stage::Operational, Stage::FullFeature));
    assert_eq!(p.data.len(), 300);
    assert_eq!(p.tsih, 0x0100);
    assert_eq!(p.itt, Itt(0x6e2f_4f34));
    assert_eq!(
        (p.stat_sn, p.exp_cmd_sn, p.max_cmd_sn),
        (0, 0x0d6e_0825, 0x0d6e_0826)
    );
    assert_eq!(p.status, LoginStatus::SUCCESS);
    assert!(p.data.starts_with(b"TargetPortalGroupTag=1\0"));
}

#[test]
fn captured_scsi_response_check_condition() {
    // Frame 9: TEST UNIT READY answered with CHECK CONDITION, UNIT ATTENTION
    // 29/00 (power on, reset).
    let wire = hex(concat!(
        "218000020000001400000000000000006e2f4f3500000000000000010d6e08260d6e08a6",
        "000000000000000000000000",
        "0012700006000000000a00000000290000000000",
    ));
    let Pdu::ScsiResponse(p) = decode_captured(&wire) else {
        panic!("not a SCSI response");
    };
    // tshark: Response 0x00, Status 0x02, DataSegmentLength 20, ITT 0x6e2f4f35,
    // StatSN 1, ExpCmdSN 0x0d6e0826, MaxCmdSN 0x0d6e08a6, residuals 0, SenseLength 18.
    assert_eq!(p.response, ServiceResponse::CompletedAtTarget);
    assert_eq!(p.status, 0x02);
    assert_eq!(p.itt, Itt(0x6e2f_4f35));
    assert_eq!(
        (p.stat_sn, p.exp_cmd_sn, p.max_cmd_sn),
        (1, 0x0d6e_0826, 0x0d6e_08a6)
    );
    assert_eq!(
        (p.residual, p.bidi_read_residual),
        (Residual::None, Residual::None)
    );
    let sense = p.sense_bytes().expect("sense present");
    assert_eq!(sense.len(), 18);
    assert_eq!((sense[2] & 0x0f, sense[12], sense[13]), (0x06, 0x29, 0x00));
}

#[test]
fn captured_inquiry_command_and_data_in() {
    // Frame 12: INQUIRY, allocation length 64.
    let Pdu::ScsiCommand(cmd) = decode_captured(&hex(concat!(
        "01c100000000000000010000000000006e2f4f37000000400d6e082700000003",
        "12000000400000000000000000000000",
    ))) else {
        panic!("not a SCSI command");
    };
    // tshark: LUN 1, ITT 0x6e2f4f37, EDTL 64, CmdSN 0x0d6e0827, ExpStatSN 3.
    assert!(cmd.final_ && cmd.read && !cmd.write && !cmd.immediate);
    assert_eq!(cmd.attribute, TaskAttribute::Simple);
    assert_eq!(cmd.lun.number(), Some(1));
    assert_eq!(cmd.itt, Itt(0x6e2f_4f37));
    assert_eq!(cmd.expected_data_transfer_length, 64);
    assert_eq!((cmd.cmd_sn, cmd.exp_stat_sn), (0x0d6e_0827, 3));
    assert_eq!(&cmd.cdb[..6], &[0x12, 0, 0, 0, 0x40, 0]);

    // Frame 15: the 66-byte answer to INQUIRY(66), phase-collapsed status.
    let Pdu::DataIn(d) = decode_captured(&hex(concat!(
        "258100000000004200000000000000006e2f4f38ffffffff000000040d6e08290d6e08a9",
        "000000000000000000000000",
        "000005123d00000249455420202020205649525455414c2d4449534b20202020303030",
        "310000000000000000000000000000000000000000000004c00960030000000000",
    ))) else {
        panic!("not a Data-In");
    };
    // tshark: F=1 S=1, Status Good, DataSegmentLength 66, ITT 0x6e2f4f38,
    // StatSN 4, ExpCmdSN 0x0d6e0829, MaxCmdSN 0x0d6e08a9, DataSN 0, offset 0.
    assert!(d.final_ && !d.acknowledge);
    assert_eq!(
        d.status,
        Some(DataInStatus {
            status: 0,
            stat_sn: 4,
            residual: Residual::None
        })
    );
    assert_eq!(d.data.len(), 66);
    assert_eq!((d.itt, d.ttt), (Itt(0x6e2f_4f38), Ttt::RESERVED));
    assert_eq!((d.exp_cmd_sn, d.max_cmd_sn), (0x0d6e_0829, 0x0d6e_08a9));
    assert_eq!((d.data_sn, d.buffer_offset), (0, 0));
    assert_eq!(&d.data[8..16], b"IET     ");
    assert_eq!(&d.data[16..32], b"VIRTUAL-DISK    ");
}

#[test]
fn captured_logout() {
    // Frames 16 and 17: close session and its answer.
    let Pdu::LogoutRequest(req) = decode_captured(&hex(concat!(
        "468000000000000000000000000000006e2f4f39000000000d6e082900000005",
        "00000000000000000000000000000000",
    ))) else {
        panic!("not a logout request");
    };
    assert!(req.immediate);
    assert_eq!(req.reason, LogoutReason::CloseSession);
    assert_eq!((req.itt, req.cid), (Itt(0x6e2f_4f39), 0));
    assert_eq!((req.cmd_sn, req.exp_stat_sn), (0x0d6e_0829, 5));

    let Pdu::LogoutResponse(rsp) = decode_captured(&hex(concat!(
        "268000000000000000000000000000006e2f4f3900000000000000050d6e08290d6e08a9",
        "000000000000000000000000",
    ))) else {
        panic!("not a logout response");
    };
    assert_eq!(rsp.response, LogoutResponseCode::Success);
    assert_eq!(rsp.itt, Itt(0x6e2f_4f39));
    assert_eq!(
        (rsp.stat_sn, rsp.exp_cmd_sn, rsp.max_cmd_sn),
        (5, 0x0d6e_0829, 0x0d6e_08a9)
    );
    assert_eq!((rsp.time2wait, rsp.time2retain), (0, 0));
}
