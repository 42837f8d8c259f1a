//! The non-SCSI requests of full feature phase: NOP-Out, Text, Task
//! Management and Logout, each sent as asked and answered by one PDU.

use bytes::Bytes;
use iscsi_proto::pdu::{
    Itt, LogoutReason, LogoutRequest, LogoutResponse, Lun, NopIn, NopOut, Pdu, TaskMgmtRequest,
    TaskMgmtResponse, TextRequest, TextResponse, TmfFunction, Ttt,
};
use iscsi_proto::text::KeyValue;

use crate::error::ProbeError;
use crate::probe::connection::Probe;
use crate::probe::text;

/// A Text exchange's result: every response PDU and the joined keys.
#[derive(Clone, Debug)]
pub struct TextExchange {
    /// The responses, in order (several when the target continued).
    pub responses: Vec<TextResponse>,
    /// The keys of the whole answer.
    pub keys: Vec<KeyValue>,
}

impl Probe {
    /// A ping: NOP-Out with a fresh ITT, immediate, `data` to be echoed.
    pub fn nop_out(&mut self, immediate: bool, data: Bytes) -> NopOut {
        let cmd_sn = if immediate {
            self.cmd_sn
        } else {
            self.take_cmd_sn()
        };
        NopOut {
            immediate,
            lun: Lun::default(),
            itt: self.itt(),
            ttt: Ttt::RESERVED,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data,
        }
    }

    /// Sends a ping and waits for the NOP-In that answers it.
    pub async fn ping(&mut self, immediate: bool, data: Bytes) -> Result<NopIn, ProbeError> {
        let nop = self.nop_out(immediate, data);
        let itt = nop.itt;
        self.send(&Pdu::NopOut(nop)).await?;
        loop {
            match self.recv_reply("a NOP-In").await? {
                Pdu::NopIn(n) if n.itt == itt => return Ok(n),
                Pdu::Reject(r) => return Err(self.rejected(&r)),
                other => self.asides.push(other),
            }
        }
    }

    /// A Reject as an error, naming the rejected opcode.
    pub fn rejected(&self, r: &iscsi_proto::pdu::Reject) -> ProbeError {
        ProbeError::Rejected {
            portal: self.portal().to_owned(),
            opcode: r
                .rejected_opcode()
                .map_or_else(|| "unknown".to_owned(), |o| o.to_string()),
            reason: r.reason,
        }
    }

    /// A Text Request (final, not continued) with these keys.
    pub fn text_request(&mut self, immediate: bool, keys: &[KeyValue]) -> TextRequest {
        let cmd_sn = if immediate {
            self.cmd_sn
        } else {
            self.take_cmd_sn()
        };
        TextRequest {
            immediate,
            final_: true,
            continue_: false,
            lun: Lun::default(),
            itt: self.itt(),
            ttt: Ttt::RESERVED,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data: Bytes::from(text::encode(keys)),
        }
    }

    /// A Text exchange, following continued answers (§11.10, §11.11): an
    /// empty request with the target's TTT asks for the rest.
    pub async fn text(
        &mut self,
        immediate: bool,
        keys: &[KeyValue],
    ) -> Result<TextExchange, ProbeError> {
        let mut req = self.text_request(immediate, keys);
        let itt = req.itt;
        let mut responses = Vec::new();
        let mut joined = Vec::new();
        loop {
            self.send(&Pdu::TextRequest(req.clone())).await?;
            let resp = loop {
                match self.recv_reply("a Text Response").await? {
                    Pdu::TextResponse(t) if t.itt == itt => break t,
                    Pdu::Reject(r) => return Err(self.rejected(&r)),
                    other => self.asides.push(other),
                }
            };
            joined.extend_from_slice(&resp.data);
            let more = resp.continue_ || !resp.final_;
            let ttt = resp.ttt;
            responses.push(resp);
            if !more || joined.len() > text::MAX_TEXT || responses.len() > 64 {
                break;
            }
            req = TextRequest {
                immediate,
                final_: true,
                continue_: false,
                lun: Lun::default(),
                itt,
                ttt,
                cmd_sn: self.cmd_sn,
                exp_stat_sn: self.exp_stat_sn,
                data: Bytes::new(),
            };
            if !immediate {
                // The follow-up is a new non-immediate request: it takes a CmdSN.
                req.cmd_sn = self.take_cmd_sn();
            }
        }
        Ok(TextExchange {
            responses,
            keys: text::decode(&joined),
        })
    }

    /// A Task Management request, immediate as RFC 7143 §4.2.2.1 advises.
    pub fn tmf_request(
        &mut self,
        function: TmfFunction,
        lun: Lun,
        referenced: Itt,
        ref_cmd_sn: u32,
    ) -> TaskMgmtRequest {
        TaskMgmtRequest {
            immediate: true,
            function,
            lun,
            itt: self.itt(),
            referenced_task_tag: referenced,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            ref_cmd_sn,
            exp_data_sn: 0,
        }
    }

    /// Sends a TMF request and waits for its response; PDUs of other tasks
    /// arriving meanwhile are kept in `asides`.
    pub async fn tmf(&mut self, req: TaskMgmtRequest) -> Result<TaskMgmtResponse, ProbeError> {
        let itt = req.itt;
        self.send(&Pdu::TaskMgmtRequest(req)).await?;
        loop {
            match self.recv_reply("a Task Management Response").await? {
                Pdu::TaskMgmtResponse(t) if t.itt == itt => return Ok(t),
                Pdu::Reject(r) => return Err(self.rejected(&r)),
                other => self.asides.push(other),
            }
        }
    }

    /// A Logout Request for `reason` and `cid`.
    pub fn logout_request(
        &mut self,
        reason: LogoutReason,
        cid: u16,
        immediate: bool,
    ) -> LogoutRequest {
        let cmd_sn = if immediate {
            self.cmd_sn
        } else {
            self.take_cmd_sn()
        };
        LogoutRequest {
            immediate,
            reason,
            itt: self.itt(),
            cid,
            cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        }
    }

    /// Sends a Logout Request and waits for its response.
    pub async fn logout(&mut self, req: LogoutRequest) -> Result<LogoutResponse, ProbeError> {
        let itt = req.itt;
        self.send(&Pdu::LogoutRequest(req)).await?;
        loop {
            match self.recv_reply("a Logout Response").await? {
                Pdu::LogoutResponse(l) if l.itt == itt => return Ok(l),
                Pdu::Reject(r) => return Err(self.rejected(&r)),
                other => self.asides.push(other),
            }
        }
    }

    /// Closes the session with an immediate logout.
    pub async fn logout_session(&mut self) -> Result<LogoutResponse, ProbeError> {
        let req = self.logout_request(LogoutReason::CloseSession, self.cid, true);
        self.logout(req).await
    }
}
