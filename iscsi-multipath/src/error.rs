//! What a multipath volume's operations fail with.

use std::time::Duration;

use iscsi_session::BlockError;

use crate::connection_info::ConnectionInfoError;

/// A volume error: one line naming the volume, and for a path's error the
/// path's own context (portal, target, LUN, ITT, opcode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// A final answer from a path (MEDIUM ERROR, ILLEGAL REQUEST, DATA
    /// PROTECT, RESERVATION CONFLICT...), or a bad answer: retrying it on
    /// another path cannot help.
    #[error(transparent)]
    Path(#[from] iscsi_session::Error),
    /// No path carried I/O for longer than `no_path_retry` allows.
    #[error("{volume}: no usable path for {waited:?} (no_path_retry {limit}): {paths}")]
    NoPath {
        /// The volume.
        volume: String,
        /// How long I/O waited.
        waited: Duration,
        /// The `no_path_retry` setting.
        limit: String,
        /// Each path and why it is not usable.
        paths: String,
    },
    /// The command kept failing with path errors on paths that are up: the
    /// command, not the paths, is the likely problem.
    #[error("{volume}: failed on {attempts} path attempts, last: {last}")]
    AttemptsExhausted {
        /// The volume.
        volume: String,
        /// Path attempts made.
        attempts: u32,
        /// The last path's error.
        last: Box<iscsi_session::Error>,
    },
    /// No path could be opened at attach. With one path, its reason alone
    /// (it names the portal and target); with several, each one's.
    #[error("{detail}")]
    OpenFailed {
        /// The volume.
        volume: String,
        /// The one-line explanation.
        detail: String,
    },
    /// The volume was closed.
    #[error("{volume}: closed")]
    Closed {
        /// The volume.
        volume: String,
    },
    /// The connection_info given to open the volume is unusable.
    #[error(transparent)]
    ConnectionInfo(#[from] ConnectionInfoError),
    /// The options cannot work.
    #[error("invalid volume option: {0}")]
    Options(String),
}

impl BlockError for VolumeError {
    fn session_error(&self) -> Option<&iscsi_session::Error> {
        match self {
            VolumeError::Path(e) => Some(e),
            VolumeError::AttemptsExhausted { last, .. } => Some(last),
            _ => None,
        }
    }
}
