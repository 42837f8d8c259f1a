//! What can stop a probe before a test reaches its verdict. Every variant
//! names the portal (and, where it matters, the target and the opcode), and
//! none can hold a secret: CHAP values never enter an error.

use std::io;
use std::time::Duration;

use iscsi_proto::codec::{DecodeError, EncodeError};
use iscsi_proto::pdu::{LoginStatus, Opcode, RejectReason};
use iscsi_proto::text::TextError;

/// A probe connection failed to do what a test asked of it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {portal}: {source}")]
    Connect {
        /// host:port.
        portal: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("{portal}: socket error while {what}: {source}")]
    Io {
        /// host:port.
        portal: String,
        /// What the probe was doing.
        what: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The target closed the connection when the probe expected a PDU.
    #[error("{portal}: the target closed the connection while the probe waited for {what}")]
    Closed {
        /// host:port.
        portal: String,
        /// What was awaited.
        what: String,
    },
    /// Nothing arrived in time.
    #[error("{portal}: no {what} within {after:?}")]
    Timeout {
        /// host:port.
        portal: String,
        /// What was awaited.
        what: String,
        /// How long the probe waited.
        after: Duration,
    },
    /// The target sent bytes that do not frame as an iSCSI PDU.
    #[error("{portal}: undecodable PDU from the target: {source}")]
    Decode {
        /// host:port.
        portal: String,
        /// The codec's reason.
        #[source]
        source: DecodeError,
    },
    /// A PDU the probe built could not be encoded (a bug in a test).
    #[error("{portal}: cannot encode {opcode}: {source}")]
    Encode {
        /// host:port.
        portal: String,
        /// The PDU's opcode.
        opcode: Opcode,
        /// The codec's reason.
        #[source]
        source: EncodeError,
    },
    /// The target answered with a PDU the exchange does not allow.
    #[error("{portal}: expected {expected}, the target sent {got}")]
    Unexpected {
        /// host:port.
        portal: String,
        /// What the exchange allows.
        expected: String,
        /// What came.
        got: Opcode,
    },
    /// The target rejected a PDU the probe sent.
    #[error("{portal}: the target rejected a {opcode} PDU ({reason:?})")]
    Rejected {
        /// host:port.
        portal: String,
        /// The rejected PDU's opcode, from the returned header.
        opcode: String,
        /// The Reject reason.
        reason: RejectReason,
    },
    /// Login text from the target does not parse.
    #[error("{portal}: bad text from the target: {source}")]
    Text {
        /// host:port.
        portal: String,
        /// The parser's reason.
        #[source]
        source: TextError,
    },
    /// A login that a test needed as a precondition did not reach full
    /// feature phase.
    #[error("{portal}: login to {target} did not complete: {reason}")]
    Login {
        /// host:port.
        portal: String,
        /// The target IQN (empty for discovery).
        target: String,
        /// The refusal status, or what went wrong.
        reason: String,
    },
    /// A SCSI command a test needed as a precondition failed.
    #[error("{portal}: {what} failed: {reason}")]
    Precondition {
        /// host:port.
        portal: String,
        /// The command or step.
        what: String,
        /// Status and sense, or the reason.
        reason: String,
    },
}

impl ProbeError {
    /// A login that ended in a Login Response status instead of full feature phase.
    pub fn login_status(portal: &str, target: &str, status: LoginStatus) -> Self {
        ProbeError::Login {
            portal: portal.to_owned(),
            target: target.to_owned(),
            reason: status.to_string(),
        }
    }

    /// True when the target closed the connection (or reset it).
    pub fn is_closed(&self) -> bool {
        match self {
            ProbeError::Closed { .. } => true,
            ProbeError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}
