//! The tasks a connection tracks by Initiator Task Tag, in one type that keeps
//! the table, the queue of commands waiting for the CmdSN window, the count of
//! commands sent and the deadline index consistent with each other.

use std::collections::VecDeque;
use std::time::Instant;

use iscsi_proto::pdu::{Itt, Lun, TmfFunction};

use super::deadline_queue::DeadlineQueue;
use super::itt_slab::{IttSlab, MAX_SLOTS};
use super::scsi_task::ScsiTask;
use crate::core::command::Command;

/// Why a text exchange was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextPurpose {
    /// Asked for by the user (SendTargets): the pairs are delivered.
    User,
    /// Answering the target's request to renegotiate: the pairs are applied.
    Renegotiation,
}

#[derive(Debug)]
pub(crate) enum TaskKind<U> {
    /// A SCSI command and the caller's token for it.
    Scsi(ScsiTask, U),
    /// Our NOP-Out keepalive.
    Ping,
    /// Task management: ABORT TASK (with the task it aborts) or LU RESET.
    TaskManagement {
        function: TmfFunction,
        lun: Lun,
        referenced: Option<Itt>,
    },
    Text {
        purpose: TextPurpose,
        received: Vec<u8>,
    },
    Logout,
}

impl<U> TaskKind<U> {
    pub fn scsi(&self) -> Option<&ScsiTask> {
        match self {
            TaskKind::Scsi(task, _) => Some(task),
            _ => None,
        }
    }
}

/// Why [`TaskTable::sent_scsi`] found no sent SCSI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// No task has the ITT.
    Unknown,
    /// Another kind of task, or a command still waiting for the window.
    Other,
}

#[derive(Debug)]
pub(crate) struct Task<U> {
    pub kind: TaskKind<U>,
    /// Submission order, to hand unfinished commands back in order.
    pub seq: u64,
    deadline: Option<Instant>,
}

/// SCSI commands at most. A command has at most one task management request
/// of its own at a time (its ABORT TASK, or the LU RESET that replaces it),
/// besides which there is at most one ping, one text exchange and one
/// logout: the other tasks always find a slot.
pub(crate) const MAX_SCSI_TASKS: usize = (MAX_SLOTS - 3) / 2;

/// Dead deadline entries tolerated before a compaction: out-of-order
/// completions leave entries behind the earliest live one.
const DEADLINE_SLACK: usize = 64;

/// Every task of one connection.
#[derive(Debug)]
pub(crate) struct TaskTable<U> {
    tasks: IttSlab<Task<U>>,
    /// SCSI commands waiting for the CmdSN window or the queue depth.
    waiting: VecDeque<Itt>,
    /// SCSI commands sent and not yet complete.
    in_flight: usize,
    max_scsi: usize,
    /// Deadlines, possibly of tasks that ended or whose deadline fired; the
    /// earliest entry is always live (see `trim_deadlines`).
    deadlines: DeadlineQueue,
    /// Tasks with a deadline still to fire.
    armed: usize,
    next_seq: u64,
}

impl<U> Default for TaskTable<U> {
    fn default() -> Self {
        TaskTable::with_limits(MAX_SLOTS, MAX_SCSI_TASKS)
    }
}

impl<U> TaskTable<U> {
    /// A table of at most `slots` tasks, `max_scsi` of them SCSI commands.
    pub fn with_limits(slots: usize, max_scsi: usize) -> Self {
        TaskTable {
            tasks: IttSlab::with_limit(slots),
            waiting: VecDeque::new(),
            in_flight: 0,
            max_scsi,
            deadlines: DeadlineQueue::default(),
            armed: 0,
            next_seq: 0,
        }
    }

    /// Adds a SCSI command at the end of the waiting queue, or gives it back
    /// when the table holds as many commands as it may.
    pub fn add_command(
        &mut self,
        command: Command,
        token: U,
        deadline: Instant,
    ) -> Result<Itt, (Command, U)> {
        let seq = self.next_seq;
        let room = self.in_flight + self.waiting.len() < self.max_scsi;
        let Some(entry) = self.tasks.vacant_entry().filter(|_| room) else {
            return Err((command, token));
        };
        let itt = entry.insert(Task {
            kind: TaskKind::Scsi(ScsiTask::new(command), token),
            seq,
            deadline: Some(deadline),
        });
        self.inserted(itt, Some(deadline));
        self.waiting.push_back(itt);
        Ok(itt)
    }

    /// Adds a task other than a SCSI command. `None` only if the table is
    /// full, which the bound on SCSI commands keeps from happening.
    pub fn add(&mut self, kind: TaskKind<U>, deadline: Option<Instant>) -> Option<Itt> {
        let seq = self.next_seq;
        let itt = self.tasks.vacant_entry()?.insert(Task {
            kind,
            seq,
            deadline,
        });
        self.inserted(itt, deadline);
        Some(itt)
    }

    fn inserted(&mut self, itt: Itt, deadline: Option<Instant>) {
        self.next_seq += 1;
        if let Some(at) = deadline {
            self.deadlines.push(at, itt);
            self.armed += 1;
            if self.deadlines.len() > 2 * self.armed + DEADLINE_SLACK {
                let tasks = &self.tasks;
                self.deadlines
                    .retain(|at, itt| tasks.get(itt).is_some_and(|t| t.deadline == Some(at)));
            }
        }
    }

    pub fn get(&self, itt: Itt) -> Option<&Task<U>> {
        self.tasks.get(itt)
    }

    pub fn kind_mut(&mut self, itt: Itt) -> Option<&mut TaskKind<U>> {
        self.tasks.get_mut(itt).map(|t| &mut t.kind)
    }

    /// The SCSI command `itt` names, if it was sent to the target (it has
    /// a CmdSN), in one lookup.
    pub fn sent_scsi(&mut self, itt: Itt) -> Result<&mut ScsiTask, NotSent> {
        match self.kind_mut(itt) {
            None => Err(NotSent::Unknown),
            Some(TaskKind::Scsi(task, _)) if task.cmd_sn.is_some() => Ok(task),
            Some(_) => Err(NotSent::Other),
        }
    }

    pub fn remove(&mut self, itt: Itt) -> Option<Task<U>> {
        let task = self.tasks.remove(itt)?;
        if task.deadline.is_some() {
            self.armed -= 1;
            self.trim_deadlines();
        }
        if let TaskKind::Scsi(s, _) = &task.kind {
            if s.cmd_sn.is_some() {
                self.in_flight -= 1;
            } else {
                self.waiting.retain(|w| *w != itt);
            }
        }
        Some(task)
    }

    /// Drops dead entries from the front of the deadline queue, so the
    /// earliest entry is a live deadline. Commands complete mostly in the
    /// order they were sent, so this is usually the one entry just ended.
    fn trim_deadlines(&mut self) {
        while let Some((at, itt)) = self.deadlines.peek() {
            if self.tasks.get(itt).is_some_and(|t| t.deadline == Some(at)) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// Removes the task only if it is of the kind the target's PDU answers: a
    /// PDU naming another task's ITT must not end that task unreported.
    pub fn remove_if(&mut self, itt: Itt, is_kind: fn(&TaskKind<U>) -> bool) -> Option<Task<U>> {
        let matching = self.tasks.get(itt).is_some_and(|t| is_kind(&t.kind));
        if matching { self.remove(itt) } else { None }
    }

    /// The next waiting command, taken off the queue and counted as sent; the
    /// caller assigns its CmdSN at once.
    pub fn take_next_waiting(&mut self) -> Option<(Itt, &mut ScsiTask)> {
        let itt = loop {
            let itt = self.waiting.pop_front()?;
            if matches!(
                self.tasks.get(itt).map(|t| &t.kind),
                Some(TaskKind::Scsi(..))
            ) {
                break itt;
            }
        };
        self.in_flight += 1;
        match self.tasks.get_mut(itt).map(|t| &mut t.kind) {
            Some(TaskKind::Scsi(task, _)) => Some((itt, task)),
            _ => None,
        }
    }

    /// SCSI commands sent and not complete.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// SCSI commands accepted and not yet sent.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn first_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|(at, _)| at)
    }

    /// The next task whose deadline is due at `now`; its deadline is cleared.
    pub fn pop_due(&mut self, now: Instant) -> Option<Itt> {
        let (at, itt) = self.deadlines.peek()?;
        if at > now {
            return None;
        }
        self.deadlines.pop();
        if let Some(task) = self.tasks.get_mut(itt) {
            task.deadline = None;
            self.armed -= 1;
        }
        self.trim_deadlines();
        Some(itt)
    }

    pub fn text_in_progress(&self) -> bool {
        self.tasks
            .values()
            .any(|t| matches!(t.kind, TaskKind::Text { .. }))
    }

    /// Sent commands on `lun`, each with whether it is being aborted.
    pub fn sent_on_lun(&self, lun: Lun) -> Vec<(Itt, bool)> {
        self.tasks
            .iter()
            .filter_map(|(itt, t)| match &t.kind {
                TaskKind::Scsi(s, _) if s.command.lun == lun && s.cmd_sn.is_some() => {
                    Some((itt, s.aborting))
                }
                _ => None,
            })
            .collect()
    }

    /// Empties the table, tasks in submission order.
    pub fn drain_in_order(&mut self) -> Vec<(Itt, Task<U>)> {
        self.waiting.clear();
        self.deadlines.clear();
        self.armed = 0;
        self.in_flight = 0;
        let mut tasks = self.tasks.drain();
        tasks.sort_by_key(|(_, t)| t.seq);
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::Direction;
    use iscsi_proto::scsi::Cdb;
    use std::time::Duration;

    fn task() -> Command {
        let lun = Lun::from_number(1).unwrap();
        Command::new(lun, Cdb::test_unit_ready(), Direction::None)
    }

    fn secs(now: Instant, s: u64) -> Instant {
        now + Duration::from_secs(s)
    }

    #[test]
    fn counts_stay_consistent_through_every_removal() {
        let now = Instant::now();
        let mut table = TaskTable::default();
        let a = table.add_command(task(), 7, secs(now, 1)).unwrap();
        let b = table.add_command(task(), 7, secs(now, 2)).unwrap();
        let ping = table.add(TaskKind::Ping, None).unwrap();
        assert_eq!((table.waiting(), table.in_flight()), (2, 0));
        let (sent, task) = table.take_next_waiting().unwrap();
        task.cmd_sn = Some(1);
        assert_eq!(sent, a);
        assert_eq!((table.waiting(), table.in_flight()), (1, 1));
        table.remove(b);
        assert_eq!((table.waiting(), table.in_flight()), (0, 1));
        assert_eq!(table.first_deadline(), Some(secs(now, 1)));
        assert!(
            table
                .remove_if(ping, |k| matches!(k, TaskKind::Logout))
                .is_none()
        );
        assert_eq!(table.pop_due(secs(now, 5)), Some(a));
        assert_eq!(table.pop_due(secs(now, 5)), None);
        table.remove(a);
        assert_eq!((table.waiting(), table.in_flight()), (0, 0));
        assert_eq!(table.drain_in_order().len(), 1, "the ping is left");
    }

    #[test]
    fn an_ended_tasks_itt_stays_unknown_when_its_slot_is_reused() {
        let now = Instant::now();
        let mut table = TaskTable::with_limits(1, 1);
        let old = table.add_command(task(), 1, secs(now, 1)).unwrap();
        table.remove(old);
        let new = table.add_command(task(), 2, secs(now, 1)).unwrap();
        assert_ne!(old, new);
        assert!(table.get(old).is_none());
        assert!(table.kind_mut(old).is_none());
        assert!(table.remove(old).is_none(), "a late answer ends nothing");
        assert!(matches!(
            table.get(new).map(|t| &t.kind),
            Some(TaskKind::Scsi(_, 2))
        ));
    }

    #[test]
    fn a_full_table_gives_the_command_back_and_keeps_room_for_the_others() {
        let now = Instant::now();
        let mut table = TaskTable::with_limits(4, 2);
        let a = table.add_command(task(), 1, secs(now, 1)).unwrap();
        table.add_command(task(), 2, secs(now, 1)).unwrap();
        let (_, token) = table.add_command(task(), 3, secs(now, 1)).unwrap_err();
        assert_eq!(token, 3, "the caller's token comes back");
        assert_eq!(table.waiting(), 2);
        assert!(table.add(TaskKind::Ping, None).is_some());
        assert!(table.add(TaskKind::Logout, None).is_some());
        assert!(
            table.add(TaskKind::Ping, None).is_none(),
            "every slot taken"
        );
        table.remove(a);
        assert!(table.add_command(task(), 4, secs(now, 1)).is_ok());
    }

    #[test]
    fn deadlines_fire_in_order_and_ended_tasks_never_fire() {
        let now = Instant::now();
        let mut table: TaskTable<u32> = TaskTable::default();
        let itts: Vec<Itt> = (0..5)
            .map(|i| {
                table
                    .add_command(task(), i, secs(now, 10 + i as u64))
                    .unwrap()
            })
            .collect();
        // A task management request with a shorter timeout than the commands'.
        let tmf = table
            .add(
                TaskKind::TaskManagement {
                    function: TmfFunction::AbortTask,
                    lun: Lun::default(),
                    referenced: None,
                },
                Some(secs(now, 11)),
            )
            .unwrap();
        // The first command completes: the next deadline moves on at once.
        table.remove(itts[0]);
        assert_eq!(table.first_deadline(), Some(secs(now, 11)));
        // One out of order: its entry stays until it comes up, then is skipped.
        table.remove(itts[3]);
        assert_eq!(table.pop_due(secs(now, 10)), None, "nothing due yet");
        let mut fired = Vec::new();
        while let Some(itt) = table.pop_due(secs(now, 100)) {
            fired.push(itt);
        }
        assert_eq!(fired, vec![itts[1], tmf, itts[2], itts[4]]);
        assert_eq!(table.first_deadline(), None);
        assert!(
            table.get(itts[1]).is_some(),
            "a fired task stays until ended"
        );
    }

    #[test]
    fn out_of_order_completions_do_not_pile_up_deadline_entries() {
        let now = Instant::now();
        let mut table: TaskTable<u32> = TaskTable::default();
        // The oldest command never completes; every later one does.
        let stuck = table.add_command(task(), 0, secs(now, 1)).unwrap();
        for i in 0..10_000 {
            let itt = table.add_command(task(), i, secs(now, 2)).unwrap();
            table.remove(itt);
        }
        assert!(table.deadlines.len() <= 2 * 2 + DEADLINE_SLACK);
        assert_eq!(table.first_deadline(), Some(secs(now, 1)));
        assert_eq!(table.pop_due(secs(now, 5)), Some(stuck));
        assert_eq!(table.pop_due(secs(now, 5)), None);
    }

    #[test]
    fn drain_hands_tasks_back_in_submission_order() {
        let now = Instant::now();
        let mut table: TaskTable<u32> = TaskTable::default();
        let a = table.add_command(task(), 1, secs(now, 1)).unwrap();
        let ping = table.add(TaskKind::Ping, None).unwrap();
        let b = table.add_command(task(), 2, secs(now, 1)).unwrap();
        table.remove(a);
        let c = table.add_command(task(), 3, secs(now, 1)).unwrap();
        let order: Vec<Itt> = table.drain_in_order().into_iter().map(|(i, _)| i).collect();
        assert_eq!(order, vec![ping, b, c]);
        assert_eq!((table.waiting(), table.in_flight()), (0, 0));
        assert!(table.get(b).is_none());
        assert_eq!(table.first_deadline(), None);
    }
}
