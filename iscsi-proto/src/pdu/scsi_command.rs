//! SCSI Command (§11.3).

use bytes::{Bytes, BytesMut};

use super::ahs::{self, AHS_BIDI_READ_LENGTH, AHS_EXTENDED_CDB};
use super::bhs::{FINAL_BIT, get_u32, put_u32};
use super::{Itt, Lun, Opcode, PduError};
use crate::scsi::Cdb;

/// Largest CDB SAM allows (variable-length CDBs): 16 bytes in the BHS plus 244
/// in an extended CDB AHS.
pub const MAX_CDB_LEN: usize = 260;

const READ_BIT: u8 = 0x40;
const WRITE_BIT: u8 = 0x20;

/// SAM task attribute (ATTR field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TaskAttribute {
    /// 0: untagged (treated as Simple by most targets).
    Untagged,
    /// 1: SIMPLE: the target may reorder it among simple tasks.
    #[default]
    Simple,
    /// 2: ORDERED: runs after every older task and before every newer one.
    Ordered,
    /// 3: HEAD OF QUEUE: runs before any queued task.
    HeadOfQueue,
    /// 4: ACA: allowed while an auto contingent allegiance is active.
    Aca,
}

impl TaskAttribute {
    fn bits(self) -> u8 {
        match self {
            TaskAttribute::Untagged => 0,
            TaskAttribute::Simple => 1,
            TaskAttribute::Ordered => 2,
            TaskAttribute::HeadOfQueue => 3,
            TaskAttribute::Aca => 4,
        }
    }

    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0 => TaskAttribute::Untagged,
            1 => TaskAttribute::Simple,
            2 => TaskAttribute::Ordered,
            3 => TaskAttribute::HeadOfQueue,
            4 => TaskAttribute::Aca,
            _ => return None,
        })
    }
}

/// A SCSI command with its immediate data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiCommand {
    /// I: immediate delivery (does not advance CmdSN).
    pub immediate: bool,
    /// F: no unsolicited Data-Out PDUs follow this one.
    pub final_: bool,
    /// R: the command reads data from the target.
    pub read: bool,
    /// W: the command writes data to the target.
    pub write: bool,
    /// ATTR: the task attribute.
    pub attribute: TaskAttribute,
    /// The logical unit addressed.
    pub lun: Lun,
    /// Initiator Task Tag: names the task until its response arrives.
    pub itt: Itt,
    /// Expected Data Transfer Length: bytes the initiator expects to move
    /// (the write length for a bidirectional command); residuals are relative to it.
    pub expected_data_transfer_length: u32,
    /// CmdSN: the command's place in the session's command order.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN.
    pub exp_stat_sn: u32,
    /// The whole CDB. Decoding gives the 16-byte BHS field (zero padded) plus the
    /// extended CDB AHS when present: the CDB length is not on the wire.
    /// Inline up to 16 bytes: a command PDU allocates nothing for it.
    pub cdb: Cdb,
    /// Expected read length of a bidirectional command (AHS type 2).
    pub bidi_read_length: Option<u32>,
    /// Immediate data.
    pub data: Bytes,
}

impl ScsiCommand {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        let mut flags = self.attribute.bits();
        if self.final_ {
            flags |= FINAL_BIT;
        }
        if self.read {
            flags |= READ_BIT;
        }
        if self.write {
            flags |= WRITE_BIT;
        }
        b[1] = flags;
        b[8..16].copy_from_slice(&self.lun.0);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 20, self.expected_data_transfer_length);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
        let head = self.cdb.len().min(16);
        b[32..32 + head].copy_from_slice(&self.cdb[..head]);
    }

    /// Appends the AHS this command needs: extended CDB, bidirectional length.
    pub(super) fn write_ahs(&self, out: &mut BytesMut) {
        if self.cdb.len() > 16 {
            ahs::put(out, AHS_EXTENDED_CDB, &self.cdb[16..]);
        }
        if let Some(len) = self.bidi_read_length {
            ahs::put(out, AHS_BIDI_READ_LENGTH, &len.to_be_bytes());
        }
    }

    pub(super) fn check(&self) -> Result<(), PduError> {
        if self.cdb.is_empty() || self.cdb.len() > MAX_CDB_LEN {
            return Err(PduError::CdbLength {
                len: self.cdb.len(),
                max: MAX_CDB_LEN,
            });
        }
        Ok(())
    }

    pub(super) fn read_pdu(
        b: &[u8; 48],
        immediate: bool,
        ahs_bytes: &[u8],
        data: Bytes,
    ) -> Result<Self, PduError> {
        let itt = get_u32(b, 16);
        let parsed = ahs::parse(ahs_bytes).map_err(|reason| PduError::MalformedAhs {
            opcode: Opcode::ScsiCommand,
            itt,
            reason,
        })?;
        // TotalAHSLength allows 1016 bytes of extended CDB; SAM stops at 260,
        // and a CDB the encoder would refuse must not come out of the decoder.
        if parsed
            .extended_cdb
            .is_some_and(|ext| 16 + ext.len() > MAX_CDB_LEN)
        {
            return Err(PduError::MalformedAhs {
                opcode: Opcode::ScsiCommand,
                itt,
                reason: "extended CDB makes the CDB longer than 260 bytes",
            });
        }
        let attribute = TaskAttribute::from_bits(b[1] & 0x07).ok_or(PduError::InvalidField {
            opcode: Opcode::ScsiCommand,
            itt,
            field: "task attribute",
            value: u32::from(b[1] & 0x07),
        })?;
        let cdb = match parsed.extended_cdb {
            None => Cdb::from_slice(&b[32..48]),
            Some(ext) => {
                let mut cdb = Vec::with_capacity(16 + ext.len());
                cdb.extend_from_slice(&b[32..48]);
                cdb.extend_from_slice(ext);
                Cdb::new(Bytes::from(cdb))
            }
        }
        // Not reached: 16 bytes, or at most 260 as checked above.
        .map_err(|_| PduError::CdbLength {
            len: 16 + parsed.extended_cdb.map_or(0, <[u8]>::len),
            max: MAX_CDB_LEN,
        })?;
        Ok(ScsiCommand {
            immediate,
            final_: b[1] & FINAL_BIT != 0,
            read: b[1] & READ_BIT != 0,
            write: b[1] & WRITE_BIT != 0,
            attribute,
            lun: super::Lun::read(b),
            itt: Itt(itt),
            expected_data_transfer_length: get_u32(b, 20),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
            cdb,
            bidi_read_length: parsed.bidi_read_length,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BHS whose extended CDB AHS carries `ext_len` CDB bytes.
    fn with_extended_cdb(ext_len: usize) -> Result<ScsiCommand, PduError> {
        let mut b = [0u8; 48];
        b[1] = FINAL_BIT;
        let mut ahs = BytesMut::new();
        ahs::put(&mut ahs, AHS_EXTENDED_CDB, &vec![0xab; ext_len]);
        ScsiCommand::read_pdu(&b, false, &ahs, Bytes::new())
    }

    #[test]
    fn extended_cdb_up_to_260_bytes() {
        assert_eq!(with_extended_cdb(244).unwrap().cdb.len(), MAX_CDB_LEN);
        // Found by fuzzing: a 264-byte CDB decoded, then failed to re-encode.
        assert!(matches!(
            with_extended_cdb(248),
            Err(PduError::MalformedAhs { .. })
        ));
    }
}
