//! Session errors. Every variant names the path (portal and target) and, for
//! a command, the LUN, the ITT and the SCSI opcode, so that one log line says
//! which exchange failed where. No variant can carry a CHAP secret.
//!
//! Two layers: [`TaskFailure`] says why one iSCSI task ended without a SCSI
//! status (iscsi-proto's `scsi::CommandFailure` is the SCSI-level view the
//! failure classification works on); [`Error`] is what a caller gets, with
//! its context.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, LoginStatus, Lun, RejectReason};
use iscsi_proto::scsi::FailureClass;

use crate::core::config::ConfigError;
use crate::core::portal::Portal;

/// Which path an error happened on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathContext {
    /// The portal connected to.
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

/// Why one SCSI task ended without a SCSI status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskFailure {
    /// No answer within the command timeout; the task was aborted.
    Timeout(Duration),
    /// The connection failed before the command completed. `sent` tells
    /// whether the command had been queued for the target (so it may have
    /// been executed) or was still waiting for the CmdSN window.
    ConnectionLost {
        /// What happened to the connection.
        reason: String,
        /// Whether the command PDU had been queued for the target.
        sent: bool,
    },
    /// There was no connection to send it on and the session does not hold
    /// commands while it reconnects ([`crate::Recovery::HandBack`]), or the
    /// replacement timeout passed first. Never sent.
    NotConnected(String),
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
    Cancelled {
        /// Whether the command PDU had been queued for the target.
        sent: bool,
    },
}

impl TaskFailure {
    /// Whether the target may have seen (and executed) the command.
    pub fn delivery(&self) -> Delivery {
        match self {
            TaskFailure::NotConnected(_)
            | TaskFailure::ConnectionLost { sent: false, .. }
            | TaskFailure::Cancelled { sent: false } => Delivery::NotSent,
            _ => Delivery::Sent,
        }
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFailure::Timeout(d) => write!(f, "timed out after {d:?}"),
            TaskFailure::ConnectionLost { reason, sent: true } => {
                write!(f, "connection lost after the command was sent: {reason}")
            }
            TaskFailure::ConnectionLost {
                reason,
                sent: false,
            } => {
                write!(f, "connection lost before the command was sent: {reason}")
            }
            TaskFailure::NotConnected(why) => write!(f, "not sent: {why}"),
            TaskFailure::Rejected(r) => write!(f, "rejected by the target ({r:?})"),
            TaskFailure::TargetFailure(code) => {
                write!(f, "target failure (iSCSI response {code:#04x})")
            }
            TaskFailure::Protocol(why) => write!(f, "protocol violation: {why}"),
            TaskFailure::Reset => f.write_str("terminated by a logical unit reset"),
            TaskFailure::Cancelled { .. } => f.write_str("cancelled: session closed"),
        }
    }
}

/// Whether a failed command reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// It never left this initiator: sending it elsewhere cannot duplicate it.
    NotSent,
    /// It was sent (or queued to be) and may have been executed.
    Sent,
}

/// Everything that can go wrong in a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// [`crate::SessionConfig::validate`] refused the configuration: nothing
    /// was sent.
    #[error("invalid configuration for {ctx}: {source}")]
    Config {
        /// The path the configuration was for.
        ctx: PathContext,
        /// What is wrong with it.
        source: ConfigError,
    },
    /// The TCP connection could not be made, or it ended before the login
    /// did.
    #[error("cannot connect to {ctx}: {reason}")]
    Connect {
        /// The portal tried (after redirects, the one redirected to).
        ctx: PathContext,
        /// The socket error, or why the connection ended.
        reason: String,
    },
    /// The target ended the login with a failure status (RFC 7143 §11.13.5)
    /// that is neither a CHAP refusal nor an authentication failure.
    #[error("login to {ctx} refused: {status}")]
    LoginRejected {
        /// The path logged in to.
        ctx: PathContext,
        /// Status-Class and Status-Detail of the Login Response.
        status: LoginStatus,
    },
    /// CHAP failed: the target refused our response, or it sent a malformed
    /// challenge, or (mutual CHAP) its own response did not check out.
    #[error("CHAP authentication with {ctx} failed: {reason}")]
    Authentication {
        /// The path logged in to.
        ctx: PathContext,
        /// What failed; never a secret.
        reason: String,
    },
    /// The first bytes the peer sent during login were not a Login
    /// Response: an HTTP server, a proxy or some other service listens
    /// there. `sent` is their start, quoted and escaped for a terminal.
    #[error("login to {ctx}: the peer does not speak iSCSI: it sent {sent}")]
    NotIscsi {
        /// The path logged in to.
        ctx: PathContext,
        /// The first bytes it sent, quoted and escaped.
        sent: String,
    },
    /// The target picked no CHAP_A algorithm we offered, or refused the
    /// login right after our algorithm list or a non-MD5 answer (how targets
    /// that do not know an algorithm, or number SHA-1 as 7, react). When the
    /// configuration allows MD5 among others, the login is tried once more
    /// with MD5 alone before this error surfaces.
    #[error("login to {ctx}: the target refused CHAP with algorithms {offered}{}", status_suffix(.status))]
    ChapAlgorithmRejected {
        /// The path logged in to.
        ctx: PathContext,
        /// The CHAP_A list we offered, by name.
        offered: String,
        /// The Login Response status, when the refusal was one; `None` when
        /// the target answered with an algorithm we did not offer.
        status: Option<LoginStatus>,
    },
    /// Operational negotiation (RFC 7143 §13) ended in values we cannot run
    /// with: ErrorRecoveryLevel above 0, CRC32C refused where it is required,
    /// an invalid key or value, an answer outside our offer, or a `Reject`,
    /// `Irrelevant` or `NotUnderstood` answer to a key both sides must agree
    /// on (the digests, the burst and R2T keys): the reason names the key,
    /// our offer and the target's answer.
    #[error("login negotiation with {ctx} failed: {reason}")]
    Negotiation {
        /// The path logged in to.
        ctx: PathContext,
        /// The key and what was wrong with it.
        reason: String,
    },
    /// The target redirected the login more than
    /// [`crate::SessionConfig::max_redirects`] times.
    #[error("login to {ctx}: too many redirects (last to {last})")]
    TooManyRedirects {
        /// The portal of the last login attempted.
        ctx: PathContext,
        /// Where the target redirected that last attempt to.
        last: Portal,
    },
    /// The connection broke the protocol: a PDU that cannot be decoded or
    /// has no place in this phase, a Reject of one of our PDUs, an
    /// inconsistent answer to a task. The connection is dropped.
    #[error("{ctx}: protocol error: {reason}")]
    Protocol {
        /// The path it happened on.
        ctx: PathContext,
        /// What the target did wrong.
        reason: String,
    },
    /// The connection failed in full feature phase (socket error, the target
    /// closed it).
    #[error("{ctx}: connection lost: {reason}")]
    ConnectionLost {
        /// The path it happened on.
        ctx: PathContext,
        /// The socket error or how the connection ended.
        reason: String,
    },
    /// A session-level wait ran out: login, logout, a NOP-Out ping or a task
    /// management request (a command's own timeout is a
    /// [`TaskFailure::Timeout`] in [`Error::Command`]).
    #[error("{ctx}: {what} timed out after {after:?}")]
    Timeout {
        /// The path it happened on.
        ctx: PathContext,
        /// The exchange that timed out: "login", "logout", "NOP-Out ping",
        /// "task management".
        what: &'static str,
        /// The timeout that ran out ([`crate::Timeouts`]).
        after: Duration,
    },
    /// A SCSI command ended without a SCSI status.
    #[error("{ctx} LUN {lun}: SCSI opcode {opcode:#04x} (ITT {itt}) {failure}")]
    Command {
        /// The path it was sent on.
        ctx: PathContext,
        /// The LUN it was addressed to.
        lun: Lun,
        /// Its Initiator Task Tag, to match the target's logs.
        itt: Itt,
        /// The CDB's operation code.
        opcode: u8,
        /// Why it ended, and whether it reached the target.
        failure: TaskFailure,
    },
    /// A SCSI command completed, but not successfully: a status other than
    /// GOOD or CONDITION MET, short of a CHECK CONDITION reporting a
    /// recovered error (SAM-5 §5.3). This is the block API's view;
    /// `Session::execute` returns the same completion as an `Ok` outcome.
    #[error("{ctx} LUN {lun}: SCSI opcode {opcode:#04x} (ITT {itt}) returned status {status:#04x}{}", sense_suffix(.sense))]
    Scsi {
        /// The path it ran on.
        ctx: PathContext,
        /// The LUN it was addressed to.
        lun: Lun,
        /// Its Initiator Task Tag.
        itt: Itt,
        /// The CDB's operation code.
        opcode: u8,
        /// The SCSI status byte ([`crate::core::command::status`]).
        status: u8,
        /// Sense data for a CHECK CONDITION, without the SenseLength prefix.
        sense: Option<Bytes>,
    },
    /// The same-path retries of [`crate::RetryPolicy`] are spent: the
    /// condition is the path's, so a multipath caller should try another.
    #[error("{last} (still after {attempts} attempts on this path)")]
    RetriesExhausted {
        /// Attempts made, the first included.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<Error>,
    },
    /// An answer that makes no sense to the layer that asked: a short read,
    /// unparsable INQUIRY or SendTargets data, a request out of range (such
    /// as an unaddressable LUN or blocks past the end of the LU).
    #[error("{ctx}: unexpected answer: {reason}")]
    BadResponse {
        /// The path it happened on.
        ctx: PathContext,
        /// What was wrong.
        reason: String,
    },
    /// The session is logged out or going down, so the request was not
    /// served ([`Delivery::NotSent`] for a command).
    #[error("{ctx}: session closed")]
    Closed {
        /// The path of the session.
        ctx: PathContext,
    },
    /// Logins stopped after a failure retrying cannot fix (wrong CHAP
    /// secret, no such target, not authorized); `reconnect_now` tries again.
    #[error("{cause}; logins stopped")]
    LoginGaveUp {
        /// The path of the session.
        ctx: PathContext,
        /// The login failure that stopped the retries.
        cause: Box<Error>,
    },
    /// Logins worked, but the connection after each failed the same way
    /// before any command completed (the two sides framing PDUs or reading a
    /// key differently, say): reconnecting stopped instead of replaying the
    /// same commands in a loop until the replacement timeout.
    /// `reconnect_now` tries again.
    #[error(
        "{cause} (the same failure ended each of the last {count} connections before any command completed); reconnects stopped"
    )]
    RepeatedFailure {
        /// The path of the session.
        ctx: PathContext,
        /// Identical losses in a row.
        count: u32,
        /// The last of them.
        cause: Box<Error>,
    },
}

/// Longest quotation of a peer's bytes in an error, escapes included.
const QUOTE_LIMIT: usize = 40;

/// The start of what a peer sent, for an error line: its first line (a
/// text protocol's status line says most), control and non-ASCII bytes
/// escaped so that nothing reaches a terminal raw, cut at about
/// [`QUOTE_LIMIT`] characters, in double quotes.
pub(crate) fn quote_peer_bytes(bytes: &[u8]) -> String {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .filter(|&at| at > 0);
    let shown = &bytes[..line_end.unwrap_or(bytes.len())];
    let mut out = String::from("\"");
    let mut cut = false;
    for &b in shown {
        let piece = match b {
            b'"' => "\\\"".to_owned(),
            b'\\' => "\\\\".to_owned(),
            b'\r' => "\\r".to_owned(),
            b'\n' => "\\n".to_owned(),
            b'\t' => "\\t".to_owned(),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        };
        if out.len() - 1 + piece.len() > QUOTE_LIMIT {
            cut = true;
            break;
        }
        out.push_str(&piece);
    }
    out.push('"');
    if cut {
        out.push_str("...");
    }
    out
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
            | Error::NotIscsi { ctx, .. }
            | Error::ChapAlgorithmRejected { ctx, .. }
            | Error::Negotiation { ctx, .. }
            | Error::TooManyRedirects { ctx, .. }
            | Error::Protocol { ctx, .. }
            | Error::ConnectionLost { ctx, .. }
            | Error::Timeout { ctx, .. }
            | Error::Command { ctx, .. }
            | Error::Scsi { ctx, .. }
            | Error::BadResponse { ctx, .. }
            | Error::LoginGaveUp { ctx, .. }
            | Error::RepeatedFailure { ctx, .. }
            | Error::Closed { ctx } => ctx,
            Error::RetriesExhausted { last, .. } => last.context(),
        }
    }

    /// For a failed command: whether it may have reached the target. `None`
    /// for errors that are not about one command.
    pub fn delivery(&self) -> Option<Delivery> {
        match self {
            Error::Command { failure, .. } => Some(failure.delivery()),
            Error::Scsi { .. } => Some(Delivery::Sent),
            Error::RetriesExhausted { last, .. } => last.delivery(),
            Error::Closed { .. } => Some(Delivery::NotSent),
            _ => None,
        }
    }

    /// What to do about this error, by the rule dm-multipath applies: retry on
    /// the same path, try another path, or give up.
    pub fn failure_class(&self) -> FailureClass {
        use iscsi_proto::scsi::{
            CommandFailure as ScsiFailure, ScsiStatus, Sense, TransportFailure,
        };
        let scsi = match self {
            Error::Scsi { status, sense, .. } => ScsiFailure::Status {
                status: ScsiStatus::from_code(*status),
                sense: sense.as_deref().and_then(|s| Sense::parse(s).ok()),
            },
            Error::Command { failure, .. } => match failure {
                TaskFailure::Timeout(_) => ScsiFailure::Timeout,
                TaskFailure::ConnectionLost { .. }
                | TaskFailure::NotConnected(_)
                | TaskFailure::Protocol(_) => {
                    ScsiFailure::Transport(TransportFailure::ConnectionLost)
                }
                TaskFailure::TargetFailure(_) => {
                    ScsiFailure::Transport(TransportFailure::TargetFailure)
                }
                TaskFailure::Rejected(_) => {
                    ScsiFailure::Transport(TransportFailure::SessionFailure)
                }
                // Ended by a reset aimed at another task: nothing wrong with it.
                TaskFailure::Reset => return FailureClass::RetrySamePath,
                TaskFailure::Cancelled { .. } => return FailureClass::Final,
            },
            // The condition outlasted the same-path budget: the path is suspect.
            Error::RetriesExhausted { .. } => return FailureClass::TryOtherPath,
            Error::Config { .. } | Error::BadResponse { .. } => return FailureClass::Final,
            _ => ScsiFailure::Transport(TransportFailure::SessionFailure),
        };
        iscsi_proto::scsi::classify(&scsi)
    }

    /// The sense data of a command that ended with CHECK CONDITION.
    pub fn sense(&self) -> Option<iscsi_proto::scsi::Sense> {
        match self {
            Error::Scsi {
                sense: Some(sense), ..
            } => iscsi_proto::scsi::Sense::parse(sense).ok(),
            Error::RetriesExhausted { last, .. } => last.sense(),
            _ => None,
        }
    }

    /// A CHECK CONDITION with sense key ILLEGAL REQUEST: the target does
    /// not support what the command asked for.
    pub fn is_illegal_request(&self) -> bool {
        self.sense()
            .is_some_and(|s| s.key == iscsi_proto::scsi::SenseKey::IllegalRequest)
    }

    /// ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED (25h/00h): no such LUN.
    pub fn is_lun_missing(&self) -> bool {
        self.sense().is_some_and(|s| {
            s.key == iscsi_proto::scsi::SenseKey::IllegalRequest && s.asc == 0x25 && s.ascq == 0
        })
    }

    /// True when retrying the login later cannot help (bad credentials, no
    /// such target): a reconnect loop should stop and report.
    pub fn is_permanent_login_failure(&self) -> bool {
        match self {
            Error::LoginRejected { status, .. } => status.is_initiator_error(),
            Error::Authentication { .. }
            | Error::NotIscsi { .. }
            | Error::Config { .. }
            | Error::Negotiation { .. }
            | Error::LoginGaveUp { .. }
            | Error::RepeatedFailure { .. } => true,
            _ => false,
        }
    }

    /// The target answered "target not found" or "target removed". Right
    /// after a target restarts, its portals listen before its targets are
    /// configured again: for a session that worked before, this is worth
    /// retrying (slowly), unlike bad credentials.
    pub fn is_target_missing(&self) -> bool {
        matches!(self, Error::LoginRejected { status, .. }
            if status.is_initiator_error() && matches!(status.detail, 3 | 4))
    }
}

#[cfg(test)]
mod tests {
    use super::quote_peer_bytes;

    #[test]
    fn peer_bytes_are_quoted_escaped_and_cut() {
        assert_eq!(quote_peer_bytes(b""), r#""""#);
        assert_eq!(
            quote_peer_bytes(b"SSH-2.0-OpenSSH_9.6\r\n"),
            r#""SSH-2.0-OpenSSH_9.6""#
        );
        // A leading line end is shown, not taken for an empty first line.
        assert_eq!(quote_peer_bytes(b"\r\nx"), r#""\r\nx""#);
        assert_eq!(
            quote_peer_bytes(b"a\"b\\c\td\x1b[31m"),
            r#""a\"b\\c\td\x1b[31m""#
        );
        assert_eq!(quote_peer_bytes("é".as_bytes()), r#""\xc3\xa9""#);
        let long = quote_peer_bytes(&[b'x'; 100]);
        assert_eq!(long, format!("\"{}\"...", "x".repeat(40)));
        // An escape is never cut in half.
        let mixed = quote_peer_bytes(&[0xff; 20]);
        assert_eq!(mixed, format!("\"{}\"...", r"\xff".repeat(10)));
    }
}
