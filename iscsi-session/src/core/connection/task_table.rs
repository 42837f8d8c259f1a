//! The tasks a connection tracks by Initiator Task Tag, in one type that keeps
//! the table, the queue of commands waiting for the CmdSN window, the count of
//! commands sent and the deadline index consistent with each other.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use iscsi_proto::pdu::{Itt, Lun, TmfFunction};

use super::scsi_task::ScsiTask;

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

#[derive(Debug)]
pub(crate) struct Task<U> {
    pub kind: TaskKind<U>,
    /// Submission order, to hand unfinished commands back in order.
    pub seq: u64,
    deadline: Option<Instant>,
}

/// Every task of one connection.
#[derive(Debug)]
pub(crate) struct TaskTable<U> {
    tasks: HashMap<Itt, Task<U>>,
    /// SCSI commands waiting for the CmdSN window or the queue depth.
    waiting: VecDeque<Itt>,
    /// SCSI commands sent and not yet complete.
    in_flight: usize,
    deadlines: BTreeSet<(Instant, Itt)>,
    next_itt: u32,
    next_seq: u64,
}

impl<U> Default for TaskTable<U> {
    fn default() -> Self {
        TaskTable {
            tasks: HashMap::new(),
            waiting: VecDeque::new(),
            in_flight: 0,
            deadlines: BTreeSet::new(),
            next_itt: 1,
            next_seq: 0,
        }
    }
}

impl<U> TaskTable<U> {
    fn allocate_itt(&mut self) -> Itt {
        loop {
            let candidate = Itt(self.next_itt);
            self.next_itt = self.next_itt.wrapping_add(1);
            if !candidate.is_reserved() && !self.tasks.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// Adds a task; a SCSI command joins the end of the waiting queue.
    pub fn add(&mut self, kind: TaskKind<U>, deadline: Option<Instant>) -> Itt {
        let itt = self.allocate_itt();
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(at) = deadline {
            self.deadlines.insert((at, itt));
        }
        if matches!(kind, TaskKind::Scsi(..)) {
            self.waiting.push_back(itt);
        }
        self.tasks.insert(
            itt,
            Task {
                kind,
                seq,
                deadline,
            },
        );
        itt
    }

    pub fn get(&self, itt: Itt) -> Option<&Task<U>> {
        self.tasks.get(&itt)
    }

    pub fn kind_mut(&mut self, itt: Itt) -> Option<&mut TaskKind<U>> {
        self.tasks.get_mut(&itt).map(|t| &mut t.kind)
    }

    pub fn scsi_mut(&mut self, itt: Itt) -> Option<&mut ScsiTask> {
        match self.kind_mut(itt) {
            Some(TaskKind::Scsi(task, _)) => Some(task),
            _ => None,
        }
    }

    pub fn remove(&mut self, itt: Itt) -> Option<Task<U>> {
        let task = self.tasks.remove(&itt)?;
        if let Some(at) = task.deadline {
            self.deadlines.remove(&(at, itt));
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

    /// Removes the task only if it is of the kind the target's PDU answers: a
    /// PDU naming another task's ITT must not end that task unreported.
    pub fn remove_if(&mut self, itt: Itt, is_kind: fn(&TaskKind<U>) -> bool) -> Option<Task<U>> {
        let matching = self.tasks.get(&itt).is_some_and(|t| is_kind(&t.kind));
        if matching { self.remove(itt) } else { None }
    }

    /// The next waiting command, taken off the queue and counted as sent; the
    /// caller assigns its CmdSN at once.
    pub fn take_next_waiting(&mut self) -> Option<(Itt, &mut ScsiTask)> {
        let itt = loop {
            let itt = self.waiting.pop_front()?;
            if matches!(
                self.tasks.get(&itt).map(|t| &t.kind),
                Some(TaskKind::Scsi(..))
            ) {
                break itt;
            }
        };
        self.in_flight += 1;
        match self.tasks.get_mut(&itt).map(|t| &mut t.kind) {
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
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The next task whose deadline is due at `now`; its deadline is cleared.
    pub fn pop_due(&mut self, now: Instant) -> Option<Itt> {
        let &(at, itt) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.pop_first();
        if let Some(task) = self.tasks.get_mut(&itt) {
            task.deadline = None;
        }
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
                    Some((*itt, s.aborting))
                }
                _ => None,
            })
            .collect()
    }

    /// Empties the table, tasks in submission order.
    pub fn drain_in_order(&mut self) -> Vec<(Itt, Task<U>)> {
        self.waiting.clear();
        self.deadlines.clear();
        self.in_flight = 0;
        let mut tasks: Vec<(Itt, Task<U>)> = self.tasks.drain().collect();
        tasks.sort_by_key(|(_, t)| t.seq);
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{Command, Direction};
    use iscsi_proto::scsi::Cdb;
    use std::time::Duration;

    fn command() -> TaskKind<u32> {
        let lun = Lun::from_number(1).unwrap();
        TaskKind::Scsi(
            ScsiTask::new(Command::new(lun, Cdb::test_unit_ready(), Direction::None)),
            7,
        )
    }

    #[test]
    fn counts_stay_consistent_through_every_removal() {
        let now = Instant::now();
        let mut table = TaskTable::default();
        let a = table.add(command(), Some(now + Duration::from_secs(1)));
        let b = table.add(command(), Some(now + Duration::from_secs(2)));
        let ping = table.add(TaskKind::Ping, None);
        assert_eq!((table.waiting(), table.in_flight()), (2, 0));
        let (sent, task) = table.take_next_waiting().unwrap();
        task.cmd_sn = Some(1);
        assert_eq!(sent, a);
        assert_eq!((table.waiting(), table.in_flight()), (1, 1));
        table.remove(b);
        assert_eq!((table.waiting(), table.in_flight()), (0, 1));
        assert_eq!(table.first_deadline(), Some(now + Duration::from_secs(1)));
        assert!(
            table
                .remove_if(ping, |k| matches!(k, TaskKind::Logout))
                .is_none()
        );
        assert_eq!(table.pop_due(now + Duration::from_secs(5)), Some(a));
        assert_eq!(table.pop_due(now + Duration::from_secs(5)), None);
        table.remove(a);
        assert_eq!((table.waiting(), table.in_flight()), (0, 0));
        assert_eq!(table.drain_in_order().len(), 1, "the ping is left");
    }

    #[test]
    fn itts_skip_the_reserved_value_and_live_tasks() {
        let mut table: TaskTable<u32> = TaskTable {
            next_itt: u32::MAX,
            ..TaskTable::default()
        };
        let a = table.add(TaskKind::Ping, None);
        assert!(!a.is_reserved());
        table.next_itt = a.0;
        let b = table.add(TaskKind::Ping, None);
        assert_ne!(a, b);
    }
}
