//! SCSI Data-Out (§11.7): write data, unsolicited or answering an R2T.

use bytes::Bytes;

use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, PduError, Ttt};

/// SCSI Data-Out (§11.7): write data for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOut {
    /// F: last PDU of this sequence (unsolicited burst or R2T answer).
    pub final_: bool,
    /// LUN: the R2T's, or the command's for unsolicited data.
    pub lun: Lun,
    /// Initiator Task Tag of the command.
    pub itt: Itt,
    /// The R2T's TTT, or reserved for unsolicited data.
    pub ttt: Ttt,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// Position within the sequence, from 0 for each R2T or unsolicited burst.
    pub data_sn: u32,
    /// Buffer Offset: where `data` starts in the command's write buffer.
    pub buffer_offset: u32,
    /// The write data.
    pub data: Bytes,
}

impl DataOut {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        b[1] = if self.final_ { FINAL_BIT } else { 0 };
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.ttt.0);
        put_u32(b, 28, self.exp_stat_sn);
        put_u32(b, 36, self.data_sn);
        put_u32(b, 40, self.buffer_offset);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        Ok(DataOut {
            final_: b[1] & FINAL_BIT != 0,
            lun: Lun::read(b),
            itt: Itt(get_u32(b, 16)),
            ttt: Ttt(get_u32(b, 20)),
            exp_stat_sn: get_u32(b, 28),
            data_sn: get_u32(b, 36),
            buffer_offset: get_u32(b, 40),
            data,
        })
    }
}
