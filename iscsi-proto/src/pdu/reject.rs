//! Reject (§11.17): the target refuses a PDU and returns its header.

use bytes::Bytes;

use super::bhs::{BHS_LEN, FINAL_BIT, get_u32, put_u32};
use super::{Itt, Opcode, PduError};

/// Reject reasons (§11.17.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// 02h: data (payload) digest error; the initiator may resend.
    DataDigestError,
    /// 03h: SNACK rejected; the initiator may resend it.
    SnackReject,
    /// 04h: protocol error (e.g. a SNACK for a status already acknowledged).
    ProtocolError,
    /// 05h: command not supported.
    CommandNotSupported,
    /// 06h: immediate command rejected: too many immediate commands.
    ImmediateCommandReject,
    /// 07h: task in progress.
    TaskInProgress,
    /// 08h: invalid data ACK.
    InvalidDataAck,
    /// 09h: invalid PDU field (e.g. an unknown ITT or TTT).
    InvalidPduField,
    /// 0Ah: long operation reject: out of resources for a long task.
    LongOperationReject,
    /// 0Bh: deprecated (negotiation reset, from RFC 3720).
    DeprecatedNegotiationReset,
    /// 0Ch: waiting for logout: the target will not take new commands.
    WaitingForLogout,
    /// A reserved code, as received.
    Other(u8),
}

impl RejectReason {
    /// The Reason byte.
    pub fn code(self) -> u8 {
        match self {
            RejectReason::DataDigestError => 0x02,
            RejectReason::SnackReject => 0x03,
            RejectReason::ProtocolError => 0x04,
            RejectReason::CommandNotSupported => 0x05,
            RejectReason::ImmediateCommandReject => 0x06,
            RejectReason::TaskInProgress => 0x07,
            RejectReason::InvalidDataAck => 0x08,
            RejectReason::InvalidPduField => 0x09,
            RejectReason::LongOperationReject => 0x0a,
            RejectReason::DeprecatedNegotiationReset => 0x0b,
            RejectReason::WaitingForLogout => 0x0c,
            RejectReason::Other(c) => c,
        }
    }

    /// Decodes the Reason byte; reserved codes are kept as `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x02 => RejectReason::DataDigestError,
            0x03 => RejectReason::SnackReject,
            0x04 => RejectReason::ProtocolError,
            0x05 => RejectReason::CommandNotSupported,
            0x06 => RejectReason::ImmediateCommandReject,
            0x07 => RejectReason::TaskInProgress,
            0x08 => RejectReason::InvalidDataAck,
            0x09 => RejectReason::InvalidPduField,
            0x0a => RejectReason::LongOperationReject,
            0x0b => RejectReason::DeprecatedNegotiationReset,
            0x0c => RejectReason::WaitingForLogout,
            c => RejectReason::Other(c),
        }
    }
}

/// Reject (§11.17). Its ITT is always reserved: the rejected PDU's is in
/// the returned header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Reason.
    pub reason: RejectReason,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// DataSN or R2TSN of the rejected PDU, when it was a SNACK.
    pub data_sn_or_r2t_sn: u32,
    /// The complete header of the rejected PDU (at least the 48-byte BHS).
    pub data: Bytes,
}

impl Reject {
    /// The rejected PDU's BHS.
    pub fn rejected_bhs(&self) -> Option<&[u8; BHS_LEN]> {
        self.data.get(..BHS_LEN).and_then(|s| s.try_into().ok())
    }

    /// The ITT of the rejected PDU: which of our tasks it concerns.
    pub fn rejected_itt(&self) -> Option<Itt> {
        self.rejected_bhs().map(|b| Itt(get_u32(b, 16)))
    }

    /// The opcode of the rejected PDU.
    pub fn rejected_opcode(&self) -> Option<Opcode> {
        self.rejected_bhs().and_then(|b| Opcode::from_code(b[0]))
    }

    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[2] = self.reason.code();
        put_u32(b, 16, Itt::RESERVED.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        put_u32(b, 36, self.data_sn_or_r2t_sn);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        // §11.17: the data segment is the rejected PDU's header; without it the
        // reject cannot be tied to anything we sent.
        if data.len() < BHS_LEN {
            return Err(PduError::InvalidField {
                opcode: Opcode::Reject,
                itt: get_u32(b, 16),
                field: "DataSegmentLength (shorter than a BHS)",
                value: data.len() as u32,
            });
        }
        Ok(Reject {
            reason: RejectReason::from_code(b[2]),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            data_sn_or_r2t_sn: get_u32(b, 36),
            data,
        })
    }
}
