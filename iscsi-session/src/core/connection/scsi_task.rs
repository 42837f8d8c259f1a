//! One SCSI command in flight: immediate and unsolicited data, R2T answers,
//! Data-In assembly and the final status.

use bytes::Bytes;
use iscsi_proto::pdu::{
    DataIn, DataOut, Itt, Pdu, R2t, Residual, ScsiCommand, ScsiResponse, ServiceResponse, Ttt,
};

use crate::core::command::{Command, CommandOutcome, Direction, ReadData};
use crate::core::error::TaskFailure;
use iscsi_proto::text::OperationalParams;

/// Progress of one SCSI task.
#[derive(Debug)]
pub(crate) struct ScsiTask {
    pub command: Command,
    /// Assigned when the command PDU is queued for sending.
    pub cmd_sn: Option<u32>,
    read: ReadData,
    next_data_sn: u32,
    next_r2t_sn: u32,
    /// Where the next R2T must start: DataSequenceInOrder=Yes (all we
    /// negotiate) and ERL 0 mean each byte is asked for once, in order.
    next_r2t_offset: usize,
    /// Timed out: an ABORT TASK for it is on its way.
    pub aborting: bool,
}

/// What a Data-In did to the task.
#[derive(Debug)]
pub(crate) enum DataInStep {
    /// More to come.
    Continue,
    /// The Data-In carried the status: the task is done.
    Done(CommandOutcome),
}

impl ScsiTask {
    pub fn new(command: Command) -> Self {
        ScsiTask {
            command,
            cmd_sn: None,
            read: ReadData::new(),
            next_data_sn: 0,
            next_r2t_sn: 0,
            next_r2t_offset: 0,
            aborting: false,
        }
    }

    /// The command PDU and any unsolicited Data-Out PDUs (§4.2.5.2), within the
    /// negotiated FirstBurstLength and the target's MaxRecvDataSegmentLength.
    pub fn command_pdus(
        &mut self,
        itt: Itt,
        cmd_sn: u32,
        exp_stat_sn: u32,
        params: &OperationalParams,
        out: &mut impl Extend<Pdu>,
    ) {
        self.cmd_sn = Some(cmd_sn);
        let (read, write, payload) = match &self.command.direction {
            Direction::None => (false, false, Bytes::new()),
            Direction::Read { .. } => (true, false, Bytes::new()),
            Direction::Write { data } => (false, true, data.clone()),
        };
        let segment = params.max_xmit_data_segment_length as usize;
        let first_burst = (params.first_burst_length as usize).min(payload.len());
        let immediate_len = if params.immediate_data {
            first_burst.min(segment)
        } else {
            0
        };
        let unsolicited_end = if params.initial_r2t {
            immediate_len
        } else {
            first_burst
        };
        let has_unsolicited_data_out = unsolicited_end > immediate_len;
        self.next_r2t_offset = unsolicited_end;
        out.extend([Pdu::ScsiCommand(ScsiCommand {
            immediate: false,
            final_: !has_unsolicited_data_out,
            read,
            write,
            attribute: self.command.attribute,
            lun: self.command.lun,
            itt,
            expected_data_transfer_length: self.command.expected_transfer_len(),
            cmd_sn,
            exp_stat_sn,
            cdb: self.command.cdb.clone(),
            bidi_read_length: None,
            data: payload.slice(..immediate_len),
        })]);
        if has_unsolicited_data_out {
            data_out_sequence(
                &payload,
                immediate_len,
                unsolicited_end,
                segment,
                DataOutIds {
                    lun: self.command.lun,
                    itt,
                    ttt: Ttt::RESERVED,
                    exp_stat_sn,
                },
                out,
            );
        }
    }

    /// Answers an R2T with Data-Out PDUs for the range it asks for.
    pub fn answer_r2t(
        &mut self,
        r2t: &R2t,
        exp_stat_sn: u32,
        params: &OperationalParams,
        out: &mut impl Extend<Pdu>,
    ) -> Result<(), TaskFailure> {
        let Direction::Write { data } = &self.command.direction else {
            return Err(TaskFailure::Protocol(
                "R2T for a command that writes nothing".into(),
            ));
        };
        if r2t.r2t_sn != self.next_r2t_sn {
            return Err(TaskFailure::Protocol(format!(
                "R2TSN {} where {} was expected",
                r2t.r2t_sn, self.next_r2t_sn
            )));
        }
        let start = r2t.buffer_offset as usize;
        let len = r2t.desired_data_transfer_length as usize;
        let end = start.saturating_add(len);
        if start != self.next_r2t_offset
            || len == 0
            || end > data.len()
            || len > params.max_burst_length as usize
        {
            // A repeated or out-of-order range would make us send the same
            // data again and again: one 48-byte R2T can ask for a whole burst.
            return Err(TaskFailure::Protocol(format!(
                "R2T for bytes {start}..{end} of a {}-byte write where byte {} comes next (MaxBurstLength {})",
                data.len(),
                self.next_r2t_offset,
                params.max_burst_length
            )));
        }
        self.next_r2t_sn = self.next_r2t_sn.wrapping_add(1);
        self.next_r2t_offset = end;
        data_out_sequence(
            data,
            start,
            end,
            params.max_xmit_data_segment_length as usize,
            DataOutIds {
                lun: self.command.lun,
                itt: r2t.itt,
                ttt: r2t.ttt,
                exp_stat_sn,
            },
            out,
        );
        Ok(())
    }

    /// Takes one Data-In: checks order and bounds, keeps the payload slice.
    pub fn on_data_in(&mut self, din: DataIn) -> Result<DataInStep, TaskFailure> {
        let Direction::Read { expected_len } = self.command.direction else {
            return Err(TaskFailure::Protocol(
                "Data-In for a command that reads nothing".into(),
            ));
        };
        if din.data_sn != self.next_data_sn {
            return Err(TaskFailure::Protocol(format!(
                "DataSN {} where {} was expected",
                din.data_sn, self.next_data_sn
            )));
        }
        // DataPDUInOrder=Yes is all we negotiate: each PDU continues the last.
        if din.buffer_offset as usize != self.read.len() {
            return Err(TaskFailure::Protocol(format!(
                "Data-In at offset {} where {} was expected",
                din.buffer_offset,
                self.read.len()
            )));
        }
        if self.read.len() + din.data.len() > expected_len as usize {
            return Err(TaskFailure::Protocol(format!(
                "Data-In runs to byte {} of a {expected_len}-byte read",
                self.read.len() + din.data.len()
            )));
        }
        self.next_data_sn = self.next_data_sn.wrapping_add(1);
        self.read.push(din.data);
        match din.status {
            None => Ok(DataInStep::Continue),
            Some(st) => self
                .finish(din.itt, st.status, st.residual, None)
                .map(DataInStep::Done),
        }
    }

    /// The SCSI Response that ends the task.
    pub fn on_response(&mut self, resp: ScsiResponse) -> Result<CommandOutcome, TaskFailure> {
        if resp.response != ServiceResponse::CompletedAtTarget {
            return Err(TaskFailure::TargetFailure(resp.response.code()));
        }
        // Sense data is small and outlives the receive buffer: copy it so it
        // does not keep a whole receive allocation alive.
        let sense = resp.sense_bytes().map(|s| Bytes::copy_from_slice(&s));
        self.finish(resp.itt, resp.status, resp.residual, sense)
    }

    /// The outcome, once the status is in (a SCSI Response, or a Data-In with
    /// the S bit). A GOOD read must bring every byte its residual promises: a
    /// target that skipped a Data-In would otherwise hand back short data.
    fn finish(
        &mut self,
        itt: Itt,
        status: u8,
        residual: Residual,
        sense: Option<Bytes>,
    ) -> Result<CommandOutcome, TaskFailure> {
        let mut data = std::mem::take(&mut self.read);
        if let Direction::Read { expected_len } = self.command.direction {
            let promised = match residual {
                Residual::Underflow(short) => expected_len.saturating_sub(short) as usize,
                Residual::None | Residual::Overflow(_) => expected_len as usize,
            };
            if status == crate::core::command::status::GOOD && data.len() != promised {
                return Err(TaskFailure::Protocol(format!(
                    "GOOD status after {} of the {promised} bytes the residual promises",
                    data.len()
                )));
            }
            data.truncate(promised);
        }
        Ok(CommandOutcome {
            itt,
            status,
            sense,
            data,
            residual,
        })
    }
}

struct DataOutIds {
    lun: iscsi_proto::pdu::Lun,
    itt: Itt,
    ttt: Ttt,
    exp_stat_sn: u32,
}

/// Data-Out PDUs covering `payload[start..end]`, each at most `segment` bytes,
/// DataSN from 0, F on the last. The slices share the payload: no copy.
fn data_out_sequence(
    payload: &Bytes,
    start: usize,
    end: usize,
    segment: usize,
    ids: DataOutIds,
    out: &mut impl Extend<Pdu>,
) {
    let segment = segment.max(1);
    let mut offset = start;
    let mut data_sn = 0u32;
    while offset < end {
        let next = (offset + segment).min(end);
        out.extend([Pdu::DataOut(DataOut {
            final_: next == end,
            lun: ids.lun,
            itt: ids.itt,
            ttt: ids.ttt,
            exp_stat_sn: ids.exp_stat_sn,
            data_sn,
            buffer_offset: offset as u32,
            data: payload.slice(offset..next),
        })]);
        data_sn = data_sn.wrapping_add(1);
        offset = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_proto::pdu::{DataInStatus, Lun};
    use iscsi_proto::scsi::Cdb;

    fn params() -> OperationalParams {
        OperationalParams {
            max_xmit_data_segment_length: 1000,
            first_burst_length: 2500,
            max_burst_length: 4000,
            immediate_data: true,
            initial_r2t: false,
            ..OperationalParams::default()
        }
    }

    fn write_task(len: usize) -> ScsiTask {
        let data = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
        ScsiTask::new(Command::new(
            Lun::from_number(1).unwrap(),
            Cdb::write(0, 12, false),
            Direction::Write { data },
        ))
    }

    fn data_outs(pdus: &[Pdu]) -> Vec<(u32, usize, u32, bool)> {
        pdus.iter()
            .filter_map(|p| match p {
                Pdu::DataOut(d) => Some((d.buffer_offset, d.data.len(), d.data_sn, d.final_)),
                _ => None,
            })
            .collect()
    }

    /// UNH-IOL: FFP #8.3, FFP #16.2.4
    #[test]
    fn immediate_then_unsolicited_up_to_first_burst() {
        let mut t = write_task(6000);
        let mut out = Vec::new();
        t.command_pdus(Itt(1), 5, 9, &params(), &mut out);
        let Pdu::ScsiCommand(cmd) = &out[0] else {
            panic!()
        };
        assert_eq!(cmd.data.len(), 1000);
        assert!(!cmd.final_);
        assert_eq!(cmd.expected_data_transfer_length, 6000);
        assert_eq!(
            data_outs(&out),
            vec![(1000, 1000, 0, false), (2000, 500, 1, true)]
        );
    }

    /// UNH-IOL: FFP #16.2.1, FFP #16.3.1
    #[test]
    fn initial_r2t_yes_sends_only_immediate() {
        let mut t = write_task(6000);
        let mut out = Vec::new();
        t.command_pdus(
            Itt(1),
            5,
            9,
            &OperationalParams {
                initial_r2t: true,
                ..params()
            },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let Pdu::ScsiCommand(cmd) = &out[0] else {
            panic!()
        };
        assert!(cmd.final_);
        assert_eq!(cmd.data.len(), 1000);
    }

    #[test]
    fn r2t_answer_is_split_and_bounded() {
        let mut t = write_task(6000);
        let mut out = Vec::new();
        t.command_pdus(Itt(1), 5, 9, &params(), &mut out);
        let r2t = |sn, off, len| R2t {
            lun: Lun::from_number(1).unwrap(),
            itt: Itt(1),
            ttt: Ttt(77),
            stat_sn: 0,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
            r2t_sn: sn,
            buffer_offset: off,
            desired_data_transfer_length: len,
        };
        let mut out = Vec::new();
        t.answer_r2t(&r2t(0, 2500, 2500), 9, &params(), &mut out)
            .unwrap();
        assert_eq!(
            data_outs(&out),
            vec![
                (2500, 1000, 0, false),
                (3500, 1000, 1, false),
                (4500, 500, 2, true)
            ]
        );
        // Beyond the buffer, beyond MaxBurstLength, out of order: refused.
        assert!(
            t.answer_r2t(&r2t(1, 5000, 1001), 9, &params(), &mut out)
                .is_err()
        );
        assert!(
            t.answer_r2t(&r2t(1, 0, 4001), 9, &params(), &mut out)
                .is_err()
        );
        assert!(
            t.answer_r2t(&r2t(5, 0, 10), 9, &params(), &mut out)
                .is_err()
        );
    }

    fn data_in(sn: u32, offset: u32, len: usize, status: Option<u8>) -> DataIn {
        DataIn {
            final_: status.is_some(),
            acknowledge: false,
            status: status.map(|s| DataInStatus {
                status: s,
                stat_sn: 1,
                residual: Residual::None,
            }),
            lun: Lun::from_number(1).unwrap(),
            itt: Itt(1),
            ttt: Ttt::RESERVED,
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
            data_sn: sn,
            buffer_offset: offset,
            data: Bytes::from(vec![sn as u8; len]),
        }
    }

    #[test]
    fn data_in_assembly_with_status_in_last() {
        let mut t = ScsiTask::new(Command::new(
            Lun::from_number(1).unwrap(),
            Cdb::read(0, 1, false),
            Direction::Read { expected_len: 300 },
        ));
        assert!(matches!(
            t.on_data_in(data_in(0, 0, 100, None)),
            Ok(DataInStep::Continue)
        ));
        assert!(matches!(
            t.on_data_in(data_in(1, 100, 100, None)),
            Ok(DataInStep::Continue)
        ));
        let Ok(DataInStep::Done(outcome)) = t.on_data_in(data_in(2, 200, 100, Some(0))) else {
            panic!()
        };
        assert_eq!(outcome.data.len(), 300);
        assert_eq!(outcome.data.segments().len(), 3);
    }

    #[test]
    fn data_in_out_of_order_or_too_long_refused() {
        let cmd = Command::new(
            Lun::from_number(1).unwrap(),
            Cdb::read(0, 1, false),
            Direction::Read { expected_len: 150 },
        );
        let mut t = ScsiTask::new(cmd.clone());
        assert!(t.on_data_in(data_in(1, 0, 100, None)).is_err());
        let mut t = ScsiTask::new(cmd.clone());
        assert!(t.on_data_in(data_in(0, 8, 100, None)).is_err());
        let mut t = ScsiTask::new(cmd);
        t.on_data_in(data_in(0, 0, 100, None)).unwrap();
        assert!(t.on_data_in(data_in(1, 100, 100, None)).is_err());
    }
}
