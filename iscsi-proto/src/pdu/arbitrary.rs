//! proptest strategies for every PDU, in canonical form: values that decode back
//! to themselves after encoding. Behind the `proptest-strategies` feature so that
//! the library does not depend on proptest; the proto crate's own tests and other
//! crates' tests (e.g. a session fed hostile but well-formed PDUs) share them.
//!
//! Canonical form, as the decoder reports it:
//! - a SCSI Command CDB is the 16-byte BHS field plus any extended CDB AHS, so
//!   CDBs are generated 16 bytes long or 17..=260;
//! - residual counts exist only with their O/U bits (`Residual`);
//! - the NSG of a Login PDU equals the CSG when T is clear (NSG is reserved);
//! - T and C are never both set (Login), nor F and C (Text);
//! - a Data-In carries status only when final;
//! - an Asynchronous Message and a Reject have no ITT field of their own;
//! - a Reject's data segment holds at least the 48-byte rejected BHS.

use crate::scsi::Cdb;
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::{
    AsyncEvent, AsyncMessage, BHS_LEN, DataIn, DataInStatus, DataOut, Isid, Itt, LogoutReason,
    LogoutRequest, LogoutResponse, LogoutResponseCode, Lun, MAX_CDB_LEN, NopIn, NopOut, Pdu, R2t,
    Reject, RejectReason, Residual, ScsiCommand, ScsiResponse, ServiceResponse, SnackRequest,
    SnackType, Stage, TaskAttribute, TaskMgmtRequest, TaskMgmtResponse, TextRequest, TextResponse,
    TmfFunction, TmfResponse, Ttt,
};
use super::{LoginRequest, LoginResponse, LoginStatus};

/// Largest data segment the strategies generate: enough to cover every padding
/// remainder and several TCP segments, small enough to keep cases fast.
pub const MAX_GENERATED_DATA: usize = 1500;

/// A data segment of 0..=`max` bytes.
pub fn data(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Any 8-byte LUN field.
pub fn lun() -> impl Strategy<Value = Lun> {
    any::<[u8; 8]>().prop_map(Lun)
}

/// Any 6-byte ISID.
pub fn isid() -> impl Strategy<Value = Isid> {
    any::<[u8; 6]>().prop_map(Isid)
}

/// An Initiator Task Tag, the reserved value often.
pub fn itt() -> impl Strategy<Value = Itt> {
    prop_oneof![Just(Itt::RESERVED), any::<u32>().prop_map(Itt)]
}

/// A Target Transfer Tag, the reserved value often.
pub fn ttt() -> impl Strategy<Value = Ttt> {
    prop_oneof![Just(Ttt::RESERVED), any::<u32>().prop_map(Ttt)]
}

/// One of the three defined login stages.
pub fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Security),
        Just(Stage::Operational),
        Just(Stage::FullFeature)
    ]
}

/// No residual, an underflow or an overflow.
pub fn residual() -> impl Strategy<Value = Residual> {
    prop_oneof![
        Just(Residual::None),
        any::<u32>().prop_map(Residual::Underflow),
        any::<u32>().prop_map(Residual::Overflow),
    ]
}

/// A CDB in the form decoding yields: 16 bytes, or 17..=260 with the tail in the
/// extended CDB AHS.
pub fn cdb() -> impl Strategy<Value = Cdb> {
    prop_oneof![
        3 => any::<[u8; 16]>().prop_filter_map("a CDB", |c| Cdb::from_slice(&c).ok()),
        1 => vec(any::<u8>(), 17..=MAX_CDB_LEN).prop_filter_map("a CDB", |c| Cdb::from_slice(&c).ok()),
    ]
}

/// One of the five defined task attributes.
pub fn task_attribute() -> impl Strategy<Value = TaskAttribute> {
    prop_oneof![
        Just(TaskAttribute::Untagged),
        Just(TaskAttribute::Simple),
        Just(TaskAttribute::Ordered),
        Just(TaskAttribute::HeadOfQueue),
        Just(TaskAttribute::Aca),
    ]
}

/// T, C, CSG, NSG: never T and C together; NSG equals CSG unless T is set.
fn login_stages() -> impl Strategy<Value = (bool, bool, Stage, Stage)> {
    (any::<bool>(), any::<bool>(), stage(), stage()).prop_map(|(transit, cont, csg, nsg)| {
        let cont = cont && !transit;
        let nsg = if transit { nsg } else { csg };
        (transit, cont, csg, nsg)
    })
}

/// F and C of a Text PDU: never both set.
fn text_flags() -> impl Strategy<Value = (bool, bool)> {
    prop_oneof![
        Just((true, false)),
        Just((false, true)),
        Just((false, false))
    ]
}

/// NOP-Out.
pub fn nop_out() -> impl Strategy<Value = NopOut> {
    (
        any::<bool>(),
        lun(),
        itt(),
        ttt(),
        any::<u32>(),
        any::<u32>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |(immediate, lun, itt, ttt, cmd_sn, exp_stat_sn, data)| NopOut {
                immediate,
                lun,
                itt,
                ttt,
                cmd_sn,
                exp_stat_sn,
                data,
            },
        )
}

/// SCSI Command, with a canonical-length CDB.
pub fn scsi_command() -> impl Strategy<Value = ScsiCommand> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            task_attribute(),
        ),
        (lun(), itt(), any::<u32>(), any::<u32>(), any::<u32>()),
        (cdb(), proptest::option::of(any::<u32>())),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |(
                (immediate, final_, read, write, attribute),
                (lun, itt, expected_data_transfer_length, cmd_sn, exp_stat_sn),
                (cdb, bidi_read_length),
                data,
            )| ScsiCommand {
                immediate,
                final_,
                read,
                write,
                attribute,
                lun,
                itt,
                expected_data_transfer_length,
                cmd_sn,
                exp_stat_sn,
                cdb,
                bidi_read_length,
                data,
            },
        )
}

/// One of the eight defined task management functions.
pub fn tmf_function() -> impl Strategy<Value = TmfFunction> {
    (1u8..=8).prop_map(|c| TmfFunction::from_code(c).expect("1..=8 are defined"))
}

/// Task Management Function Request.
pub fn task_mgmt_request() -> impl Strategy<Value = TaskMgmtRequest> {
    (
        any::<bool>(),
        tmf_function(),
        lun(),
        itt(),
        itt(),
        any::<[u32; 4]>(),
    )
        .prop_map(
            |(immediate, function, lun, itt, referenced_task_tag, sn)| TaskMgmtRequest {
                immediate,
                function,
                lun,
                itt,
                referenced_task_tag,
                cmd_sn: sn[0],
                exp_stat_sn: sn[1],
                ref_cmd_sn: sn[2],
                exp_data_sn: sn[3],
            },
        )
}

/// Login Request; never T and C together.
pub fn login_request() -> impl Strategy<Value = LoginRequest> {
    (
        login_stages(),
        (any::<u8>(), any::<u8>(), isid(), any::<u16>()),
        (itt(), any::<u16>(), any::<u32>(), any::<u32>()),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |(
                (transit, continue_, csg, nsg),
                (version_max, version_min, isid, tsih),
                (itt, cid, cmd_sn, exp_stat_sn),
                data,
            )| LoginRequest {
                transit,
                continue_,
                csg,
                nsg,
                version_max,
                version_min,
                isid,
                tsih,
                itt,
                cid,
                cmd_sn,
                exp_stat_sn,
                data,
            },
        )
}

/// Text Request; never F and C together.
pub fn text_request() -> impl Strategy<Value = TextRequest> {
    (
        any::<bool>(),
        text_flags(),
        lun(),
        itt(),
        ttt(),
        any::<u32>(),
        any::<u32>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |(immediate, (final_, continue_), lun, itt, ttt, cmd_sn, exp_stat_sn, data)| {
                TextRequest {
                    immediate,
                    final_,
                    continue_,
                    lun,
                    itt,
                    ttt,
                    cmd_sn,
                    exp_stat_sn,
                    data,
                }
            },
        )
}

/// SCSI Data-Out.
pub fn data_out() -> impl Strategy<Value = DataOut> {
    (
        any::<bool>(),
        lun(),
        itt(),
        ttt(),
        any::<[u32; 3]>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(|(final_, lun, itt, ttt, sn, data)| DataOut {
            final_,
            lun,
            itt,
            ttt,
            exp_stat_sn: sn[0],
            data_sn: sn[1],
            buffer_offset: sn[2],
            data,
        })
}

/// One of the three defined logout reasons.
pub fn logout_reason() -> impl Strategy<Value = LogoutReason> {
    (0u8..=2).prop_map(|c| LogoutReason::from_code(c).expect("0..=2 are defined"))
}

/// Logout Request.
pub fn logout_request() -> impl Strategy<Value = LogoutRequest> {
    (
        any::<bool>(),
        logout_reason(),
        itt(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(immediate, reason, itt, cid, cmd_sn, exp_stat_sn)| LogoutRequest {
                immediate,
                reason,
                itt,
                cid,
                cmd_sn,
                exp_stat_sn,
            },
        )
}

/// One of the four defined SNACK types.
pub fn snack_type() -> impl Strategy<Value = SnackType> {
    (0u8..=3).prop_map(|c| SnackType::from_code(c).expect("0..=3 are defined"))
}

/// SNACK Request.
pub fn snack_request() -> impl Strategy<Value = SnackRequest> {
    (snack_type(), lun(), itt(), ttt(), any::<[u32; 3]>()).prop_map(|(kind, lun, itt, ttt, n)| {
        SnackRequest {
            kind,
            lun,
            itt,
            ttt,
            exp_stat_sn: n[0],
            beg_run: n[1],
            run_length: n[2],
        }
    })
}

/// NOP-In.
pub fn nop_in() -> impl Strategy<Value = NopIn> {
    (
        lun(),
        itt(),
        ttt(),
        any::<[u32; 3]>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(|(lun, itt, ttt, sn, data)| NopIn {
            lun,
            itt,
            ttt,
            stat_sn: sn[0],
            exp_cmd_sn: sn[1],
            max_cmd_sn: sn[2],
            data,
        })
}

/// Any Response byte of a SCSI Response.
pub fn service_response() -> impl Strategy<Value = ServiceResponse> {
    any::<u8>().prop_map(ServiceResponse::from_code)
}

/// SCSI Response.
pub fn scsi_response() -> impl Strategy<Value = ScsiResponse> {
    (
        (service_response(), any::<u8>(), itt()),
        any::<[u32; 5]>(),
        (residual(), residual()),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |((response, status, itt), n, (bidi_read_residual, residual), data)| ScsiResponse {
                response,
                status,
                itt,
                snack_tag: n[0],
                stat_sn: n[1],
                exp_cmd_sn: n[2],
                max_cmd_sn: n[3],
                exp_data_sn: n[4],
                bidi_read_residual,
                residual,
                data,
            },
        )
}

/// Any Response byte of a Task Management Function Response.
pub fn tmf_response() -> impl Strategy<Value = TmfResponse> {
    any::<u8>().prop_map(TmfResponse::from_code)
}

/// Task Management Function Response.
pub fn task_mgmt_response() -> impl Strategy<Value = TaskMgmtResponse> {
    (tmf_response(), itt(), any::<[u32; 3]>()).prop_map(|(response, itt, sn)| TaskMgmtResponse {
        response,
        itt,
        stat_sn: sn[0],
        exp_cmd_sn: sn[1],
        max_cmd_sn: sn[2],
    })
}

/// Any Status-Class and Status-Detail pair.
pub fn login_status() -> impl Strategy<Value = LoginStatus> {
    (any::<u8>(), any::<u8>()).prop_map(|(class, detail)| LoginStatus { class, detail })
}

/// Login Response; never T and C together.
pub fn login_response() -> impl Strategy<Value = LoginResponse> {
    (
        login_stages(),
        (any::<u8>(), any::<u8>(), isid(), any::<u16>(), itt()),
        (any::<[u32; 3]>(), login_status()),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |(
                (transit, continue_, csg, nsg),
                (version_max, version_active, isid, tsih, itt),
                (sn, status),
                data,
            )| LoginResponse {
                transit,
                continue_,
                csg,
                nsg,
                version_max,
                version_active,
                isid,
                tsih,
                itt,
                stat_sn: sn[0],
                exp_cmd_sn: sn[1],
                max_cmd_sn: sn[2],
                status,
                data,
            },
        )
}

/// Text Response; never F and C together.
pub fn text_response() -> impl Strategy<Value = TextResponse> {
    (
        text_flags(),
        lun(),
        itt(),
        ttt(),
        any::<[u32; 3]>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |((final_, continue_), lun, itt, ttt, sn, data)| TextResponse {
                final_,
                continue_,
                lun,
                itt,
                ttt,
                stat_sn: sn[0],
                exp_cmd_sn: sn[1],
                max_cmd_sn: sn[2],
                data,
            },
        )
}

/// Data-In; status (the S bit) only on a final PDU.
pub fn data_in() -> impl Strategy<Value = DataIn> {
    (
        (any::<bool>(), any::<bool>()),
        proptest::option::of((any::<u8>(), any::<u32>(), residual())),
        (lun(), itt(), ttt()),
        any::<[u32; 4]>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(
            |((final_, acknowledge), status, (lun, itt, ttt), n, data)| {
                let status = status.map(|(status, stat_sn, residual)| DataInStatus {
                    status,
                    stat_sn,
                    residual,
                });
                DataIn {
                    final_: final_ || status.is_some(),
                    acknowledge,
                    status,
                    lun,
                    itt,
                    ttt,
                    exp_cmd_sn: n[0],
                    max_cmd_sn: n[1],
                    data_sn: n[2],
                    buffer_offset: n[3],
                    data,
                }
            },
        )
}

/// Logout Response.
pub fn logout_response() -> impl Strategy<Value = LogoutResponse> {
    (
        any::<u8>().prop_map(LogoutResponseCode::from_code),
        itt(),
        any::<[u32; 3]>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(
            |(response, itt, sn, time2wait, time2retain)| LogoutResponse {
                response,
                itt,
                stat_sn: sn[0],
                exp_cmd_sn: sn[1],
                max_cmd_sn: sn[2],
                time2wait,
                time2retain,
            },
        )
}

/// R2T.
pub fn r2t() -> impl Strategy<Value = R2t> {
    (lun(), itt(), ttt(), any::<[u32; 6]>()).prop_map(|(lun, itt, ttt, n)| R2t {
        lun,
        itt,
        ttt,
        stat_sn: n[0],
        exp_cmd_sn: n[1],
        max_cmd_sn: n[2],
        r2t_sn: n[3],
        buffer_offset: n[4],
        desired_data_transfer_length: n[5],
    })
}

/// Asynchronous Message.
pub fn async_message() -> impl Strategy<Value = AsyncMessage> {
    (
        lun(),
        any::<[u32; 3]>(),
        (any::<u8>().prop_map(AsyncEvent::from_code), any::<u8>()),
        any::<[u16; 3]>(),
        data(MAX_GENERATED_DATA),
    )
        .prop_map(|(lun, sn, (event, vcode), p, data)| AsyncMessage {
            lun,
            stat_sn: sn[0],
            exp_cmd_sn: sn[1],
            max_cmd_sn: sn[2],
            event,
            vcode,
            parameter1: p[0],
            parameter2: p[1],
            parameter3: p[2],
            data,
        })
}

/// Reject; its data segment is at least a BHS long.
pub fn reject() -> impl Strategy<Value = Reject> {
    (
        any::<u8>().prop_map(RejectReason::from_code),
        any::<[u32; 4]>(),
        vec(any::<u8>(), BHS_LEN..=BHS_LEN + 64).prop_map(Bytes::from),
    )
        .prop_map(|(reason, sn, data)| Reject {
            reason,
            stat_sn: sn[0],
            exp_cmd_sn: sn[1],
            max_cmd_sn: sn[2],
            data_sn_or_r2t_sn: sn[3],
            data,
        })
}

/// Any PDU an initiator sends.
pub fn initiator_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        nop_out().prop_map(Pdu::from),
        scsi_command().prop_map(Pdu::from),
        task_mgmt_request().prop_map(Pdu::from),
        login_request().prop_map(Pdu::from),
        text_request().prop_map(Pdu::from),
        data_out().prop_map(Pdu::from),
        logout_request().prop_map(Pdu::from),
        snack_request().prop_map(Pdu::from),
    ]
}

/// Any PDU a target sends.
pub fn target_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        nop_in().prop_map(Pdu::from),
        scsi_response().prop_map(Pdu::from),
        task_mgmt_response().prop_map(Pdu::from),
        login_response().prop_map(Pdu::from),
        text_response().prop_map(Pdu::from),
        data_in().prop_map(Pdu::from),
        logout_response().prop_map(Pdu::from),
        r2t().prop_map(Pdu::from),
        async_message().prop_map(Pdu::from),
        reject().prop_map(Pdu::from),
    ]
}

/// Any of the 18 PDU kinds.
pub fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![initiator_pdu(), target_pdu()]
}
