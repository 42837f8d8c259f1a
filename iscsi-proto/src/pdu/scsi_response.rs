//! SCSI Response (§11.4).

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Opcode, PduError, Residual};

const BIDI_OVERFLOW_BIT: u8 = 0x10;
const BIDI_UNDERFLOW_BIT: u8 = 0x08;
const OVERFLOW_BIT: u8 = 0x04;
const UNDERFLOW_BIT: u8 = 0x02;

/// iSCSI service response (§11.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceResponse {
    /// Command completed at the target: the Status field is valid.
    CompletedAtTarget,
    /// Target failure: the command did not complete.
    TargetFailure,
    /// Vendor-specific codes 0x80-0xff, or reserved ones.
    Other(u8),
}

impl ServiceResponse {
    /// The Response byte.
    pub fn code(self) -> u8 {
        match self {
            ServiceResponse::CompletedAtTarget => 0x00,
            ServiceResponse::TargetFailure => 0x01,
            ServiceResponse::Other(c) => c,
        }
    }

    /// Decodes the Response byte; other codes are kept as `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x00 => ServiceResponse::CompletedAtTarget,
            0x01 => ServiceResponse::TargetFailure,
            c => ServiceResponse::Other(c),
        }
    }
}

/// A command's final status. The data segment holds sense data (prefixed by
/// its 2-byte SenseLength) and/or response data when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiResponse {
    /// Response: whether the command completed at the target.
    pub response: ServiceResponse,
    /// SCSI status byte (valid when `response` is `CompletedAtTarget`).
    pub status: u8,
    /// Initiator Task Tag of the command.
    pub itt: Itt,
    /// SNACK Tag: the tag of the last R-Data SNACK answered, else 0.
    pub snack_tag: u32,
    /// StatSN: the response's place in the connection's status order.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// ExpDataSN: how many Data-In and R2T PDUs the target sent for the
    /// command (for ErrorRecoveryLevel > 0 checks).
    pub exp_data_sn: u32,
    /// Bidirectional read residual (o/u bits): of the read part of a
    /// bidirectional command.
    pub bidi_read_residual: Residual,
    /// Residual (O/U bits): of the Expected Data Transfer Length.
    pub residual: Residual,
    /// SenseLength-prefixed sense data and/or response data; may be empty.
    pub data: Bytes,
}

impl ScsiResponse {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        let mut flags = FINAL_BIT;
        if self.bidi_read_residual.overflow_bit() {
            flags |= BIDI_OVERFLOW_BIT;
        }
        if self.bidi_read_residual.underflow_bit() {
            flags |= BIDI_UNDERFLOW_BIT;
        }
        if self.residual.overflow_bit() {
            flags |= OVERFLOW_BIT;
        }
        if self.residual.underflow_bit() {
            flags |= UNDERFLOW_BIT;
        }
        b[1] = flags;
        b[2] = self.response.code();
        b[3] = self.status;
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.snack_tag);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        put_u32(b, 36, self.exp_data_sn);
        put_u32(b, 40, self.bidi_read_residual.count());
        put_u32(b, 44, self.residual.count());
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let invalid = |field| PduError::InvalidField {
            opcode: Opcode::ScsiResponse,
            itt,
            field,
            value: u32::from(b[1]),
        };
        let bidi_read_residual = Residual::from_bits(
            b[1] & BIDI_OVERFLOW_BIT != 0,
            b[1] & BIDI_UNDERFLOW_BIT != 0,
            get_u32(b, 40),
        )
        .ok_or_else(|| invalid("flags (o and u both set)"))?;
        let residual = Residual::from_bits(
            b[1] & OVERFLOW_BIT != 0,
            b[1] & UNDERFLOW_BIT != 0,
            get_u32(b, 44),
        )
        .ok_or_else(|| invalid("flags (O and U both set)"))?;
        Ok(ScsiResponse {
            response: ServiceResponse::from_code(b[2]),
            status: b[3],
            itt: Itt(itt),
            snack_tag: get_u32(b, 20),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            exp_data_sn: get_u32(b, 36),
            bidi_read_residual,
            residual,
            data,
        })
    }

    /// The sense data in the data segment, without its SenseLength prefix;
    /// `None` when there is none or the prefix claims more than is present.
    pub fn sense_bytes(&self) -> Option<Bytes> {
        if self.data.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.data[0], self.data[1]]));
        if len == 0 || 2 + len > self.data.len() {
            return None;
        }
        Some(self.data.slice(2..2 + len))
    }
}
