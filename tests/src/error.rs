//! The one error type of the support library.

use std::io;
use std::time::Duration;

/// Why a fixture, a tool run or a proxy could not do its job.
///
/// Every variant names what was attempted, so a failing test says which binary or
/// command broke and what it printed. Commands carrying CHAP secrets are rendered with
/// the secrets replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A binary the test needs is not on this machine.
    #[error("{tool} not found: install package {package}, ./scripts/test does it")]
    MissingTool {
        /// Name of the binary, e.g. `tgtd`.
        tool: String,
        /// Debian package providing it.
        package: String,
    },

    /// A command ran and reported failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, secrets redacted.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (and stdout when stderr was empty).
        stderr: String,
    },

    /// A command did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?}")]
    CommandTimedOut {
        /// The command line, secrets redacted.
        command: String,
        /// The deadline it missed.
        timeout: Duration,
    },

    /// A daemon exited while it was being started.
    #[error("{daemon} exited during startup ({status}); its log:\n{log}")]
    DaemonExited {
        /// Which daemon (`tgtd`, `istgt`).
        daemon: &'static str,
        /// Its exit status.
        status: String,
        /// The tail of its stdout/stderr.
        log: String,
    },

    /// A daemon kept running but never became ready.
    #[error("{daemon} not ready within {timeout:?}: {detail}; its log:\n{log}")]
    DaemonNotReady {
        /// Which daemon.
        daemon: &'static str,
        /// How long we waited.
        timeout: Duration,
        /// What was still missing.
        detail: String,
        /// The tail of its stdout/stderr.
        log: String,
    },

    /// Every start attempt collided with something (ports, control socket).
    #[error("{daemon} could not start after {attempts} attempts; last failure: {last}")]
    StartRetriesExhausted {
        /// Which daemon.
        daemon: &'static str,
        /// How many attempts were made.
        attempts: usize,
        /// The last attempt's failure.
        last: Box<FixtureError>,
    },

    /// The builder was asked for something the daemon cannot do.
    #[error("invalid fixture configuration: {0}")]
    InvalidConfig(String),

    /// A tool's output did not look the way it should.
    #[error("unexpected output from {tool}: {detail}")]
    UnexpectedOutput {
        /// Which tool.
        tool: String,
        /// What was wrong with it.
        detail: String,
    },

    /// A guest kernel run did not get its script's exit status back (timeout,
    /// panic, failed setup), or the script failed where success was required.
    #[error("guest {problem}; its console:\n{console}")]
    Guest {
        /// What went wrong.
        problem: String,
        /// The tail of the serial console (and qemu's stderr).
        console: String,
    },

    /// A network namespace or one of its links could not be set up or driven
    /// (not root, a netfilter queue that would not bind...).
    #[error("network namespace {name}: {problem}")]
    Netns {
        /// The namespace's name.
        name: String,
        /// What failed, and why.
        problem: String,
    },

    /// An I/O operation of the fixture itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What the fixture was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl FixtureError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        FixtureError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias of the support library.
pub type Result<T, E = FixtureError> = std::result::Result<T, E>;
