//! Asynchronous Message (§11.9): the target's unsolicited events.

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u16, get_u32, put_u16, put_u32};
use super::{Itt, Lun, Opcode, PduError};

/// AsyncEvent codes (§11.9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AsyncEvent {
    /// A SCSI asynchronous event; sense data in the data segment.
    ScsiEvent,
    /// The target asks us to log out within Parameter3 seconds.
    LogoutRequest,
    /// The target will drop connection Parameter1 (Time2Wait/Retain in 2/3).
    DropConnection,
    /// The target will drop every connection of the session.
    DropAllConnections,
    /// The target asks us to renegotiate operational parameters.
    RenegotiateParameters,
    /// Vendor-specific (255) or reserved codes.
    Other(u8),
}

impl AsyncEvent {
    /// The AsyncEvent byte.
    pub fn code(self) -> u8 {
        match self {
            AsyncEvent::ScsiEvent => 0,
            AsyncEvent::LogoutRequest => 1,
            AsyncEvent::DropConnection => 2,
            AsyncEvent::DropAllConnections => 3,
            AsyncEvent::RenegotiateParameters => 4,
            AsyncEvent::Other(c) => c,
        }
    }

    /// Decodes the AsyncEvent byte; other codes are kept as `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => AsyncEvent::ScsiEvent,
            1 => AsyncEvent::LogoutRequest,
            2 => AsyncEvent::DropConnection,
            3 => AsyncEvent::DropAllConnections,
            4 => AsyncEvent::RenegotiateParameters,
            c => AsyncEvent::Other(c),
        }
    }
}

/// Asynchronous Message (§11.9). Its ITT is always reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncMessage {
    /// LUN of a SCSI event; reserved for the others.
    pub lun: Lun,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// AsyncEvent.
    pub event: AsyncEvent,
    /// AsyncVCode: vendor-specific detail of a vendor event.
    pub vcode: u8,
    /// Parameter1: the CID to be dropped (DropConnection).
    pub parameter1: u16,
    /// Parameter2: Time2Wait, in seconds (the drop events).
    pub parameter2: u16,
    /// Parameter3: Time2Retain (drop events), or the seconds allowed for
    /// the logout or renegotiation asked for.
    pub parameter3: u16,
    /// Sense data (with SenseLength) and iSCSI event data.
    pub data: Bytes,
}

impl AsyncMessage {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = FINAL_BIT;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, Itt::RESERVED.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        b[36] = self.event.code();
        b[37] = self.vcode;
        put_u16(b, 38, self.parameter1);
        put_u16(b, 40, self.parameter2);
        put_u16(b, 42, self.parameter3);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        // §11.9: the ITT of an Asynchronous Message is always 0xffffffff.
        if itt != Itt::RESERVED.0 {
            return Err(PduError::InvalidField {
                opcode: Opcode::AsyncMessage,
                itt,
                field: "Initiator Task Tag (must be reserved)",
                value: itt,
            });
        }
        Ok(AsyncMessage {
            lun: Lun::read(b),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            event: AsyncEvent::from_code(b[36]),
            vcode: b[37],
            parameter1: get_u16(b, 38),
            parameter2: get_u16(b, 40),
            parameter3: get_u16(b, 42),
            data,
        })
    }
}
