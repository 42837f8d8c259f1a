//! What the connection tells its driver.

use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, Lun};
use iscsi_proto::text::KeyValue;

use crate::command::{Command, CommandOutcome};
use crate::error::{CommandFailure, Error};
use crate::portal::Portal;
use iscsi_proto::text::OperationalParams;

/// Something the driver must act on or deliver.
#[derive(Debug)]
pub enum Event {
    /// Login finished: the connection is in full feature phase.
    LoggedIn {
        params: OperationalParams,
        tsih: u16,
    },
    /// The target redirected us: log in again at `portal`. `permanent` redirects
    /// should replace the configured portal.
    Redirected { portal: Portal, permanent: bool },
    /// A SCSI command finished, with a SCSI status or a failure.
    CommandComplete {
        task: Itt,
        result: Result<CommandOutcome, CommandFailure>,
    },
    /// A text exchange (SendTargets) finished: its key=value pairs.
    TextComplete {
        task: Itt,
        result: Result<Vec<KeyValue>, CommandFailure>,
    },
    /// The target reported something unsolicited.
    Target(TargetEvent),
    /// The connection is over. `error` is `None` after a clean logout.
    /// `unfinished` holds every command that did not complete, in submission
    /// order, ready to be replayed on another connection.
    Closed {
        error: Option<Error>,
        unfinished: Vec<(Itt, Command)>,
    },
}

/// Asynchronous Messages, as the driver sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEvent {
    /// A SCSI asynchronous event (e.g. capacity changed) with its sense data.
    ScsiEvent { lun: Lun, sense: Bytes },
    /// The target asks us to log out within `within`; the connection is
    /// draining and will close, after which the driver should reconnect.
    LogoutRequested { within: Duration },
    /// The target is dropping the connection; reconnect after `time2wait`.
    DroppingConnection { time2wait: Duration },
}
