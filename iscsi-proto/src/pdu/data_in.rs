//! SCSI Data-In (§11.7): read data, optionally carrying the command's status in
//! the last PDU (the S bit, "phase collapse").

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, Opcode, PduError, Residual, Ttt};

const ACK_BIT: u8 = 0x40;
const OVERFLOW_BIT: u8 = 0x04;
const UNDERFLOW_BIT: u8 = 0x02;
const STATUS_BIT: u8 = 0x01;

/// The status part of a Data-In that ends its command (S bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInStatus {
    /// SCSI status byte of the command.
    pub status: u8,
    /// StatSN (only valid with the S bit).
    pub stat_sn: u32,
    /// Residual (O/U bits with the Residual Count).
    pub residual: Residual,
}

/// SCSI Data-In (§11.7): read data for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIn {
    /// F: last PDU of a sequence (of the command, or of a burst at ERL > 0).
    pub final_: bool,
    /// A: the target asks for a DataACK SNACK (ERL > 0 only).
    pub acknowledge: bool,
    /// Present when the S bit is set: the command is complete.
    pub status: Option<DataInStatus>,
    /// LUN; set when the A bit is, else may be reserved.
    pub lun: Lun,
    /// Initiator Task Tag of the command.
    pub itt: Itt,
    /// Target Transfer Tag: set with the A bit, else reserved.
    pub ttt: Ttt,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept.
    pub max_cmd_sn: u32,
    /// DataSN: counts the command's Data-In PDUs from 0.
    pub data_sn: u32,
    /// Buffer Offset: where `data` goes in the command's read buffer.
    pub buffer_offset: u32,
    /// The read data.
    pub data: Bytes,
}

impl DataIn {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        let mut flags = 0;
        if self.final_ {
            flags |= FINAL_BIT;
        }
        if self.acknowledge {
            flags |= ACK_BIT;
        }
        if let Some(st) = &self.status {
            flags |= STATUS_BIT;
            if st.residual.overflow_bit() {
                flags |= OVERFLOW_BIT;
            }
            if st.residual.underflow_bit() {
                flags |= UNDERFLOW_BIT;
            }
            b[3] = st.status;
            put_u32(b, 24, st.stat_sn);
            put_u32(b, 44, st.residual.count());
        }
        b[1] = flags;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        put_u32(b, 36, self.data_sn);
        put_u32(b, 40, self.buffer_offset);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let flags = b[1];
        let invalid = |field| PduError::InvalidField {
            opcode: Opcode::DataIn,
            itt,
            field,
            value: u32::from(flags),
        };
        let final_ = flags & FINAL_BIT != 0;
        let status = if flags & STATUS_BIT != 0 {
            // §11.7.3: S may be set only together with F.
            if !final_ {
                return Err(invalid("flags (S without F)"));
            }
            let residual = Residual::from_bits(
                flags & OVERFLOW_BIT != 0,
                flags & UNDERFLOW_BIT != 0,
                get_u32(b, 44),
            )
            .ok_or_else(|| invalid("flags (O and U both set)"))?;
            Some(DataInStatus {
                status: b[3],
                stat_sn: get_u32(b, 24),
                residual,
            })
        } else {
            None
        };
        Ok(DataIn {
            final_,
            acknowledge: flags & ACK_BIT != 0,
            status,
            lun: Lun::read(b),
            itt: Itt(itt),
            ttt: Ttt(get_u32(b, 20)),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            data_sn: get_u32(b, 36),
            buffer_offset: get_u32(b, 40),
            data,
        })
    }
}
