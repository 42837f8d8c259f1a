//! Task Management Function Request (§11.5) and Response (§11.6).

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, Opcode, PduError};

/// The function a Task Management Request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TmfFunction {
    /// 1: ABORT TASK: abort the task named by the referenced task tag.
    AbortTask,
    /// 2: ABORT TASK SET: abort every task this I_T nexus has on the LUN.
    AbortTaskSet,
    /// 3: CLEAR ACA: clear the auto contingent allegiance condition.
    ClearAca,
    /// 4: CLEAR TASK SET: abort every task on the LUN, from every initiator.
    ClearTaskSet,
    /// 5: LOGICAL UNIT RESET.
    LogicalUnitReset,
    /// 6: TARGET WARM RESET.
    TargetWarmReset,
    /// 7: TARGET COLD RESET (also drops every connection).
    TargetColdReset,
    /// 8: TASK REASSIGN: move a task to this connection (ErrorRecoveryLevel 2).
    TaskReassign,
}

impl TmfFunction {
    /// The Function code (byte 1, low 7 bits).
    pub fn code(self) -> u8 {
        match self {
            TmfFunction::AbortTask => 1,
            TmfFunction::AbortTaskSet => 2,
            TmfFunction::ClearAca => 3,
            TmfFunction::ClearTaskSet => 4,
            TmfFunction::LogicalUnitReset => 5,
            TmfFunction::TargetWarmReset => 6,
            TmfFunction::TargetColdReset => 7,
            TmfFunction::TaskReassign => 8,
        }
    }

    /// Decodes a Function code; `None` for reserved codes.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => TmfFunction::AbortTask,
            2 => TmfFunction::AbortTaskSet,
            3 => TmfFunction::ClearAca,
            4 => TmfFunction::ClearTaskSet,
            5 => TmfFunction::LogicalUnitReset,
            6 => TmfFunction::TargetWarmReset,
            7 => TmfFunction::TargetColdReset,
            8 => TmfFunction::TaskReassign,
            _ => return None,
        })
    }
}

/// Task Management Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMgmtRequest {
    /// I: immediate delivery, so the request is not held up behind the
    /// commands it manages.
    pub immediate: bool,
    /// Function.
    pub function: TmfFunction,
    /// The LUN the function applies to (reserved for target resets).
    pub lun: Lun,
    /// Initiator Task Tag of this request itself.
    pub itt: Itt,
    /// ITT of the task to abort (ABORT TASK), else reserved.
    pub referenced_task_tag: Itt,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// CmdSN of the referenced task (ABORT TASK).
    pub ref_cmd_sn: u32,
    /// ExpDataSN: for TASK REASSIGN, the next Data-In or R2T the initiator
    /// expects; else reserved.
    pub exp_data_sn: u32,
}

impl TaskMgmtRequest {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT | self.function.code();
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.referenced_task_tag.0);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
        put_u32(b, 32, self.ref_cmd_sn);
        put_u32(b, 36, self.exp_data_sn);
    }

    pub(super) fn read(b: &[u8; 48], immediate: bool, _data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let code = b[1] & 0x7f;
        let function = TmfFunction::from_code(code).ok_or(PduError::InvalidField {
            opcode: Opcode::TaskMgmtRequest,
            itt,
            field: "function",
            value: u32::from(code),
        })?;
        Ok(TaskMgmtRequest {
            immediate,
            function,
            lun: Lun::read(b),
            itt: Itt(itt),
            referenced_task_tag: Itt(get_u32(b, 20)),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
            ref_cmd_sn: get_u32(b, 32),
            exp_data_sn: get_u32(b, 36),
        })
    }
}

/// Task Management Response codes (§11.6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TmfResponse {
    /// 0: function complete.
    FunctionComplete,
    /// 1: the referenced task does not exist.
    TaskDoesNotExist,
    /// 2: the LUN does not exist.
    LunDoesNotExist,
    /// 3: the task is still allegiant to its connection.
    TaskStillAllegiant,
    /// 4: task allegiance reassignment not supported.
    ReassignmentNotSupported,
    /// 5: task management function not supported.
    FunctionNotSupported,
    /// 6: function authorization failed.
    AuthorizationFailed,
    /// 255: function rejected.
    FunctionRejected,
    /// A reserved code, as received.
    Other(u8),
}

impl TmfResponse {
    /// The Response byte.
    pub fn code(self) -> u8 {
        match self {
            TmfResponse::FunctionComplete => 0,
            TmfResponse::TaskDoesNotExist => 1,
            TmfResponse::LunDoesNotExist => 2,
            TmfResponse::TaskStillAllegiant => 3,
            TmfResponse::ReassignmentNotSupported => 4,
            TmfResponse::FunctionNotSupported => 5,
            TmfResponse::AuthorizationFailed => 6,
            TmfResponse::FunctionRejected => 255,
            TmfResponse::Other(c) => c,
        }
    }

    /// Decodes the Response byte; reserved codes are kept as `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => TmfResponse::FunctionComplete,
            1 => TmfResponse::TaskDoesNotExist,
            2 => TmfResponse::LunDoesNotExist,
            3 => TmfResponse::TaskStillAllegiant,
            4 => TmfResponse::ReassignmentNotSupported,
            5 => TmfResponse::FunctionNotSupported,
            6 => TmfResponse::AuthorizationFailed,
            255 => TmfResponse::FunctionRejected,
            c => TmfResponse::Other(c),
        }
    }
}

/// Task Management Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMgmtResponse {
    /// Response.
    pub response: TmfResponse,
    /// Initiator Task Tag of the request answered.
    pub itt: Itt,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
}

impl TaskMgmtResponse {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[2] = self.response.code();
        put_u32(b, 16, self.itt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
    }

    pub(super) fn read(b: &[u8; 48], _data: Bytes) -> Result<Self, PduError> {
        Ok(TaskMgmtResponse {
            response: TmfResponse::from_code(b[2]),
            itt: Itt(get_u32(b, 16)),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
        })
    }
}
