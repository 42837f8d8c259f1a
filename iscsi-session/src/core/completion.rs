//! Batched completion: commands carry a caller's tag instead of a future
//! each, and their outcomes land in a [`CompletionSink`] (a queue the caller
//! drains in bursts, or a callback that runs where the command completed).
//! Plain `std`, no runtime: an embedder's own loop can drain a queue too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::core::command::{Command, CommandOutcome};

/// Where the outcomes of submitted commands go: for each command, one call
/// of [`CompletionSink::complete`], or of [`CompletionSink::withdrawn`]
/// once the sink said it is closed. The call comes from whichever task
/// ended the command: a session's driver mostly, a retry's own task, or the
/// submitter's task itself when the session has ended. Keep it short, never
/// block in it, and never take a lock in it that the submitter holds while
/// it submits.
pub trait CompletionSink<E>: Send + Sync {
    /// Command `tag` ended with `result`. The command comes back, for a
    /// layer that re-issues it (a retry, another path); a multipath volume
    /// has readdressed it to the LUN of the path it last went to.
    fn complete(&self, tag: u64, command: Command, result: Result<CommandOutcome, E>);

    /// True once nobody waits for these outcomes: a command not sent yet is
    /// then withdrawn instead of sent, and none is sent again after a
    /// reconnect.
    fn is_closed(&self) -> bool {
        false
    }

    /// Command `tag` was withdrawn unsent because [`CompletionSink::is_closed`]
    /// said so: it gets no [`CompletionSink::complete`]. For a sink that
    /// keeps accounts per command (a path's commands in flight).
    fn withdrawn(&self, tag: u64) {
        let _ = tag;
    }
}

impl<E> std::fmt::Debug for dyn CompletionSink<E> + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionSink")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// One drained completion.
#[derive(Debug)]
pub struct Completion<E> {
    /// The tag the command was submitted with.
    pub tag: u64,
    /// How it ended.
    pub result: Result<CommandOutcome, E>,
}

/// A completion queue: producers push from any thread through its
/// [`CompletionQueue::sink`]; its owner takes everything that arrived in one
/// go. One owner: it keeps one waker, the last drainer's. Dropping the
/// queue closes the sink.
#[derive(Debug)]
pub struct CompletionQueue<E> {
    shared: Arc<Shared<E>>,
}

#[derive(Debug)]
struct Shared<E> {
    state: Mutex<State<E>>,
    /// Also in `state`; here so that a driver asking per command takes no lock.
    closed: AtomicBool,
}

#[derive(Debug)]
struct State<E> {
    ready: Vec<Completion<E>>,
    /// The owner waiting for the next completion.
    waker: Option<Waker>,
    closed: bool,
}

impl<E> Default for CompletionQueue<E> {
    fn default() -> Self {
        CompletionQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ready: Vec::new(),
                    waker: None,
                    closed: false,
                }),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // A producer that panicked mid-push left a Vec that is still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<E: Send + 'static> CompletionQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The producers' end, to submit commands with.
    pub fn sink(&self) -> Arc<dyn CompletionSink<E>> {
        self.shared.clone()
    }

    /// Moves every completion that arrived into `out` (appending); how many.
    pub fn try_drain(&self, out: &mut Vec<Completion<E>>) -> usize {
        let mut state = self.shared.lock();
        let n = state.ready.len();
        if out.is_empty() {
            // Swap rather than copy: both vectors keep their capacity.
            std::mem::swap(out, &mut state.ready);
        } else {
            out.append(&mut state.ready);
        }
        n
    }

    /// Like [`CompletionQueue::try_drain`], but pending (and woken by the
    /// next completion) while there is none.
    pub fn poll_drain(&self, cx: &mut Context<'_>, out: &mut Vec<Completion<E>>) -> Poll<usize> {
        let mut state = self.shared.lock();
        if state.ready.is_empty() {
            if !state
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = state.ready.len();
        if out.is_empty() {
            std::mem::swap(out, &mut state.ready);
        } else {
            out.append(&mut state.ready);
        }
        Poll::Ready(n)
    }

    /// Waits for at least one completion and moves all there are into `out`.
    pub async fn drain(&self, out: &mut Vec<Completion<E>>) -> usize {
        std::future::poll_fn(|cx| self.poll_drain(cx, out)).await
    }
}

impl<E> Drop for CompletionQueue<E> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.closed.store(true, Ordering::Release);
        state.ready.clear();
        state.waker = None;
    }
}

impl<E: Send> CompletionSink<E> for Shared<E> {
    fn complete(&self, tag: u64, command: Command, result: Result<CommandOutcome, E>) {
        // The payload is released here, not when the owner drains.
        drop(command);
        let waker = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.ready.push(Completion { tag, result });
            state.waker.take()
        };
        // Woken outside the lock: the owner may run at once on another thread.
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{Direction, ReadData};
    use iscsi_proto::pdu::{Itt, Lun, Residual};
    use iscsi_proto::scsi::Cdb;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    fn command() -> Command {
        Command::new(
            Lun::from_number(0).unwrap(),
            Cdb::test_unit_ready(),
            Direction::None,
        )
    }

    fn good() -> CommandOutcome {
        CommandOutcome {
            itt: Itt(7),
            status: 0,
            sense: None,
            data: ReadData::new(),
            residual: Residual::None,
        }
    }

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn completions_arrive_in_order_and_wake_the_owner_once_per_wait() {
        let queue = CompletionQueue::<String>::new();
        let sink = queue.sink();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        assert_eq!(queue.poll_drain(&mut cx, &mut out), Poll::Pending);
        sink.complete(1, command(), Ok(good()));
        sink.complete(2, command(), Err("lost".into()));
        // The first completion woke the owner; the second found no waker.
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(queue.poll_drain(&mut cx, &mut out), Poll::Ready(2));
        let tags: Vec<u64> = out.iter().map(|c| c.tag).collect();
        assert_eq!(tags, [1, 2]);
        assert!(out[1].result.is_err());
        assert_eq!(queue.try_drain(&mut out), 0);
        assert_eq!(out.len(), 2, "an empty drain appends nothing");
    }

    #[test]
    fn a_dropped_queue_closes_its_sink_and_drops_late_completions() {
        let queue = CompletionQueue::<String>::new();
        let sink = queue.sink();
        assert!(!sink.is_closed());
        drop(queue);
        assert!(sink.is_closed());
        // Nobody to hand it to: taken and dropped, no panic.
        sink.complete(3, command(), Ok(good()));
    }
}
