//! Text Request (§11.10) and Text Response (§11.11): key=value exchanges in
//! full feature phase, SendTargets among them.

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, Opcode, PduError, Ttt};

const CONTINUE_BIT: u8 = 0x40;

fn flags(final_: bool, cont: bool) -> u8 {
    (if final_ { FINAL_BIT } else { 0 }) | (if cont { CONTINUE_BIT } else { 0 })
}

fn check_flags(b: &[u8; 48], opcode: Opcode) -> Result<(bool, bool), PduError> {
    let final_ = b[1] & FINAL_BIT != 0;
    let cont = b[1] & CONTINUE_BIT != 0;
    // §11.10.2: F and C must not both be set.
    if final_ && cont {
        return Err(PduError::InvalidField {
            opcode,
            itt: get_u32(b, 16),
            field: "flags (F and C both set)",
            value: u32::from(b[1]),
        });
    }
    Ok((final_, cont))
}

/// Text Request (§11.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRequest {
    /// I: immediate delivery.
    pub immediate: bool,
    /// F: the initiator's last text of this exchange.
    pub final_: bool,
    /// C: the text continues in the next PDU (never with F).
    pub continue_: bool,
    /// LUN; unused by the keys RFC 7143 defines.
    pub lun: Lun,
    /// Initiator Task Tag, the same for every PDU of one exchange.
    pub itt: Itt,
    /// Reserved for a new exchange; the target's TTT when continuing one.
    pub ttt: Ttt,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// key=value text.
    pub data: Bytes,
}

impl TextRequest {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = flags(self.final_, self.continue_);
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
    }

    pub(super) fn read(b: &[u8; 48], immediate: bool, data: Bytes) -> Result<Self, PduError> {
        let (final_, continue_) = check_flags(b, Opcode::TextRequest)?;
        Ok(TextRequest {
            immediate,
            final_,
            continue_,
            lun: Lun::read(b),
            itt: Itt(get_u32(b, 16)),
            ttt: Ttt(get_u32(b, 20)),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
            data,
        })
    }
}

/// Text Response (§11.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextResponse {
    /// F: the target's last text of this exchange.
    pub final_: bool,
    /// C: the text continues in the next PDU (never with F).
    pub continue_: bool,
    /// LUN, echoed from the request.
    pub lun: Lun,
    /// Initiator Task Tag of the exchange.
    pub itt: Itt,
    /// Not reserved while the target has more to send.
    pub ttt: Ttt,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// key=value text.
    pub data: Bytes,
}

impl TextResponse {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = flags(self.final_, self.continue_);
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let (final_, continue_) = check_flags(b, Opcode::TextResponse)?;
        Ok(TextResponse {
            final_,
            continue_,
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
