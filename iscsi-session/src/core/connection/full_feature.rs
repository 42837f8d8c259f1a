//! Full feature phase: the target's PDUs and what each one does to our tasks.

use std::time::Instant;

use bytes::Bytes;
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, DataIn, Itt, NopIn, NopOut, Opcode, Pdu, R2t, Reject, ScsiResponse,
    TaskMgmtResponse, TextRequest, TextResponse, TmfFunction, TmfResponse,
};
use iscsi_proto::text::KeyValue;
use tracing::{debug, info, warn};

use super::scsi_task::DataInStep;
use super::task_table::{NotSent, TaskKind, TextPurpose};
use super::{Connection, ConnectionEvent, MAX_TEXT_RESPONSE, Phase, TargetEvent, later, secs};
use crate::core::error::{Error, TaskFailure};
use crate::core::lu_change::LuChange;

impl<U> Connection<U> {
    pub(super) fn handle_full_feature_pdu(&mut self, pdu: Pdu, now: Instant) {
        if let Some((exp, max)) = pdu.command_window() {
            self.seq.update_window(exp, max);
        }
        if let Some(stat_sn) = pdu.status_sn()
            && !self.seq.observe_stat_sn(stat_sn)
        {
            debug!(stat_sn, opcode = %pdu.opcode(), "StatSN out of sequence");
        }
        match pdu {
            Pdu::ScsiResponse(r) => self.on_scsi_response(r),
            Pdu::DataIn(d) => self.on_data_in(d),
            Pdu::R2t(r) => self.on_r2t(r),
            Pdu::NopIn(n) => self.on_nop_in(n),
            Pdu::TaskMgmtResponse(r) => self.on_task_management_response(r, now),
            Pdu::TextResponse(r) => self.on_text_response(r),
            Pdu::LogoutResponse(r) => {
                if self
                    .tasks
                    .remove_if(r.itt, |k| matches!(k, TaskKind::Logout))
                    .is_some()
                {
                    debug!(response = ?r.response, "logged out");
                    self.close_with(None);
                }
            }
            Pdu::AsyncMessage(m) => self.on_async_message(m, now),
            Pdu::Reject(r) => self.on_reject(r),
            other => {
                let reason = format!("unexpected {} in full feature phase", other.opcode());
                self.fail(Error::Protocol {
                    ctx: self.ctx.clone(),
                    reason,
                });
            }
        }
        self.send_waiting();
    }

    fn protocol_violation(&mut self, itt: Itt, failure: TaskFailure) {
        // At ERL 0 a target that breaks a data sequence leaves the connection in
        // an unknown state: drop it, every unfinished command is replayed.
        let reason = format!("task {itt}: {failure}");
        self.fail(Error::Protocol {
            ctx: self.ctx.clone(),
            reason,
        });
    }

    /// What to do about a target PDU whose ITT names no sent SCSI command
    /// (`TaskTable::sent_scsi`): an unknown ITT (a late answer for a task
    /// already ended) is ignored; a PDU for another kind of task, or for a
    /// command still waiting for the window, is a violation and fails the
    /// connection.
    fn not_a_sent_command(&mut self, itt: Itt, what: &str, miss: NotSent) {
        match miss {
            NotSent::Unknown => debug!(%itt, "{what} for an unknown task, ignored"),
            NotSent::Other => self.protocol_violation(
                itt,
                TaskFailure::Protocol(format!(
                    "{what} for a task that is not a command sent to the target"
                )),
            ),
        }
    }

    fn on_scsi_response(&mut self, resp: ScsiResponse) {
        let itt = resp.itt;
        let scsi = match self.tasks.sent_scsi(itt) {
            Ok(scsi) => scsi,
            Err(miss) => return self.not_a_sent_command(itt, "SCSI Response", miss),
        };
        let result = scsi.on_response(resp);
        self.complete_command(itt, result);
    }

    fn on_data_in(&mut self, din: DataIn) {
        let itt = din.itt;
        let scsi = match self.tasks.sent_scsi(itt) {
            Ok(scsi) => scsi,
            Err(miss) => return self.not_a_sent_command(itt, "Data-In", miss),
        };
        match scsi.on_data_in(din) {
            Ok(DataInStep::Continue) => {}
            Ok(DataInStep::Done(outcome)) => self.complete_command(itt, Ok(outcome)),
            Err(failure) => self.protocol_violation(itt, failure),
        }
    }

    fn on_r2t(&mut self, r2t: R2t) {
        let exp_stat_sn = self.seq.exp_stat_sn;
        let itt = r2t.itt;
        // One lookup; the task borrows only `tasks`, so the Data-Out PDUs
        // go straight into `outgoing`.
        let scsi = match self.tasks.sent_scsi(itt) {
            Ok(scsi) => scsi,
            Err(miss) => return self.not_a_sent_command(itt, "R2T", miss),
        };
        if let Err(failure) = scsi.answer_r2t(&r2t, exp_stat_sn, &self.params, &mut self.outgoing) {
            self.protocol_violation(itt, failure);
        }
    }

    fn on_nop_in(&mut self, nop: NopIn) {
        if nop.itt.is_reserved() {
            // The target's own ping: answer only when it carries a TTT (§11.19).
            if nop.wants_reply() {
                self.stats.target_pings_answered += 1;
                // Echo the ping data, but never more than the target takes.
                let mut data = nop.data;
                data.truncate(self.params.max_xmit_data_segment_length as usize);
                self.outgoing.push_back(Pdu::NopOut(NopOut {
                    immediate: true,
                    lun: nop.lun,
                    itt: Itt::RESERVED,
                    ttt: nop.ttt,
                    cmd_sn: self.seq.cmd_sn,
                    exp_stat_sn: self.seq.exp_stat_sn,
                    data,
                }));
            }
            return;
        }
        if matches!(self.ping, Some((itt, _)) if itt == nop.itt) {
            self.ping = None;
        }
        self.tasks
            .remove_if(nop.itt, |k| matches!(k, TaskKind::Ping));
    }

    fn on_task_management_response(&mut self, resp: TaskMgmtResponse, now: Instant) {
        let is_tmf = |k: &TaskKind<U>| matches!(k, TaskKind::TaskManagement { .. });
        let Some(task) = self.tasks.remove_if(resp.itt, is_tmf) else {
            debug!(itt = %resp.itt, "task management response for an unknown task");
            return;
        };
        let TaskKind::TaskManagement {
            function,
            lun,
            referenced,
        } = task.kind
        else {
            return;
        };
        let done = matches!(
            resp.response,
            TmfResponse::FunctionComplete | TmfResponse::TaskDoesNotExist
        );
        if !done {
            return self.task_management_failed(
                function,
                lun,
                referenced,
                "refused by the target",
                now,
            );
        }
        match function {
            TmfFunction::AbortTask => {
                if let Some(itt) = referenced {
                    self.finish_aborted(itt);
                }
            }
            TmfFunction::LogicalUnitReset => {
                // The reset ended every task of the LU: the timed-out ones fail,
                // the others are free to retry.
                for (itt, aborting) in self.tasks.sent_on_lun(lun) {
                    if aborting {
                        self.finish_aborted(itt);
                    } else {
                        self.complete_command(itt, Err(TaskFailure::Reset));
                    }
                }
            }
            _ => {}
        }
    }

    fn finish_aborted(&mut self, itt: Itt) {
        let Some(after) = self
            .tasks
            .get(itt)
            .and_then(|t| t.kind.scsi())
            .map(|s| self.command_timeout(&s.command))
        else {
            return;
        };
        self.complete_command(itt, Err(TaskFailure::Timeout(after)));
    }

    fn on_text_response(&mut self, resp: TextResponse) {
        let itt = resp.itt;
        let Some(kind) = self.tasks.kind_mut(itt) else {
            debug!(%itt, "Text Response for an unknown task, ignored");
            return;
        };
        let TaskKind::Text { purpose, received } = kind else {
            return self.protocol_violation(
                itt,
                TaskFailure::Protocol("Text Response for a non-text task".into()),
            );
        };
        if received.len() + resp.data.len() > MAX_TEXT_RESPONSE {
            return self.protocol_violation(
                itt,
                TaskFailure::Protocol(format!("text response over {MAX_TEXT_RESPONSE} bytes")),
            );
        }
        received.extend_from_slice(&resp.data);
        if !resp.final_ || resp.continue_ {
            // §11.10: ask for the rest with an empty request echoing the TTT.
            self.outgoing.push_back(Pdu::TextRequest(TextRequest {
                immediate: true,
                final_: true,
                continue_: false,
                lun: resp.lun,
                itt,
                ttt: resp.ttt,
                cmd_sn: self.seq.cmd_sn,
                exp_stat_sn: self.seq.exp_stat_sn,
                data: Bytes::new(),
            }));
            return;
        }
        let purpose = *purpose;
        let received = std::mem::take(received);
        self.tasks.remove(itt);
        let parsed = crate::core::text::decode_text(&received)
            .map_err(|e| TaskFailure::Protocol(format!("text response: {e}")));
        match purpose {
            TextPurpose::User => self.events.push_back(ConnectionEvent::TextComplete {
                itt,
                result: parsed,
            }),
            TextPurpose::Renegotiation => match parsed {
                Ok(pairs) => self.apply_renegotiation(&pairs),
                Err(e) => warn!(error = %e, "renegotiation answer unreadable"),
            },
        }
    }

    fn apply_renegotiation(&mut self, pairs: &[KeyValue]) {
        for KeyValue { key, value } in pairs {
            if key == "MaxRecvDataSegmentLength" {
                match value.parse::<u32>() {
                    Ok(v) if (512..=16_777_215).contains(&v) => {
                        self.params.max_xmit_data_segment_length = v;
                        self.encoder.configure(self.encoder.digests(), v);
                        info!(value = v, "target renegotiated MaxRecvDataSegmentLength");
                    }
                    _ => {
                        warn!(value = %value, "ignoring invalid renegotiated MaxRecvDataSegmentLength")
                    }
                }
            }
        }
    }

    fn on_async_message(&mut self, msg: AsyncMessage, now: Instant) {
        match msg.event {
            AsyncEvent::ScsiEvent => {
                let sense = match msg.data.len() {
                    n if n >= 2 => {
                        let len = usize::from(u16::from_be_bytes([msg.data[0], msg.data[1]]));
                        msg.data.slice(2..(2 + len).min(n))
                    }
                    _ => Bytes::new(),
                };
                if let Some(change) = LuChange::from_sense_bytes(&sense) {
                    self.events
                        .push_back(ConnectionEvent::Target(TargetEvent::LunChanged {
                            lun: msg.lun,
                            change,
                        }));
                }
                self.events
                    .push_back(ConnectionEvent::Target(TargetEvent::ScsiEvent {
                        lun: msg.lun,
                        sense,
                    }));
            }
            AsyncEvent::LogoutRequest => {
                let within = secs(msg.parameter3);
                info!(?within, "target requests logout");
                self.events
                    .push_back(ConnectionEvent::Target(TargetEvent::LogoutRequested {
                        within,
                    }));
                if matches!(self.phase, Phase::FullFeature) {
                    // Leave some of the target's grace period for the logout itself.
                    let budget = within.min(self.config.timeouts.command) / 2;
                    self.phase = Phase::Draining {
                        deadline: later(now, budget),
                    };
                    self.maybe_finish_draining();
                }
            }
            AsyncEvent::DropConnection | AsyncEvent::DropAllConnections => {
                let time2wait = secs(msg.parameter2);
                self.events
                    .push_back(ConnectionEvent::Target(TargetEvent::DroppingConnection {
                        time2wait,
                    }));
                let reason = format!("target dropped the connection ({:?})", msg.event);
                self.fail(Error::ConnectionLost {
                    ctx: self.ctx.clone(),
                    reason,
                });
            }
            // §11.9.1: answer unless a text exchange is already under way.
            AsyncEvent::RenegotiateParameters if self.tasks.text_in_progress() => {
                debug!("renegotiation asked while a text exchange is under way");
            }
            AsyncEvent::RenegotiateParameters => {
                let ours = self.params.max_recv_data_segment_length.to_string();
                self.start_text(
                    &[("MaxRecvDataSegmentLength", &ours)],
                    TextPurpose::Renegotiation,
                    now,
                );
            }
            AsyncEvent::Other(code) => debug!(code, "vendor asynchronous event ignored"),
        }
    }

    fn on_reject(&mut self, reject: Reject) {
        let itt = reject.rejected_itt().unwrap_or(Itt::RESERVED);
        let opcode = reject.rejected_opcode();
        warn!(reason = ?reject.reason, ?opcode, %itt, "target rejected a PDU");
        match opcode {
            // A rejected Data-Out or SNACK: the target ends the command itself
            // with a status we will receive (§7.2.1 at ERL 0).
            Some(Opcode::DataOut) | Some(Opcode::SnackRequest) | None => {}
            Some(Opcode::NopOut) => {
                if matches!(self.ping, Some((p, _)) if p == itt) {
                    self.ping = None;
                }
                self.tasks.remove_if(itt, |k| matches!(k, TaskKind::Ping));
            }
            // A rejected command PDU was discarded (§7.8, even for a digest
            // error in its immediate data): it never ran, so it may be retried.
            // Its CmdSN is a hole the target would hold later commands behind:
            // plug it with an ABORT TASK naming it.
            Some(Opcode::ScsiCommand) => {
                let sent = self
                    .tasks
                    .get(itt)
                    .and_then(|t| t.kind.scsi())
                    .and_then(|s| s.cmd_sn.map(|sn| (sn, s.command.lun)));
                if let Some((cmd_sn, lun)) = sent {
                    self.complete_command(itt, Err(TaskFailure::Rejected(reject.reason)));
                    self.plug_cmd_sn_hole(itt, cmd_sn, lun, self.now);
                }
            }
            Some(Opcode::TextRequest) => {
                if let Some(task) = self
                    .tasks
                    .remove_if(itt, |k| matches!(k, TaskKind::Text { .. }))
                    && matches!(
                        task.kind,
                        TaskKind::Text {
                            purpose: TextPurpose::User,
                            ..
                        }
                    )
                {
                    self.events.push_back(ConnectionEvent::TextComplete {
                        itt,
                        result: Err(TaskFailure::Rejected(reject.reason)),
                    });
                }
            }
            // Task management, logout, or anything else we sent.
            Some(_) => {
                let reason = format!("target rejected our {opcode:?} ({:?})", reject.reason);
                self.fail(Error::Protocol {
                    ctx: self.ctx.clone(),
                    reason,
                });
            }
        }
    }
}
