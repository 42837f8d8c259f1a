//! SCSI commands over the probe (RFC 7143 §10, §11.3-§11.8): immediate
//! data, unsolicited Data-Out and R2T answers as negotiated, Data-In
//! collected by buffer offset, and every PDU of the exchange kept so that a
//! test can check DataSN, offsets, R2T sequencing and residuals.

use std::collections::HashMap;

use bytes::Bytes;
use iscsi_proto::pdu::{
    DataIn, DataOut, Itt, Lun, Pdu, R2t, Residual, ScsiCommand, ScsiResponse, ServiceResponse,
    TaskAttribute, Ttt,
};
use iscsi_proto::scsi::{Cdb, Sense, SenseKey, asc_ascq_description};

use crate::error::ProbeError;
use crate::probe::connection::Probe;

/// Most read data the probe keeps for one command.
const MAX_READ: usize = 64 << 20;

/// SCSI status GOOD.
pub const GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const CHECK_CONDITION: u8 = 0x02;
/// SCSI status RESERVATION CONFLICT.
pub const RESERVATION_CONFLICT: u8 = 0x18;

/// One command as a test wants it sent.
#[derive(Clone, Debug)]
pub struct ScsiRequest {
    /// The LU addressed.
    pub lun: Lun,
    /// The CDB (more than 16 bytes go into an extended CDB AHS).
    pub cdb: Bytes,
    /// Bytes the command reads (R bit when non-zero).
    pub read_len: u32,
    /// Bytes the command writes (W bit when present).
    pub write: Option<Bytes>,
    /// Expected Data Transfer Length when it must differ from the data.
    pub edtl: Option<u32>,
    /// Task attribute.
    pub attribute: TaskAttribute,
    /// I bit.
    pub immediate: bool,
    /// CmdSN to send instead of the next one (window tests); the probe's
    /// CmdSN does not move then.
    pub cmd_sn: Option<u32>,
    /// Send no immediate data even when ImmediateData=Yes.
    pub no_immediate_data: bool,
}

impl ScsiRequest {
    /// A command without data.
    pub fn none(lun: Lun, cdb: impl Into<Bytes>) -> ScsiRequest {
        ScsiRequest {
            lun,
            cdb: cdb.into(),
            read_len: 0,
            write: None,
            edtl: None,
            attribute: TaskAttribute::Simple,
            immediate: false,
            cmd_sn: None,
            no_immediate_data: false,
        }
    }

    /// A command reading up to `len` bytes.
    pub fn read(lun: Lun, cdb: impl Into<Bytes>, len: u32) -> ScsiRequest {
        ScsiRequest {
            read_len: len,
            ..ScsiRequest::none(lun, cdb)
        }
    }

    /// A command writing `data`.
    pub fn write(lun: Lun, cdb: impl Into<Bytes>, data: impl Into<Bytes>) -> ScsiRequest {
        ScsiRequest {
            write: Some(data.into()),
            ..ScsiRequest::none(lun, cdb)
        }
    }

    /// The same with another Expected Data Transfer Length.
    pub fn with_edtl(mut self, edtl: u32) -> ScsiRequest {
        self.edtl = Some(edtl);
        self
    }

    fn edtl(&self) -> u32 {
        self.edtl.unwrap_or_else(|| match &self.write {
            Some(d) => u32::try_from(d.len()).unwrap_or(u32::MAX),
            None => self.read_len,
        })
    }
}

/// A command sent and not yet complete.
#[derive(Debug)]
pub struct Pending {
    /// Its ITT.
    pub itt: Itt,
    /// Its CmdSN.
    pub cmd_sn: u32,
    lun: Lun,
    write: Bytes,
    read: Vec<u8>,
    data_ins: Vec<DataIn>,
    r2ts: Vec<R2t>,
    /// Write bytes sent before any R2T (immediate and unsolicited).
    unsolicited: usize,
}

/// A completed command.
#[derive(Clone, Debug)]
pub struct ScsiOutcome {
    /// Its ITT.
    pub itt: Itt,
    /// Its CmdSN.
    pub cmd_sn: u32,
    /// iSCSI Response (CompletedAtTarget unless the target failed).
    pub response: ServiceResponse,
    /// SCSI status.
    pub status: u8,
    /// Parsed sense data, when the target sent some.
    pub sense: Option<Sense>,
    /// Read data, assembled by buffer offset.
    pub data: Bytes,
    /// The residual reported.
    pub residual: Residual,
    /// Every Data-In PDU, in arrival order.
    pub data_ins: Vec<DataIn>,
    /// Every R2T, in arrival order.
    pub r2ts: Vec<R2t>,
    /// The SCSI Response PDU, when status did not come in a Data-In.
    pub response_pdu: Option<ScsiResponse>,
    /// The StatSN of the status.
    pub stat_sn: u32,
    /// Write bytes sent as immediate or unsolicited data.
    pub unsolicited: usize,
}

impl ScsiOutcome {
    /// Status GOOD.
    pub fn is_good(&self) -> bool {
        self.response == ServiceResponse::CompletedAtTarget && self.status == GOOD
    }

    /// Sense key, ASC and ASCQ of a CHECK CONDITION.
    pub fn sense_code(&self) -> Option<(SenseKey, u8, u8)> {
        let s = self.sense.as_ref()?;
        Some((s.key, s.asc, s.ascq))
    }

    /// CHECK CONDITION with this sense key and ASC/ASCQ.
    pub fn is_check(&self, key: SenseKey, asc: u8, ascq: u8) -> bool {
        self.status == CHECK_CONDITION && self.sense_code() == Some((key, asc, ascq))
    }

    /// CHECK CONDITION with this sense key (any ASC).
    pub fn is_key(&self, key: SenseKey) -> bool {
        self.status == CHECK_CONDITION && self.sense_code().is_some_and(|(k, _, _)| k == key)
    }

    /// `GOOD`, `CHECK CONDITION ILLEGAL REQUEST 24h/00h (INVALID FIELD IN CDB)`...
    pub fn describe(&self) -> String {
        if self.response != ServiceResponse::CompletedAtTarget {
            return format!("iSCSI response {:?}", self.response);
        }
        let name = match self.status {
            GOOD => "GOOD".to_owned(),
            CHECK_CONDITION => "CHECK CONDITION".to_owned(),
            0x08 => "BUSY".to_owned(),
            RESERVATION_CONFLICT => "RESERVATION CONFLICT".to_owned(),
            0x28 => "TASK SET FULL".to_owned(),
            0x40 => "TASK ABORTED".to_owned(),
            s => format!("status {s:#04x}"),
        };
        match &self.sense {
            Some(s) if self.status == CHECK_CONDITION => format!(
                "{name} {} {:02X}h/{:02X}h{}",
                s.key.name(),
                s.asc,
                s.ascq,
                asc_ascq_description(s.asc, s.ascq)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            None if self.status == CHECK_CONDITION => format!("{name} without sense data"),
            _ => name,
        }
    }
}

/// Expected sense, for messages: `ILLEGAL REQUEST 21h/00h`.
pub fn sense_name(key: SenseKey, asc: u8, ascq: u8) -> String {
    format!(
        "CHECK CONDITION {} {asc:02X}h/{ascq:02X}h{}",
        key.name(),
        asc_ascq_description(asc, ascq)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}

impl Probe {
    /// Sends one command and waits for its status.
    pub async fn execute(&mut self, req: ScsiRequest) -> Result<ScsiOutcome, ProbeError> {
        let pending = self.submit(req).await?;
        let mut done = self.complete(vec![pending]).await?;
        Ok(done.remove(0))
    }

    /// Sends a command with its immediate and unsolicited data, without
    /// waiting.
    pub async fn submit(&mut self, req: ScsiRequest) -> Result<Pending, ProbeError> {
        // Before any sequence number is taken, so a refused CDB leaves none used.
        let cdb = Cdb::new(req.cdb.clone()).map_err(|e| ProbeError::Precondition {
            portal: self.portal().to_owned(),
            what: "building the CDB".into(),
            reason: e.to_string(),
        })?;
        let n = self.negotiated.clone();
        let write = req.write.clone().unwrap_or_default();
        let edtl = req.edtl();
        let limit = write.len().min(edtl as usize);
        let immediate_len = if n.immediate_data && !req.no_immediate_data {
            limit
                .min(n.first_burst as usize)
                .min(n.their_mrdsl as usize)
        } else {
            0
        };
        let unsolicited_end = if n.initial_r2t {
            immediate_len
        } else {
            limit.min(n.first_burst as usize)
        };
        let itt = self.itt();
        let cmd_sn = match (req.cmd_sn, req.immediate) {
            (Some(sn), _) => sn,
            (None, true) => self.cmd_sn,
            (None, false) => self.take_cmd_sn(),
        };
        let command = ScsiCommand {
            immediate: req.immediate,
            final_: unsolicited_end == immediate_len,
            read: req.read_len > 0,
            write: req.write.is_some(),
            attribute: req.attribute,
            lun: req.lun,
            itt,
            expected_data_transfer_length: edtl,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            cdb,
            bidi_read_length: None,
            data: write.slice(..immediate_len),
        };
        self.send(&Pdu::ScsiCommand(command)).await?;
        if unsolicited_end > immediate_len {
            self.send_data_out(
                req.lun,
                itt,
                Ttt::RESERVED,
                &write,
                immediate_len,
                unsolicited_end,
            )
            .await?;
        }
        Ok(Pending {
            itt,
            cmd_sn,
            lun: req.lun,
            write,
            read: Vec::new(),
            data_ins: Vec::new(),
            r2ts: Vec::new(),
            unsolicited: unsolicited_end,
        })
    }

    /// Data-Out PDUs for `data[start..end]`, cut to the target's
    /// MaxRecvDataSegmentLength, DataSN from 0, F on the last.
    pub async fn send_data_out(
        &mut self,
        lun: Lun,
        itt: Itt,
        ttt: Ttt,
        data: &Bytes,
        start: usize,
        end: usize,
    ) -> Result<(), ProbeError> {
        let chunk = self.negotiated.their_mrdsl.max(512) as usize;
        let end = end.min(data.len());
        let mut offset = start;
        let mut data_sn = 0u32;
        while offset < end {
            let len = chunk.min(end - offset);
            let pdu = DataOut {
                final_: offset + len == end,
                lun,
                itt,
                ttt,
                exp_stat_sn: self.exp_stat_sn,
                data_sn,
                buffer_offset: offset as u32,
                data: data.slice(offset..offset + len),
            };
            self.send(&Pdu::DataOut(pdu)).await?;
            offset += len;
            data_sn += 1;
        }
        Ok(())
    }

    /// Serves R2Ts and collects Data-In until every command has its status.
    /// PDUs of other tasks are kept in `asides`.
    pub async fn complete(&mut self, tasks: Vec<Pending>) -> Result<Vec<ScsiOutcome>, ProbeError> {
        let order: Vec<Itt> = tasks.iter().map(|t| t.itt).collect();
        let mut open: HashMap<Itt, Pending> = tasks.into_iter().map(|t| (t.itt, t)).collect();
        let mut done: HashMap<Itt, ScsiOutcome> = HashMap::new();
        while !open.is_empty() {
            let pdu = self.recv_reply("a SCSI Response").await?;
            match pdu {
                Pdu::DataIn(d) if open.contains_key(&d.itt) => {
                    let itt = d.itt;
                    let task = open.get_mut(&itt).expect("checked above");
                    place(&mut task.read, d.buffer_offset as usize, &d.data);
                    let status = d.status;
                    task.data_ins.push(d);
                    if let Some(st) = status {
                        let task = open.remove(&itt).expect("checked above");
                        done.insert(
                            itt,
                            finish(
                                task,
                                ServiceResponse::CompletedAtTarget,
                                st.status,
                                None,
                                st.residual,
                                st.stat_sn,
                                None,
                            ),
                        );
                    }
                }
                Pdu::R2t(r) if open.contains_key(&r.itt) => {
                    let (lun, write) = {
                        let task = open.get_mut(&r.itt).expect("checked above");
                        task.r2ts.push(r.clone());
                        (task.lun, task.write.clone())
                    };
                    let start = r.buffer_offset as usize;
                    let end = start.saturating_add(r.desired_data_transfer_length as usize);
                    self.send_data_out(lun, r.itt, r.ttt, &write, start, end)
                        .await?;
                }
                Pdu::ScsiResponse(resp) if open.contains_key(&resp.itt) => {
                    let task = open.remove(&resp.itt).expect("checked above");
                    let sense = resp.sense_bytes().and_then(|b| Sense::parse(&b).ok());
                    done.insert(
                        resp.itt,
                        finish(
                            task,
                            resp.response,
                            resp.status,
                            sense,
                            resp.residual,
                            resp.stat_sn,
                            Some(resp),
                        ),
                    );
                }
                Pdu::Reject(rej) => {
                    return Err(ProbeError::Rejected {
                        portal: self.portal().to_owned(),
                        opcode: rej
                            .rejected_opcode()
                            .map_or_else(|| "unknown".to_owned(), |o| o.to_string()),
                        reason: rej.reason,
                    });
                }
                other => self.asides.push(other),
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|itt| done.remove(&itt))
            .collect())
    }
}

fn finish(
    task: Pending,
    response: ServiceResponse,
    status: u8,
    sense: Option<Sense>,
    residual: Residual,
    stat_sn: u32,
    response_pdu: Option<ScsiResponse>,
) -> ScsiOutcome {
    ScsiOutcome {
        itt: task.itt,
        cmd_sn: task.cmd_sn,
        response,
        status,
        sense,
        data: Bytes::from(task.read),
        residual,
        data_ins: task.data_ins,
        r2ts: task.r2ts,
        response_pdu,
        stat_sn,
        unsolicited: task.unsolicited,
    }
}

/// Copies a Data-In segment to its buffer offset (bounded: a hostile
/// offset cannot make the probe allocate without limit).
fn place(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset.saturating_add(data.len());
    if end > MAX_READ {
        return;
    }
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(data);
}
