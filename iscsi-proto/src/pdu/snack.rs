//! SNACK Request (§11.16): asks the target to resend data or status (ERL > 0).

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, Opcode, PduError, Ttt};

/// What a SNACK asks for (the Type field, §11.16.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnackType {
    /// 0: Data/R2T SNACK: resend Data-In or R2T PDUs.
    DataR2t,
    /// 1: Status SNACK: resend responses.
    Status,
    /// 2: DataACK: acknowledges Data-In up to BegRun (A bit answers).
    DataAck,
    /// 3: R-Data SNACK: resend all Data-In of a task, re-segmented.
    RData,
}

impl SnackType {
    /// The Type code (byte 1, low 4 bits).
    pub fn code(self) -> u8 {
        match self {
            SnackType::DataR2t => 0,
            SnackType::Status => 1,
            SnackType::DataAck => 2,
            SnackType::RData => 3,
        }
    }

    /// Decodes a Type code; `None` for reserved codes.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => SnackType::DataR2t,
            1 => SnackType::Status,
            2 => SnackType::DataAck,
            3 => SnackType::RData,
            _ => return None,
        })
    }
}

/// SNACK Request (§11.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnackRequest {
    /// Type.
    pub kind: SnackType,
    /// LUN of the task (DataACK), else reserved.
    pub lun: Lun,
    /// Initiator Task Tag of the task, or reserved for a Status SNACK.
    pub itt: Itt,
    /// The TTT (DataACK) or SNACK Tag (R-Data).
    pub ttt: Ttt,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// BegRun: the first DataSN, R2TSN or StatSN to resend (for DataACK,
    /// the next DataSN expected).
    pub beg_run: u32,
    /// RunLength: how many to resend; 0 means all from BegRun on.
    pub run_length: u32,
}

impl SnackRequest {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT | self.kind.code();
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 28, self.exp_stat_sn);
        put_u32(b, 40, self.beg_run);
        put_u32(b, 44, self.run_length);
    }

    pub(super) fn read(b: &[u8; 48], _data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let code = b[1] & 0x0f;
        let kind = SnackType::from_code(code).ok_or(PduError::InvalidField {
            opcode: Opcode::SnackRequest,
            itt,
            field: "SNACK type",
            value: u32::from(code),
        })?;
        Ok(SnackRequest {
            kind,
            lun: Lun::read(b),
            itt: Itt(itt),
            ttt: Ttt(get_u32(b, 20)),
            exp_stat_sn: get_u32(b, 28),
            beg_run: get_u32(b, 40),
            run_length: get_u32(b, 44),
        })
    }
}
