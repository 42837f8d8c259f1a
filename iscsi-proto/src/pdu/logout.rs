//! Logout Request (§11.14) and Logout Response (§11.15).

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u16, get_u32, put_u16, put_u32};
use super::{Itt, Opcode, PduError};

/// Why the initiator logs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogoutReason {
    /// 0: close the session (every connection).
    CloseSession,
    /// 1: close the connection named by CID.
    CloseConnection,
    /// 2: remove the connection so that its tasks can move to another
    /// (ErrorRecoveryLevel 2).
    RemoveConnectionForRecovery,
}

impl LogoutReason {
    /// The reason code (byte 1, low 7 bits).
    pub fn code(self) -> u8 {
        match self {
            LogoutReason::CloseSession => 0,
            LogoutReason::CloseConnection => 1,
            LogoutReason::RemoveConnectionForRecovery => 2,
        }
    }

    /// Decodes a reason code; `None` for reserved codes.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => LogoutReason::CloseSession,
            1 => LogoutReason::CloseConnection,
            2 => LogoutReason::RemoveConnectionForRecovery,
            _ => return None,
        })
    }
}

/// Logout Request (§11.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// I: immediate delivery (the logout does not wait in the command window).
    pub immediate: bool,
    /// Reason Code.
    pub reason: LogoutReason,
    /// Initiator Task Tag of the logout task.
    pub itt: Itt,
    /// The connection to close (reserved when closing the session).
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
}

impl LogoutRequest {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT | self.reason.code();
        put_u32(b, 16, self.itt.0);
        put_u16(b, 20, self.cid);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
    }

    pub(super) fn read(b: &[u8; 48], immediate: bool, _data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let code = b[1] & 0x7f;
        let reason = LogoutReason::from_code(code).ok_or(PduError::InvalidField {
            opcode: Opcode::LogoutRequest,
            itt,
            field: "reason code",
            value: u32::from(code),
        })?;
        Ok(LogoutRequest {
            immediate,
            reason,
            itt: Itt(itt),
            cid: get_u16(b, 20),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
        })
    }
}

/// Logout Response codes (§11.15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogoutResponseCode {
    /// 0: connection or session closed successfully.
    Success,
    /// 1: no connection with that CID.
    CidNotFound,
    /// 2: connection recovery is not supported (ErrorRecoveryLevel < 2).
    RecoveryNotSupported,
    /// 3: cleanup failed for various reasons.
    CleanupFailed,
    /// A reserved code, as received.
    Other(u8),
}

impl LogoutResponseCode {
    /// The Response byte.
    pub fn code(self) -> u8 {
        match self {
            LogoutResponseCode::Success => 0,
            LogoutResponseCode::CidNotFound => 1,
            LogoutResponseCode::RecoveryNotSupported => 2,
            LogoutResponseCode::CleanupFailed => 3,
            LogoutResponseCode::Other(c) => c,
        }
    }

    /// Decodes the Response byte; reserved codes are kept as `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => LogoutResponseCode::Success,
            1 => LogoutResponseCode::CidNotFound,
            2 => LogoutResponseCode::RecoveryNotSupported,
            3 => LogoutResponseCode::CleanupFailed,
            c => LogoutResponseCode::Other(c),
        }
    }
}

/// Logout Response (§11.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Response.
    pub response: LogoutResponseCode,
    /// Initiator Task Tag of the logout task.
    pub itt: Itt,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// Seconds to wait before reconnecting (recovery logouts).
    pub time2wait: u16,
    /// Seconds the target keeps task state for reassignment.
    pub time2retain: u16,
}

impl LogoutResponse {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[2] = self.response.code();
        put_u32(b, 16, self.itt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        put_u16(b, 40, self.time2wait);
        put_u16(b, 42, self.time2retain);
    }

    pub(super) fn read(b: &[u8; 48], _data: Bytes) -> Result<Self, PduError> {
        Ok(LogoutResponse {
            response: LogoutResponseCode::from_code(b[2]),
            itt: Itt(get_u32(b, 16)),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            time2wait: get_u16(b, 40),
            time2retain: get_u16(b, 42),
        })
    }
}
