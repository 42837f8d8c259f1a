//! The control socket of `riscsi attach`: one JSON request per connection,
//! one JSON answer, over a unix socket only its owner may open (mode 0600).
//! `riscsi status` and `riscsi path` are its clients.

use std::path::{Path, PathBuf};
use std::time::Duration;

use iscsi_multipath::VolumeStatus;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{CliError, Result};

/// Longest request or answer line.
pub const MAX_LINE: u64 = 1 << 20;
/// How long one exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// The volume and its paths.
    Status,
    /// multipathd's `fail path` / `reinstate path`, or a login now.
    Path { action: PathAction, portal: String },
    /// I/O back on the main path now (failback manual, or a delay cut short).
    Failback,
}

/// What to do to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PathAction {
    /// Take it out of use until reinstated.
    Fail,
    /// Let the checker use it again.
    Reinstate,
    /// Log in again now.
    Reconnect,
}

/// The answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The volume and every path.
    pub volume: VolumeStatus,
    /// The NBD URI clients connect to.
    pub uri: String,
    /// NBD clients connected now.
    pub nbd_clients: usize,
}

/// Every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// The status.
    Status(Box<Status>),
    /// Done.
    Ok { ok: bool },
    /// Refused, and why.
    Error { error: String },
}

/// Where `riscsi attach` keeps its sockets: `$RISCSI_RUN_DIR`, else
/// `/run/riscsi` for root, else `$XDG_RUNTIME_DIR/riscsi`, else
/// `/tmp/riscsi-UID`.
pub fn run_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RISCSI_RUN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/riscsi");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("riscsi"),
        None => PathBuf::from(format!("/tmp/riscsi-{uid}")),
    }
}

/// Creates the run directory, private to its owner.
pub fn make_run_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CliError::file("cannot create", dir, e))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// The control socket to talk to: the one given, else the only one in the
/// run directory.
pub fn find_control(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let dir = run_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "control"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.len() {
        0 => Err(CliError::usage(format!(
            "no riscsi attach is running (no control socket in {}); give --control PATH",
            dir.display()
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(CliError::usage(format!(
            "several riscsi attach are running; pick one with --control: {}",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Sends one request and reads the answer.
pub async fn ask(control: &Path, request: &Request) -> Result<Answer> {
    let exchange = async {
        let mut stream = UnixStream::connect(control).await.map_err(|e| {
            CliError::file("cannot reach riscsi attach's control socket", control, e)
        })?;
        let mut line =
            serde_json::to_vec(request).map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|e| CliError::file("cannot write to", control, e))?;
        let mut answer = String::new();
        BufReader::new(stream)
            .take(MAX_LINE)
            .read_line(&mut answer)
            .await
            .map_err(|e| CliError::file("cannot read from", control, e))?;
        serde_json::from_str::<Answer>(&answer).map_err(|e| {
            CliError::Internal(format!("unreadable answer from {}: {e}", control.display()))
        })
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
        CliError::Internal(format!(
            "{} did not answer within {TIMEOUT:?}",
            control.display()
        ))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        let r = Request::Path {
            action: PathAction::Fail,
            portal: "[::1]:3260".into(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"op":"path","action":"fail","portal":"[::1]:3260"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"status"}"#).unwrap(),
            Request::Status
        );
        let e: Answer = serde_json::from_str(r#"{"error":"no such path"}"#).unwrap();
        assert_eq!(
            e,
            Answer::Error {
                error: "no such path".into()
            }
        );
    }
}
