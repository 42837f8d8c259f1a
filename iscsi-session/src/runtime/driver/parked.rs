//! Commands waiting for the next connection under [`crate::Recovery::Replay`],
//! each bounded by the replacement timeout.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use super::request::Pending;
use crate::core::command::Command;

/// Parked commands, in the order they are to be replayed.
#[derive(Debug, Default)]
pub(crate) struct Parked {
    queue: VecDeque<(Command, Pending)>,
}

impl Parked {
    /// Parks a command; its replacement timeout starts now unless it already
    /// runs from an earlier loss.
    pub fn push(&mut self, command: Command, mut pending: Pending, now: Instant) {
        pending.orphaned_at.get_or_insert(now);
        self.queue.push_back((command, pending));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// When the oldest parked command's replacement timeout ends.
    pub fn next_expiry(&self, replacement: Duration) -> Option<Instant> {
        self.queue
            .iter()
            .filter_map(|(_, p)| p.orphaned_at.map(|t| t + replacement))
            .min()
    }

    /// Takes the commands whose replacement timeout has passed, and drops
    /// those whose caller stopped waiting.
    pub fn take_expired(&mut self, replacement: Duration, now: Instant) -> Vec<(Command, Pending)> {
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .queue
            .drain(..)
            .partition(|(_, p)| p.orphaned_at.is_some_and(|t| now >= t + replacement));
        self.queue = kept.into();
        self.withdraw_abandoned();
        expired
    }

    /// Drops the parked commands whose caller stopped waiting.
    fn withdraw_abandoned(&mut self) -> usize {
        let before = self.queue.len();
        let mut kept = VecDeque::with_capacity(before);
        for (command, pending) in self.queue.drain(..) {
            if pending.caller_waits() {
                kept.push_back((command, pending));
            } else {
                pending.withdraw();
            }
        }
        self.queue = kept;
        before - self.queue.len()
    }

    /// Every parked command whose caller still waits, in order; the others
    /// are dropped unsent.
    pub fn take_live(&mut self) -> Vec<(Command, Pending)> {
        let dropped = self.withdraw_abandoned();
        if dropped > 0 {
            debug!(
                dropped,
                "not replaying commands whose callers stopped waiting"
            );
        }
        self.queue.drain(..).collect()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (Command, Pending)> + '_ {
        self.queue.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_proto::pdu::Lun;
    use iscsi_proto::scsi::Cdb;
    use tokio::sync::oneshot;

    use crate::core::command::Direction;

    fn command() -> Command {
        Command::new(Lun::default(), Cdb::test_unit_ready(), Direction::None)
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_runs_from_the_first_loss_and_gone_callers_are_dropped() {
        let replacement = Duration::from_secs(10);
        let mut parked = Parked::default();
        let t0 = Instant::now();
        let (tx, _keep) = oneshot::channel();
        let mut first = Pending::new(tx);
        first.orphaned_at = Some(t0 - Duration::from_secs(8));
        parked.push(command(), first, t0);
        let (tx, rx) = oneshot::channel();
        parked.push(command(), Pending::new(tx), t0);
        drop(rx);
        assert_eq!(
            parked.next_expiry(replacement),
            Some(t0 + Duration::from_secs(2))
        );
        assert!(parked.take_expired(replacement, t0).is_empty());
        assert_eq!(parked.len(), 1, "the command nobody waits for is gone");
        let expired = parked.take_expired(replacement, t0 + Duration::from_secs(2));
        assert_eq!(expired.len(), 1);
        assert_eq!(parked.len(), 0);
    }

    /// A sink that counts what it is told, closed when asked.
    #[derive(Default)]
    struct Counting {
        closed: std::sync::atomic::AtomicBool,
        completed: std::sync::Mutex<Vec<u64>>,
        withdrawn: std::sync::Mutex<Vec<u64>>,
    }

    impl crate::core::completion::CompletionSink<crate::core::error::Error> for Counting {
        fn complete(
            &self,
            tag: u64,
            _: Command,
            _: Result<crate::core::command::CommandOutcome, crate::core::error::Error>,
        ) {
            self.completed.lock().unwrap().push(tag);
        }
        fn is_closed(&self) -> bool {
            self.closed.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn withdrawn(&self, tag: u64) {
            self.withdrawn.lock().unwrap().push(tag);
        }
    }

    /// A batched command whose sink closed is not replayed and its sink is
    /// told it was withdrawn (a path counts it out); one whose sink lives is
    /// replayed, and its outcome lands there under its tag.
    #[tokio::test(start_paused = true)]
    async fn batched_commands_are_replayed_only_while_their_sink_is_open() {
        use std::sync::Arc;
        let mut parked = Parked::default();
        let kept = Arc::new(Counting::default());
        let gone = Arc::new(Counting::default());
        parked.push(command(), Pending::queued(1, kept.clone()), Instant::now());
        parked.push(command(), Pending::queued(2, gone.clone()), Instant::now());
        parked.push(command(), Pending::queued(3, gone.clone()), Instant::now());
        gone.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let live = parked.take_live();
        assert_eq!(live.len(), 1);
        assert_eq!(*gone.withdrawn.lock().unwrap(), [2, 3]);
        assert!(gone.completed.lock().unwrap().is_empty());
        let (command, pending) = live.into_iter().next().unwrap();
        let ctx = crate::core::error::PathContext {
            portal: crate::core::portal::Portal::new("127.0.0.1", 3260),
            target: "t".into(),
        };
        pending.answer(command, Err(crate::core::error::Error::Closed { ctx }));
        assert_eq!(*kept.completed.lock().unwrap(), [1]);
        assert!(kept.withdrawn.lock().unwrap().is_empty());
    }
}
