//! What [`crate::Session`] handles ask of their driver, and the token the
//! driver attaches to each command it hands to the connection.

use std::sync::Arc;

use iscsi_proto::text::KeyValue;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::core::command::{Command, CommandOutcome};
use crate::core::completion::CompletionSink;
use crate::core::connection::ConnectionStats;
use crate::core::error::Error;

/// Where a command's answer goes.
pub(crate) type CommandReply = oneshot::Sender<Result<CommandOutcome, Error>>;

/// Where a text exchange's answer goes.
pub(crate) type TextReply = oneshot::Sender<Result<Vec<KeyValue>, Error>>;

/// Requests from handles to the driver task.
#[derive(Debug)]
pub(crate) enum Request {
    Command {
        command: Command,
        reply: CommandReply,
    },
    /// Many commands in one hand-off, their outcomes to one sink.
    Batch {
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<Error>>,
    },
    Text {
        pairs: Vec<(String, String)>,
        reply: TextReply,
    },
    Stats {
        reply: oneshot::Sender<ConnectionStats>,
    },
    Logout {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Skip the reconnect wait, or try again after logins gave up.
    ReconnectNow,
}

/// The driver's token for one command: its caller, and when it was first
/// left without a connection (the replacement timeout counts from there
/// across every reconnect, so a command that keeps losing its connection
/// fails in the end instead of being replayed forever).
#[derive(Debug)]
pub(crate) struct Pending {
    caller: Caller,
    pub orphaned_at: Option<Instant>,
}

/// Who waits for a command's outcome.
#[derive(Debug)]
enum Caller {
    /// A future of its own ([`crate::Session::execute`]).
    Future(CommandReply),
    /// A batch's sink, under the submitter's tag.
    Sink {
        tag: u64,
        sink: Arc<dyn CompletionSink<Error>>,
    },
}

impl Pending {
    pub fn new(reply: CommandReply) -> Self {
        Pending {
            caller: Caller::Future(reply),
            orphaned_at: None,
        }
    }

    pub fn queued(tag: u64, sink: Arc<dyn CompletionSink<Error>>) -> Self {
        Pending {
            caller: Caller::Sink { tag, sink },
            orphaned_at: None,
        }
    }

    /// False once the caller stopped waiting (its future or its completion
    /// queue was dropped): such a command must never be sent, or sent again.
    pub fn caller_waits(&self) -> bool {
        match &self.caller {
            Caller::Future(reply) => !reply.is_closed(),
            Caller::Sink { sink, .. } => !sink.is_closed(),
        }
    }

    /// Drops a command whose caller stopped waiting ([`Pending::caller_waits`]
    /// is false), unsent or not to be sent again; a sink is told.
    pub fn withdraw(self) {
        if let Caller::Sink { tag, sink } = self.caller {
            sink.withdrawn(tag);
        }
    }

    /// Hands `command`'s outcome to whoever waits for it.
    pub fn answer(self, command: Command, result: Result<CommandOutcome, Error>) {
        match self.caller {
            // A caller that went away does not want the answer.
            Caller::Future(reply) => {
                let _ = reply.send(result);
            }
            Caller::Sink { tag, sink } => sink.complete(tag, command, result),
        }
    }
}
