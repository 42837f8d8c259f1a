//! What [`crate::Session`] handles ask of their driver, and the token the
//! driver attaches to each command it hands to the connection.

use iscsi_proto::text::KeyValue;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::core::command::{Command, CommandOutcome};
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
    pub reply: CommandReply,
    pub orphaned_at: Option<Instant>,
}

impl Pending {
    pub fn new(reply: CommandReply) -> Self {
        Pending {
            reply,
            orphaned_at: None,
        }
    }

    /// False once the caller stopped waiting (its future was dropped): such a
    /// command must never be sent, or sent again.
    pub fn caller_waits(&self) -> bool {
        !self.reply.is_closed()
    }

    pub fn answer(self, result: Result<CommandOutcome, Error>) {
        // A caller that went away does not want the answer.
        let _ = self.reply.send(result);
    }
}
