//! Session errors. Every variant names the path (portal and target) and, for
//! a command, the LUN, the ITT and the SCSI opcode, so that one log line says
//! which exchange failed where. No variant can carry a CHAP secret.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, LoginStatus, Lun, RejectReason};
use iscsi_proto::scsi::FailureClass;

use crate::config::ConfigError;
use crate::portal::Portal;

/// Which path an error happened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathContext {
    pub portal: Portal,
    /// Target IQN; empty for a discovery session.
    pub target: String,
}

impl fmt::Display for PathContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.target.is_empty() {
            write!(f, "{}", self.portal)
        } else {
            write!(f, "{} at {}", self.target, self.portal)
        }
    }
}

/// Why one command did not complete with a SCSI status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandFailure {
    /// No answer within the command timeout; the task was aborted.
    Timeout(Duration),
    /// The connection failed before the command completed.
    ConnectionLost(String),
    /// The target refused the PDU.
    Rejected(RejectReason),
    /// iSCSI response "target failure" (or a vendor code).
    TargetFailure(u8),
    /// The target broke the protocol while serving the command.
    Protocol(String),
    /// Ended by a logical unit reset that recovered another, timed-out task;
    /// it did not fail itself and may be retried.
    Reset,
    /// The session was closed by the user first.
    Cancelled,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandFailure::Timeout(d) => write!(f, "timed out after {d:?}"),
            CommandFailure::ConnectionLost(why) => write!(f, "connection lost: {why}"),
            CommandFailure::Rejected(r) => write!(f, "rejected by the target ({r:?})"),
            CommandFailure::TargetFailure(code) => {
                write!(f, "target failure (iSCSI response {code:#04x})")
            }
            CommandFailure::Protocol(why) => write!(f, "protocol violation: {why}"),
            CommandFailure::Reset => f.write_str("terminated by a logical unit reset"),
            CommandFailure::Cancelled => f.write_str("cancelled: session closed"),
        }
    }
}

/// Everything that can go wrong in a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration for {ctx}: {source}")]
    Config {
        ctx: PathContext,
        source: ConfigError,
    },
    #[error("cannot connect to {ctx}: {reason}")]
    Connect { ctx: PathContext, reason: String },
    #[error("login to {ctx} refused: {status}")]
    LoginRejected {
        ctx: PathContext,
        status: LoginStatus,
    },
    #[error("CHAP authentication with {ctx} failed: {reason}")]
    Authentication { ctx: PathContext, reason: String },
    #[error("login to {ctx}: the target refused CHAP with algorithms {offered}{}", status_suffix(.status))]
    ChapAlgorithmRejected {
        ctx: PathContext,
        offered: String,
        status: Option<LoginStatus>,
    },
    #[error("login negotiation with {ctx} failed: {reason}")]
    Negotiation { ctx: PathContext, reason: String },
    #[error("login to {ctx}: too many redirects (last to {last})")]
    TooManyRedirects { ctx: PathContext, last: Portal },
    #[error("{ctx}: protocol error: {reason}")]
    Protocol { ctx: PathContext, reason: String },
    #[error("{ctx}: connection lost: {reason}")]
    ConnectionLost { ctx: PathContext, reason: String },
    #[error("{ctx}: {what} timed out after {after:?}")]
    Timeout {
        ctx: PathContext,
        what: &'static str,
        after: Duration,
    },
    #[error("{ctx} LUN {lun}: SCSI opcode {opcode:#04x} (ITT {itt}) {failure}")]
    Command {
        ctx: PathContext,
        lun: Lun,
        itt: Itt,
        opcode: u8,
        failure: CommandFailure,
    },
    #[error("{ctx} LUN {lun}: SCSI opcode {opcode:#04x} (ITT {itt}) returned status {status:#04x}{}", sense_suffix(.sense))]
    Scsi {
        ctx: PathContext,
        lun: Lun,
        itt: Itt,
        opcode: u8,
        status: u8,
        sense: Option<Bytes>,
    },
    #[error("{ctx}: unexpected answer: {reason}")]
    BadResponse { ctx: PathContext, reason: String },
    #[error("{ctx}: session closed")]
    Closed { ctx: PathContext },
}

fn status_suffix(status: &Option<LoginStatus>) -> String {
    status.map(|s| format!(" ({s})")).unwrap_or_default()
}

fn sense_suffix(sense: &Option<Bytes>) -> String {
    match sense.as_deref().map(iscsi_proto::scsi::Sense::parse) {
        Some(Ok(s)) => format!(", {s}"),
        Some(Err(_)) => ", unreadable sense data".into(),
        None => String::new(),
    }
}

impl Error {
    /// The path the error happened on.
    pub fn context(&self) -> &PathContext {
        match self {
            Error::Config { ctx, .. }
            | Error::Connect { ctx, .. }
            | Error::LoginRejected { ctx, .. }
            | Error::Authentication { ctx, .. }
            | Error::ChapAlgorithmRejected { ctx, .. }
            | Error::Negotiation { ctx, .. }
            | Error::TooManyRedirects { ctx, .. }
            | Error::Protocol { ctx, .. }
            | Error::ConnectionLost { ctx, .. }
            | Error::Timeout { ctx, .. }
            | Error::Command { ctx, .. }
            | Error::Scsi { ctx, .. }
            | Error::BadResponse { ctx, .. }
            | Error::Closed { ctx } => ctx,
        }
    }

    /// What to do about this error, by the rule dm-multipath applies: retry on
    /// the same path, try another path, or give up.
    pub fn failure_class(&self) -> FailureClass {
        use iscsi_proto::scsi::{CommandFailure as Scsi, ScsiStatus, Sense, TransportFailure};
        let scsi = match self {
            Error::Scsi { status, sense, .. } => Scsi::Status {
                status: ScsiStatus::from_code(*status),
                sense: sense.as_deref().and_then(|s| Sense::parse(s).ok()),
            },
            Error::Command { failure, .. } => match failure {
                CommandFailure::Timeout(_) => Scsi::Timeout,
                CommandFailure::ConnectionLost(_) | CommandFailure::Protocol(_) => {
                    Scsi::Transport(TransportFailure::ConnectionLost)
                }
                CommandFailure::TargetFailure(_) => {
                    Scsi::Transport(TransportFailure::TargetFailure)
                }
                CommandFailure::Rejected(_) => Scsi::Transport(TransportFailure::SessionFailure),
                // Ended by a reset aimed at another task: nothing wrong with it.
                CommandFailure::Reset => return FailureClass::RetrySamePath,
                CommandFailure::Cancelled => return FailureClass::Final,
            },
            Error::Config { .. } | Error::BadResponse { .. } => return FailureClass::Final,
            _ => Scsi::Transport(TransportFailure::SessionFailure),
        };
        iscsi_proto::scsi::classify(&scsi)
    }

    /// True when retrying the login later cannot help (bad credentials, no
    /// such target): a reconnect loop should stop and report.
    pub fn is_permanent_login_failure(&self) -> bool {
        match self {
            Error::LoginRejected { status, .. } => status.is_initiator_error(),
            Error::Authentication { .. } | Error::Config { .. } | Error::Negotiation { .. } => true,
            _ => false,
        }
    }
}
