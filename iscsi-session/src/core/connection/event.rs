//! What a connection tells its driver.

use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, Lun};
use iscsi_proto::text::{KeyValue, OperationalParams};

use crate::core::command::{Command, CommandOutcome};
use crate::core::error::{Error, TaskFailure};
use crate::core::lu_change::LuChange;
use crate::core::portal::Portal;

/// Something the driver must act on or deliver. `U` is the token the caller
/// gave with each command ([`crate::Connection::submit`]), handed back with it.
#[derive(Debug)]
pub enum ConnectionEvent<U> {
    /// Login finished: the connection is in full feature phase.
    LoggedIn {
        /// What the login agreed on.
        params: OperationalParams,
        /// The session handle the target assigned.
        tsih: u16,
    },
    /// The target redirected us: log in again at `portal`. `permanent`
    /// redirects should replace the configured portal.
    Redirected {
        /// Where to log in instead.
        portal: Portal,
        /// Whether later logins should go there too.
        permanent: bool,
    },
    /// A SCSI command finished, with a SCSI status or a failure.
    CommandComplete {
        /// Its task tag on this connection.
        itt: Itt,
        /// The command, handed back.
        command: Command,
        /// The caller's token.
        token: U,
        /// The target's answer, or why there is none.
        result: Result<CommandOutcome, TaskFailure>,
    },
    /// A text exchange (SendTargets) finished: its key=value pairs.
    TextComplete {
        /// Its task tag on this connection.
        itt: Itt,
        /// The pairs, or why there are none.
        result: Result<Vec<KeyValue>, TaskFailure>,
    },
    /// The target reported something unsolicited.
    Target(TargetEvent),
    /// The connection is over. `error` is `None` after a clean logout.
    Closed {
        /// Why, unless the logout was clean.
        error: Option<Error>,
        /// Every command that did not complete, in submission order.
        unfinished: Vec<Unfinished<U>>,
    },
}

/// A command a closed connection did not complete, handed back to its owner.
#[derive(Debug)]
pub struct Unfinished<U> {
    /// Its task tag on the closed connection.
    pub itt: Itt,
    /// The command, unchanged: it can be sent again elsewhere.
    pub command: Command,
    /// The caller's token.
    pub token: U,
    /// Whether its PDU was queued for the target. A sent command may have
    /// been executed; one never sent certainly was not.
    pub sent: bool,
}

/// What the target reported without being asked, as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEvent {
    /// A SCSI asynchronous event (Async Message, event 0) with its sense data.
    ScsiEvent {
        /// The LU it concerns.
        lun: Lun,
        /// Sense data without the length prefix.
        sense: Bytes,
    },
    /// The logical unit changed in a way a multipath layer acts on, from a
    /// UNIT ATTENTION in a command's sense or a SCSI asynchronous event.
    LunChanged {
        /// The LU it concerns.
        lun: Lun,
        /// What changed.
        change: LuChange,
    },
    /// The target asks us to log out within `within`; the connection is
    /// draining and will close, after which the driver should reconnect.
    LogoutRequested {
        /// The target's grace period.
        within: Duration,
    },
    /// The target is dropping the connection; reconnect after `time2wait`.
    DroppingConnection {
        /// How long the target asks us to wait before reconnecting.
        time2wait: Duration,
    },
}
