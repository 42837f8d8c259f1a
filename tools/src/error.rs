//! The tool's errors: each one prints as one line that says what failed.

use std::io;
use std::path::{Path, PathBuf};

use iscsi_session::UrlError;

/// Everything a subcommand can fail with. No variant holds a secret: secrets
/// live in [`iscsi_session::Secret`], which has no `Display`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// The target departed from the suite (or from its expected results).
    #[error("conformance: {0}")]
    Conformance(String),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Session(#[from] iscsi_session::Error),
    #[error(transparent)]
    Volume(#[from] iscsi_multipath::VolumeError),
    /// A connection_info document that cannot be used.
    #[error("connection_info from {origin}: {error}")]
    ConnectionInfo {
        origin: String,
        error: iscsi_multipath::ConnectionInfoError,
    },
    /// A local file or stream failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The initiator name could not be found, made or kept.
    #[error("initiator name: {0}")]
    InitiatorName(String),
    /// The input does not fit in the volume (known before anything was written).
    #[error(
        "input {input} is {input_bytes} bytes but the volume has {room_bytes} bytes from offset {offset} ({volume_bytes} bytes in all)"
    )]
    InputTooLarge {
        input: String,
        input_bytes: u64,
        room_bytes: u64,
        offset: u64,
        volume_bytes: u64,
    },
    /// A streamed input went past the end of the volume.
    #[error(
        "input {input} is larger than the {room_bytes} bytes the volume has from offset {offset}; the first {room_bytes} bytes were written"
    )]
    InputOverflow {
        input: String,
        room_bytes: u64,
        offset: u64,
    },
    /// Fewer bytes moved than asked for.
    #[error("short transfer: {done} of {wanted} bytes ({why})")]
    Short { done: u64, wanted: u64, why: String },
    /// A worker task ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    pub fn file(what: &'static str, path: &Path, source: io::Error) -> Self {
        CliError::File {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for CliError {
    fn from(e: tokio::task::JoinError) -> Self {
        CliError::Internal(format!("I/O task failed: {e}"))
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
