//! Ready To Transfer (§11.8): the target asks for a range of write data.

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, PduError, Ttt};

/// Ready To Transfer (§11.8): send `desired_data_transfer_length` bytes
/// from `buffer_offset`, as Data-Out PDUs carrying `ttt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2t {
    /// LUN of the command.
    pub lun: Lun,
    /// Initiator Task Tag of the command.
    pub itt: Itt,
    /// Target Transfer Tag, echoed by the Data-Out PDUs that answer.
    pub ttt: Ttt,
    /// StatSN: the next StatSN (R2T does not advance it).
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// R2TSN: counts the command's R2Ts from 0.
    pub r2t_sn: u32,
    /// Buffer Offset: where the requested data starts.
    pub buffer_offset: u32,
    /// Desired Data Transfer Length: bytes requested; never 0, never above
    /// MaxBurstLength.
    pub desired_data_transfer_length: u32,
}

impl R2t {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        put_u32(b, 36, self.r2t_sn);
        put_u32(b, 40, self.buffer_offset);
        put_u32(b, 44, self.desired_data_transfer_length);
    }

    pub(super) fn read(b: &[u8; 48], _data: Bytes) -> Result<Self, PduError> {
        Ok(R2t {
            lun: Lun::read(b),
            itt: Itt(get_u32(b, 16)),
            ttt: Ttt(get_u32(b, 20)),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            r2t_sn: get_u32(b, 36),
            buffer_offset: get_u32(b, 40),
            desired_data_transfer_length: get_u32(b, 44),
        })
    }
}
