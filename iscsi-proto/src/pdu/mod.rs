//! Every RFC 7143 PDU as a typed struct, one file per PDU family.
//!
//! A [`Pdu`] owns its data segment as [`Bytes`]: decoding slices it out of the
//! receive buffer without a copy, and encoding hands it to a vectored write as is.
//! Framing, digests and size limits live in [`crate::codec`]; this module turns a
//! header and its segments into typed values and back.

mod ahs;
#[cfg(feature = "proptest-strategies")]
pub mod arbitrary;
mod async_msg;
pub mod bhs;
mod data_in;
mod data_out;
mod error;
mod fields;
mod login;
mod logout;
mod nop;
mod opcode;
mod r2t;
mod reject;
mod scsi_command;
mod scsi_response;
mod snack;
mod task_mgmt;
mod text;

use bytes::{BufMut, Bytes, BytesMut};

pub use async_msg::{AsyncEvent, AsyncMessage};
pub use bhs::BHS_LEN;
pub use data_in::{DataIn, DataInStatus};
pub use data_out::DataOut;
pub use error::PduError;
pub use fields::{Isid, Itt, Lun, RESERVED_TAG, Residual, Stage, Ttt};
pub use login::{ISCSI_VERSION, LoginRequest, LoginResponse, LoginStatus};
pub use logout::{LogoutReason, LogoutRequest, LogoutResponse, LogoutResponseCode};
pub use nop::{NopIn, NopOut};
pub use opcode::Opcode;
pub use r2t::R2t;
pub use reject::{Reject, RejectReason};
pub use scsi_command::{MAX_CDB_LEN, ScsiCommand, TaskAttribute};
pub use scsi_response::{ScsiResponse, ServiceResponse};
pub use snack::{SnackRequest, SnackType};
pub use task_mgmt::{TaskMgmtRequest, TaskMgmtResponse, TmfFunction, TmfResponse};
pub use text::{TextRequest, TextResponse};

/// Largest value the 24-bit DataSegmentLength field can hold.
pub const MAX_DATA_SEGMENT_LEN: usize = (1 << 24) - 1;

static NO_DATA: Bytes = Bytes::new();

/// One iSCSI PDU of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// NOP-Out (§11.18): initiator ping, or the answer to a target's NOP-In.
    NopOut(NopOut),
    /// SCSI Command (§11.3).
    ScsiCommand(ScsiCommand),
    /// Task Management Function Request (§11.5).
    TaskMgmtRequest(TaskMgmtRequest),
    /// Login Request (§11.12).
    LoginRequest(LoginRequest),
    /// Text Request (§11.10).
    TextRequest(TextRequest),
    /// SCSI Data-Out (§11.7): write data.
    DataOut(DataOut),
    /// Logout Request (§11.14).
    LogoutRequest(LogoutRequest),
    /// SNACK Request (§11.16).
    SnackRequest(SnackRequest),
    /// NOP-In (§11.19): target ping, or the answer to a NOP-Out.
    NopIn(NopIn),
    /// SCSI Response (§11.4).
    ScsiResponse(ScsiResponse),
    /// Task Management Function Response (§11.6).
    TaskMgmtResponse(TaskMgmtResponse),
    /// Login Response (§11.13).
    LoginResponse(LoginResponse),
    /// Text Response (§11.11).
    TextResponse(TextResponse),
    /// SCSI Data-In (§11.7): read data, possibly with status.
    DataIn(DataIn),
    /// Logout Response (§11.15).
    LogoutResponse(LogoutResponse),
    /// Ready To Transfer (§11.8): the target asks for write data.
    R2t(R2t),
    /// Asynchronous Message (§11.9).
    AsyncMessage(AsyncMessage),
    /// Reject (§11.17).
    Reject(Reject),
}

macro_rules! from_variants {
    ($($variant:ident),* $(,)?) => {
        $(impl From<$variant> for Pdu {
            fn from(p: $variant) -> Self {
                Pdu::$variant(p)
            }
        })*
    };
}

from_variants!(
    NopOut,
    ScsiCommand,
    TaskMgmtRequest,
    LoginRequest,
    TextRequest,
    DataOut,
    LogoutRequest,
    SnackRequest,
    NopIn,
    ScsiResponse,
    TaskMgmtResponse,
    LoginResponse,
    TextResponse,
    DataIn,
    LogoutResponse,
    R2t,
    AsyncMessage,
    Reject,
);

impl Pdu {
    /// The opcode this PDU is sent with.
    pub fn opcode(&self) -> Opcode {
        match self {
            Pdu::NopOut(_) => Opcode::NopOut,
            Pdu::ScsiCommand(_) => Opcode::ScsiCommand,
            Pdu::TaskMgmtRequest(_) => Opcode::TaskMgmtRequest,
            Pdu::LoginRequest(_) => Opcode::LoginRequest,
            Pdu::TextRequest(_) => Opcode::TextRequest,
            Pdu::DataOut(_) => Opcode::DataOut,
            Pdu::LogoutRequest(_) => Opcode::LogoutRequest,
            Pdu::SnackRequest(_) => Opcode::SnackRequest,
            Pdu::NopIn(_) => Opcode::NopIn,
            Pdu::ScsiResponse(_) => Opcode::ScsiResponse,
            Pdu::TaskMgmtResponse(_) => Opcode::TaskMgmtResponse,
            Pdu::LoginResponse(_) => Opcode::LoginResponse,
            Pdu::TextResponse(_) => Opcode::TextResponse,
            Pdu::DataIn(_) => Opcode::DataIn,
            Pdu::LogoutResponse(_) => Opcode::LogoutResponse,
            Pdu::R2t(_) => Opcode::R2t,
            Pdu::AsyncMessage(_) => Opcode::AsyncMessage,
            Pdu::Reject(_) => Opcode::Reject,
        }
    }

    /// The I bit: delivered without waiting for CmdSN order. Login is always so.
    pub fn immediate(&self) -> bool {
        match self {
            Pdu::NopOut(p) => p.immediate,
            Pdu::ScsiCommand(p) => p.immediate,
            Pdu::TaskMgmtRequest(p) => p.immediate,
            Pdu::LoginRequest(_) => true,
            Pdu::TextRequest(p) => p.immediate,
            Pdu::LogoutRequest(p) => p.immediate,
            _ => false,
        }
    }

    /// The Initiator Task Tag (reserved for Asynchronous Message and Reject).
    pub fn itt(&self) -> Itt {
        match self {
            Pdu::NopOut(p) => p.itt,
            Pdu::ScsiCommand(p) => p.itt,
            Pdu::TaskMgmtRequest(p) => p.itt,
            Pdu::LoginRequest(p) => p.itt,
            Pdu::TextRequest(p) => p.itt,
            Pdu::DataOut(p) => p.itt,
            Pdu::LogoutRequest(p) => p.itt,
            Pdu::SnackRequest(p) => p.itt,
            Pdu::NopIn(p) => p.itt,
            Pdu::ScsiResponse(p) => p.itt,
            Pdu::TaskMgmtResponse(p) => p.itt,
            Pdu::LoginResponse(p) => p.itt,
            Pdu::TextResponse(p) => p.itt,
            Pdu::DataIn(p) => p.itt,
            Pdu::LogoutResponse(p) => p.itt,
            Pdu::R2t(p) => p.itt,
            Pdu::AsyncMessage(_) | Pdu::Reject(_) => Itt::RESERVED,
        }
    }

    /// The data segment (empty for PDUs that carry none).
    pub fn data(&self) -> &Bytes {
        match self {
            Pdu::NopOut(p) => &p.data,
            Pdu::ScsiCommand(p) => &p.data,
            Pdu::LoginRequest(p) => &p.data,
            Pdu::TextRequest(p) => &p.data,
            Pdu::DataOut(p) => &p.data,
            Pdu::NopIn(p) => &p.data,
            Pdu::ScsiResponse(p) => &p.data,
            Pdu::LoginResponse(p) => &p.data,
            Pdu::TextResponse(p) => &p.data,
            Pdu::DataIn(p) => &p.data,
            Pdu::AsyncMessage(p) => &p.data,
            Pdu::Reject(p) => &p.data,
            Pdu::TaskMgmtRequest(_)
            | Pdu::TaskMgmtResponse(_)
            | Pdu::LogoutRequest(_)
            | Pdu::LogoutResponse(_)
            | Pdu::SnackRequest(_)
            | Pdu::R2t(_) => &NO_DATA,
        }
    }

    /// ExpCmdSN and MaxCmdSN of a target PDU: every one of them carries the
    /// command window (§4.2.2.1).
    pub fn command_window(&self) -> Option<(u32, u32)> {
        match self {
            Pdu::NopIn(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::ScsiResponse(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::TaskMgmtResponse(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::LoginResponse(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::TextResponse(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::DataIn(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::LogoutResponse(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::R2t(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::AsyncMessage(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            Pdu::Reject(p) => Some((p.exp_cmd_sn, p.max_cmd_sn)),
            _ => None,
        }
    }

    /// The StatSN this PDU consumes, for the PDUs that carry a status and so
    /// advance the connection's StatSN (§4.2.2.2): responses, a Data-In with
    /// status, Asynchronous Message, Reject and a NOP-In answering our ping.
    pub fn status_sn(&self) -> Option<u32> {
        match self {
            Pdu::ScsiResponse(p) => Some(p.stat_sn),
            Pdu::TaskMgmtResponse(p) => Some(p.stat_sn),
            Pdu::LoginResponse(p) => Some(p.stat_sn),
            Pdu::TextResponse(p) => Some(p.stat_sn),
            Pdu::LogoutResponse(p) => Some(p.stat_sn),
            Pdu::DataIn(p) => p.status.map(|s| s.stat_sn),
            Pdu::AsyncMessage(p) => Some(p.stat_sn),
            Pdu::Reject(p) => Some(p.stat_sn),
            Pdu::NopIn(p) if !p.itt.is_reserved() => Some(p.stat_sn),
            _ => None,
        }
    }

    /// Checks what encoding needs: a CDB that fits, a data segment that the
    /// 24-bit length field can describe, no data on PDUs that carry none.
    pub fn check(&self) -> Result<(), PduError> {
        let len = self.data().len();
        if len > MAX_DATA_SEGMENT_LEN {
            return Err(PduError::DataTooLong {
                opcode: self.opcode(),
                len,
            });
        }
        if let Pdu::ScsiCommand(c) = self {
            c.check()?;
        }
        Ok(())
    }

    /// Appends the BHS and any AHS to `out`, with TotalAHSLength and
    /// DataSegmentLength filled in from the AHS and `self.data()`. The data
    /// segment itself is not written: see [`crate::codec`].
    pub fn encode_header(&self, out: &mut BytesMut) -> Result<(), PduError> {
        self.check()?;
        let mut b = [0u8; BHS_LEN];
        match self {
            Pdu::NopOut(p) => p.write(&mut b),
            Pdu::ScsiCommand(p) => p.write(&mut b),
            Pdu::TaskMgmtRequest(p) => p.write(&mut b),
            Pdu::LoginRequest(p) => p.write(&mut b),
            Pdu::TextRequest(p) => p.write(&mut b),
            Pdu::DataOut(p) => p.write(&mut b),
            Pdu::LogoutRequest(p) => p.write(&mut b),
            Pdu::SnackRequest(p) => p.write(&mut b),
            Pdu::NopIn(p) => p.write(&mut b),
            Pdu::ScsiResponse(p) => p.write(&mut b),
            Pdu::TaskMgmtResponse(p) => p.write(&mut b),
            Pdu::LoginResponse(p) => p.write(&mut b),
            Pdu::TextResponse(p) => p.write(&mut b),
            Pdu::DataIn(p) => p.write(&mut b),
            Pdu::LogoutResponse(p) => p.write(&mut b),
            Pdu::R2t(p) => p.write(&mut b),
            Pdu::AsyncMessage(p) => p.write(&mut b),
            Pdu::Reject(p) => p.write(&mut b),
        }
        b[0] = self.opcode().code();
        if self.immediate() {
            b[0] |= bhs::IMMEDIATE_BIT;
        }
        let len = self.data().len() as u32;
        b[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
        let start = out.len();
        out.put_slice(&b);
        if let Pdu::ScsiCommand(c) = self {
            c.write_ahs(out);
            let ahs_words = (out.len() - start - BHS_LEN) / 4;
            // 260-byte CDBs plus the bidi AHS stay far below 255 words.
            out[start + 4] = ahs_words as u8;
        }
        Ok(())
    }

    /// Builds a typed PDU from a received BHS, its AHS bytes and data segment
    /// (padding and digests already stripped by the codec).
    pub fn decode_parts(b: &[u8; BHS_LEN], ahs: &[u8], data: Bytes) -> Result<Pdu, PduError> {
        let itt = bhs::itt_field(b);
        let opcode = Opcode::from_code(b[0]).ok_or(PduError::ReservedOpcode {
            code: b[0] & 0x3f,
            itt,
        })?;
        if !ahs.is_empty() && opcode != Opcode::ScsiCommand {
            return Err(PduError::UnexpectedAhs {
                opcode,
                itt,
                len: ahs.len(),
            });
        }
        if !data.is_empty() && !opcode.may_carry_data() {
            return Err(PduError::UnexpectedData {
                opcode,
                itt,
                len: data.len(),
            });
        }
        // Bit 6 of byte 0 is the I bit on initiator PDUs and reserved on target ones.
        let immediate = b[0] & bhs::IMMEDIATE_BIT != 0;
        Ok(match opcode {
            Opcode::NopOut => Pdu::NopOut(NopOut::read(b, immediate, data)?),
            Opcode::ScsiCommand => {
                Pdu::ScsiCommand(ScsiCommand::read_pdu(b, immediate, ahs, data)?)
            }
            Opcode::TaskMgmtRequest => {
                Pdu::TaskMgmtRequest(TaskMgmtRequest::read(b, immediate, data)?)
            }
            Opcode::LoginRequest => Pdu::LoginRequest(LoginRequest::read(b, data)?),
            Opcode::TextRequest => Pdu::TextRequest(TextRequest::read(b, immediate, data)?),
            Opcode::DataOut => Pdu::DataOut(DataOut::read(b, data)?),
            Opcode::LogoutRequest => Pdu::LogoutRequest(LogoutRequest::read(b, immediate, data)?),
            Opcode::SnackRequest => Pdu::SnackRequest(SnackRequest::read(b, data)?),
            Opcode::NopIn => Pdu::NopIn(NopIn::read(b, data)?),
            Opcode::ScsiResponse => Pdu::ScsiResponse(ScsiResponse::read(b, data)?),
            Opcode::TaskMgmtResponse => Pdu::TaskMgmtResponse(TaskMgmtResponse::read(b, data)?),
            Opcode::LoginResponse => Pdu::LoginResponse(LoginResponse::read(b, data)?),
            Opcode::TextResponse => Pdu::TextResponse(TextResponse::read(b, data)?),
            Opcode::DataIn => Pdu::DataIn(DataIn::read(b, data)?),
            Opcode::LogoutResponse => Pdu::LogoutResponse(LogoutResponse::read(b, data)?),
            Opcode::R2t => Pdu::R2t(R2t::read(b, data)?),
            Opcode::AsyncMessage => Pdu::AsyncMessage(AsyncMessage::read(b, data)?),
            Opcode::Reject => Pdu::Reject(Reject::read(b, data)?),
        })
    }
}
