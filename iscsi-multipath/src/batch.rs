//! Batched submission through the volume: each command goes to the path the
//! policy picks, in one hand-off per path per batch, and a completion that
//! completed goes from that session's driver task straight to the caller's
//! sink. Anything else (a path error, a status to retry on the same path,
//! no usable path) carries on as a one-command [`dispatch`] would, in a
//! task of its own: failover logic stays in one place, and the common case
//! costs no future, task or channel per command.
//!
//! [`dispatch`]: crate::dispatch::dispatch

use std::sync::Arc;

use iscsi_session::{Command, CommandOutcome, CompletionSink, Error, RetryVerdict};
use tokio::time::Instant;

use crate::dispatch::{FirstAttempt, resume};
use crate::error::VolumeError;
use crate::member::Member;
use crate::volume::Shared;

/// The commands of one batch that go to one path.
struct Group {
    member: Arc<Member>,
    /// Tagged with their index in `asked`.
    commands: Vec<(u64, Command)>,
    asked: Vec<Asked>,
}

/// One command of a batch as its caller submitted it.
struct Asked {
    tag: u64,
    bytes: u64,
}

pub(crate) async fn submit_batch(
    shared: &Arc<Shared>,
    commands: Vec<(u64, Command)>,
    sink: Arc<dyn CompletionSink<VolumeError>>,
) {
    let mut groups: Vec<Group> = Vec::new();
    for (tag, mut command) in commands {
        if shared.closing() {
            let closed = VolumeError::Closed {
                volume: shared.name.clone(),
            };
            sink.complete(tag, command, Err(closed));
            continue;
        }
        let bytes = u64::from(command.expected_transfer_len());
        let Some(member) = shared.pick(bytes) else {
            // No usable path: it waits as no_path_retry says, on its own.
            spawn_dispatch(shared.clone(), tag, command, sink.clone());
            continue;
        };
        // Counted at once, so the next pick in this batch sees its load.
        member.counters.enter(bytes);
        command.lun = member.lun;
        let group = match groups
            .iter_mut()
            .position(|g| g.member.index == member.index)
        {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    member,
                    commands: Vec::new(),
                    asked: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.commands.push((group.asked.len() as u64, command));
        group.asked.push(Asked { tag, bytes });
    }
    let started = Instant::now();
    let mut unsent = Unsent {
        groups,
        sink: &sink,
        volume: &shared.name,
    };
    while let Some(group) = unsent.groups.pop() {
        let path = Arc::new(PathSink {
            shared: shared.clone(),
            member: group.member.clone(),
            asked: group.asked,
            started,
            sink: sink.clone(),
        });
        // From here the session answers each command, even if this future
        // is dropped while it waits.
        let session = &group.member.session;
        session.submit_batch(group.commands, path).await;
    }
}

/// The groups not handed to their session yet: if the submitter stops
/// waiting before they are, each command is answered as closed and leaves
/// its path's counters.
struct Unsent<'a> {
    groups: Vec<Group>,
    sink: &'a Arc<dyn CompletionSink<VolumeError>>,
    volume: &'a str,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        for group in self.groups.drain(..) {
            for ((_, command), asked) in group.commands.into_iter().zip(group.asked) {
                group.member.counters.leave(asked.bytes);
                let closed = VolumeError::Closed {
                    volume: self.volume.to_owned(),
                };
                self.sink.complete(asked.tag, command, Err(closed));
            }
        }
    }
}

fn spawn_dispatch(
    shared: Arc<Shared>,
    tag: u64,
    command: Command,
    sink: Arc<dyn CompletionSink<VolumeError>>,
) {
    tokio::spawn(async move {
        let result = resume(&shared, &command, None, &*sink).await;
        sink.complete(tag, command, result);
    });
}

/// The completions of one path's share of a batch.
struct PathSink {
    shared: Arc<Shared>,
    member: Arc<Member>,
    asked: Vec<Asked>,
    started: Instant,
    sink: Arc<dyn CompletionSink<VolumeError>>,
}

impl CompletionSink<Error> for PathSink {
    fn complete(&self, index: u64, command: Command, result: Result<CommandOutcome, Error>) {
        // Indexes are ours: one that is not cannot be answered anyway.
        let Some(asked) = usize::try_from(index).ok().and_then(|i| self.asked.get(i)) else {
            return;
        };
        self.member.counters.leave(asked.bytes);
        let first = match result {
            Ok(outcome)
                if self.shared.options.retry.judge(&outcome, 1) == RetryVerdict::Completed =>
            {
                let took = self.started.elapsed();
                self.member.counters.completed(asked.bytes, took);
                return self.sink.complete(asked.tag, command, Ok(outcome));
            }
            other => other,
        };
        if self.sink.is_closed() {
            // Nobody to re-issue it for.
            return self.sink.withdrawn(asked.tag);
        }
        let first = FirstAttempt {
            member: self.member.clone(),
            result: first,
            started: self.started,
        };
        let (shared, sink, tag) = (self.shared.clone(), self.sink.clone(), asked.tag);
        tokio::spawn(async move {
            let result = resume(&shared, &command, Some(first), &*sink).await;
            sink.complete(tag, command, result);
        });
    }

    fn is_closed(&self) -> bool {
        self.sink.is_closed()
    }

    fn withdrawn(&self, index: u64) {
        if let Some(asked) = usize::try_from(index).ok().and_then(|i| self.asked.get(i)) {
            self.member.counters.leave(asked.bytes);
            self.sink.withdrawn(asked.tag);
        }
    }
}
