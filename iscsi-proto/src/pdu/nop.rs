//! NOP-Out (§11.18) and NOP-In (§11.19): pings in both directions.

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, PduError, Ttt};

/// NOP-Out: the initiator's ping, or its answer to a target's NOP-In (then it
/// echoes the TTT and the ITT is reserved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NopOut {
    /// I: immediate delivery; a NOP-Out answering a NOP-In must be immediate
    /// and then does not advance CmdSN.
    pub immediate: bool,
    /// LUN; echoes the NOP-In's when answering a ping, otherwise unused.
    pub lun: Lun,
    /// Initiator Task Tag; reserved when answering a target's ping.
    pub itt: Itt,
    /// Target Transfer Tag: the NOP-In's when answering it, else reserved.
    pub ttt: Ttt,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// Ping data, echoed by the target when the ITT is not reserved.
    pub data: Bytes,
}

impl NopOut {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
    }

    pub(super) fn read(b: &[u8; 48], immediate: bool, data: Bytes) -> Result<Self, PduError> {
        Ok(NopOut {
            immediate,
            lun: Lun::read(b),
            itt: Itt(get_u32(b, 16)),
            ttt: Ttt(get_u32(b, 20)),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
            data,
        })
    }
}

/// NOP-In: the target's answer to our ping (ITT set), or its own ping that asks
/// for an answer (ITT reserved, TTT set), or a bare StatSN/window update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NopIn {
    /// LUN; echoed from the NOP-Out, or the one a target ping is about.
    pub lun: Lun,
    /// Initiator Task Tag of the NOP-Out answered; reserved for a target ping.
    pub itt: Itt,
    /// Target Transfer Tag; not reserved when the target wants an answer.
    pub ttt: Ttt,
    /// StatSN; not advanced by a NOP-In that answers no NOP-Out.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// Ping data: the NOP-Out's echoed, or the target's own.
    pub data: Bytes,
}

impl NopIn {
    /// A target ping we must answer with a NOP-Out echoing its TTT (§11.19.2).
    pub fn wants_reply(&self) -> bool {
        !self.ttt.is_reserved()
    }

    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        Ok(NopIn {
            lun: Lun::read(b),
            itt: Itt(get_u32(b, 16)),
            ttt: Ttt(get_u32(b, 20)),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            data,
        })
    }
}
