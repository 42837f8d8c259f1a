//! A SCSI command as plain data, and what comes back.
//!
//! A [`Command`] holds everything needed to send it again: the LUN, the CDB, the
//! direction with the write payload or the expected read length, the task
//! attribute and the timeout. Nothing in it refers to a connection, so the
//! multipath layer can replay the same value on another path unchanged.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::pdu::{Itt, Lun, Residual, TaskAttribute};
use iscsi_proto::scsi::Cdb;

/// Which way data moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No data phase (TEST UNIT READY, SYNCHRONIZE CACHE...).
    None,
    /// The target sends up to `expected_len` bytes.
    Read {
        /// Expected Data Transfer Length: the buffer the CDB's allocation
        /// or transfer length asks for.
        expected_len: u32,
    },
    /// We send these bytes (cheap to clone: replaying shares the buffer).
    Write {
        /// The whole payload, sent as immediate, unsolicited or solicited
        /// data as negotiated.
        data: Bytes,
    },
}

/// One SCSI command, replayable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The logical unit addressed.
    pub lun: Lun,
    /// The SCSI command descriptor block.
    pub cdb: Cdb,
    /// The data phase, with the write payload.
    pub direction: Direction,
    /// The SAM task attribute; SIMPLE unless set.
    pub attribute: TaskAttribute,
    /// Overrides the session's command timeout.
    pub timeout: Option<Duration>,
}

impl Command {
    /// A SIMPLE task with the session's command timeout.
    pub fn new(lun: Lun, cdb: Cdb, direction: Direction) -> Self {
        Command {
            lun,
            cdb,
            direction,
            attribute: TaskAttribute::Simple,
            timeout: None,
        }
    }

    /// The command with its own timeout, e.g. for a slow FORMAT or a long
    /// WRITE SAME.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Expected Data Transfer Length for the SCSI Command PDU.
    pub fn expected_transfer_len(&self) -> u32 {
        match &self.direction {
            Direction::None => 0,
            Direction::Read { expected_len } => *expected_len,
            // `Connection::submit` refuses writes over u32::MAX bytes.
            Direction::Write { data } => data.len() as u32,
        }
    }

    /// The SCSI operation code, for log lines and errors.
    pub fn opcode(&self) -> u8 {
        self.cdb.opcode()
    }
}

/// Read data as the Data-In PDUs delivered it, in offset order, never copied
/// on the way: short segments are slices of the connection's shared receive
/// buffer, long ones (64 KiB and more) buffers of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadData {
    segments: Vec<Bytes>,
    len: usize,
}

impl ReadData {
    /// No data.
    pub fn new() -> Self {
        ReadData::default()
    }

    pub(crate) fn push(&mut self, segment: Bytes) {
        if !segment.is_empty() {
            self.len += segment.len();
            self.segments.push(segment);
        }
    }

    /// Bytes received, over all segments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No byte was received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order (for vectored writes).
    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }

    /// The pieces, in order, without touching their reference counts.
    pub fn into_segments(self) -> Vec<Bytes> {
        self.segments
    }

    /// One contiguous buffer: free when the data came in one PDU, a copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match self.segments.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut out = BytesMut::with_capacity(self.len);
                for s in many {
                    out.extend_from_slice(s);
                }
                out.freeze()
            }
        }
    }

    /// Keeps only the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let mut kept = 0;
        let mut out = Vec::with_capacity(self.segments.len());
        for s in self.segments.drain(..) {
            if kept >= len {
                break;
            }
            let take = s.len().min(len - kept);
            out.push(s.slice(..take));
            kept += take;
        }
        self.segments = out;
        self.len = kept;
    }
}

impl From<Bytes> for ReadData {
    fn from(b: Bytes) -> Self {
        let mut r = ReadData::new();
        r.push(b);
        r
    }
}

/// SCSI status bytes (SAM-5) the session itself needs to recognise.
pub mod status {
    /// The command completed successfully.
    pub const GOOD: u8 = 0x00;
    /// The command failed or has something to report: the sense data says
    /// what.
    pub const CHECK_CONDITION: u8 = 0x02;
    /// A successful PRE-FETCH: counts as success.
    pub const CONDITION_MET: u8 = 0x04;
    /// The logical unit cannot take the command now; retry later.
    pub const BUSY: u8 = 0x08;
    /// Another initiator holds a reservation on the logical unit (SPC
    /// persistent reservations).
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    /// The logical unit has no room for another task; retry later.
    pub const TASK_SET_FULL: u8 = 0x28;
    /// An auto contingent allegiance condition is in effect (NACA=1 only).
    pub const ACA_ACTIVE: u8 = 0x30;
    /// Aborted by another initiator's action (TAS=1 in the Control mode
    /// page).
    pub const TASK_ABORTED: u8 = 0x40;
}

/// A command the target completed: status, sense, data and residual. A
/// CHECK CONDITION is an outcome, not a transport error: the caller decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The task's Initiator Task Tag on the connection that ran it.
    pub itt: Itt,
    /// The SCSI status byte ([`status`]).
    pub status: u8,
    /// Sense data without the iSCSI SenseLength prefix.
    pub sense: Option<Bytes>,
    /// The Data-In payload; empty for writes and commands without data.
    pub data: ReadData,
    /// The residual the SCSI Response reported: how much less (or more)
    /// the target transferred than the expected length.
    pub residual: Residual,
}

impl CommandOutcome {
    /// GOOD or CONDITION MET. A CHECK CONDITION reporting a recovered error
    /// is not counted; [`crate::RetryPolicy::judge`] accepts it.
    pub fn is_good(&self) -> bool {
        self.status == status::GOOD || self.status == status::CONDITION_MET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_data_keeps_segments_and_truncates() {
        let mut r = ReadData::new();
        r.push(Bytes::from_static(b"abc"));
        r.push(Bytes::new());
        r.push(Bytes::from_static(b"defg"));
        assert_eq!(r.len(), 7);
        assert_eq!(r.segments().len(), 2);
        assert_eq!(&r.to_bytes()[..], b"abcdefg");
        r.truncate(5);
        assert_eq!(&r.to_bytes()[..], b"abcde");
        r.truncate(2);
        assert_eq!(r.segments().len(), 1);
        assert_eq!(&r.to_bytes()[..], b"ab");
    }

    #[test]
    fn single_segment_is_not_copied() {
        let b = Bytes::from(vec![1u8; 4096]);
        let r = ReadData::from(b.clone());
        assert_eq!(r.to_bytes().as_ptr(), b.as_ptr());
    }
}
