//! `Attach`: a running `riscsi attach` serving a fixture's volume over NBD,
//! in a run directory of its own, with the URI it printed, its control
//! socket, and a `stop()` that checks the clean exit a user relies on.
//!
//! The `riscsi` binary is the workspace's own build: `$RISCSI_BIN` when set,
//! else `riscsi` next to the test executable's `deps/` directory (what
//! `cargo test --workspace` builds, or `cargo build [--release] -p
//! riscsi-tools` for a run of this crate alone).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use crate::command::{ToolCommand, wait_until};
use crate::connection_info::write_private;
use crate::error::{FixtureError, Result};
use crate::spawn::spawn_tied;
use crate::temp::temp_dir;

/// The initiator name every attach uses (tgtd fixtures accept any).
pub const ATTACH_INITIATOR: &str = "iqn.2026-11.io.riscsi.test:attach";

/// Login to every path and the first line on stdout.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// From SIGINT to exit: shorter than attach's own 30 s drain, so a client
/// that keeps the server from draining fails the test instead of passing late.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// One `riscsi status` or `riscsi path` run.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment the tool reads that must not leak in from the test's own.
const SCRUBBED_ENV: &[&str] = &[
    "RISCSI_CHAP_SECRET",
    "RISCSI_TARGET_SECRET",
    "RISCSI_STATE_DIR",
    "RISCSI_RUN_DIR",
    "RISCSI_OPEN_ISCSI_FILE",
];

/// The workspace's `riscsi` binary.
pub fn riscsi_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("RISCSI_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| FixtureError::io("cannot find the test executable", e))?;
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/riscsi
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("riscsi"));
    match candidate {
        Some(path) if path.is_file() => Ok(path),
        other => Err(FixtureError::io(
            format!(
                "no riscsi binary at {}: build it (`cargo build -p riscsi-tools`, \
                 --release for release tests) or set RISCSI_BIN",
                other.unwrap_or_default().display()
            ),
            std::io::ErrorKind::NotFound.into(),
        )),
    }
}

/// A running `riscsi attach`; killed on drop (use [`Attach::stop`] for the
/// clean stop).
#[derive(Debug)]
pub struct Attach {
    child: Option<Child>,
    binary: PathBuf,
    uri: String,
    control: PathBuf,
    nbd_socket: Option<PathBuf>,
    stdout_rest: Option<JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    run_dir: PathBuf,
    /// The run directory, when this fixture made it (removed on drop).
    _own_run_dir: Option<TempDir>,
}

impl Attach {
    /// `riscsi attach @FILE` of the connection_info `info` (written to the
    /// run directory), then `args` (`--export NAME`, `--nbd-listen ..`).
    pub fn start(info: &Value, args: &[&str]) -> Result<Attach> {
        Self::start_env(info, args, &[])
    }

    /// [`Attach::start`] with `env` set for the process (`RUST_LOG`, a
    /// secret variable).
    pub fn start_env(info: &Value, args: &[&str], env: &[(&str, &str)]) -> Result<Attach> {
        let run_dir = temp_dir("attach")?;
        let file = run_dir.path().join("connection_info.json");
        write_private(&file, info.to_string().as_bytes())?;
        let volume = format!("@{}", file.display());
        Self::spawn(run_dir.path().to_owned(), Some(run_dir), &volume, args, env)
    }

    /// `riscsi attach VOLUME ARGS` (VOLUME an iscsi:// URL or @FILE).
    pub fn start_volume(volume: &str, args: &[&str]) -> Result<Attach> {
        Self::start_volume_env(volume, args, &[])
    }

    /// [`Attach::start_volume`] with `env` set for the process.
    pub fn start_volume_env(volume: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Attach> {
        let run_dir = temp_dir("attach")?;
        Self::spawn(run_dir.path().to_owned(), Some(run_dir), volume, args, env)
    }

    /// `riscsi attach VOLUME ARGS` with its sockets in `run_dir`, which the
    /// caller owns (and may share with `riscsi status` runs of its own).
    pub fn start_in(run_dir: &Path, volume: &str, args: &[&str]) -> Result<Attach> {
        Self::spawn(run_dir.to_owned(), None, volume, args, &[])
    }

    fn spawn(
        run_dir: PathBuf,
        own_run_dir: Option<TempDir>,
        volume: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Attach> {
        let binary = riscsi_binary()?;
        let mut command = Command::new(&binary);
        command
            .args(["attach", "--initiator-name", ATTACH_INITIATOR, volume])
            .args(args);
        for key in SCRUBBED_ENV {
            command.env_remove(key);
        }
        command.envs(env.iter().copied());
        command
            .env("RISCSI_RUN_DIR", &run_dir)
            .env("RISCSI_STATE_DIR", run_dir.join("state"))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(command)
            .map_err(|e| FixtureError::io(format!("cannot run {}", binary.display()), e))?;
        let pid = child.id();

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_thread = child.stderr.take().map(|mut pipe| {
            let sink = stderr.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .expect("stderr buffer")
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        // The first line is the URI; whatever follows is kept to prove there
        // is nothing else.
        let (line_tx, line_rx) = channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdout_rest = thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = line_tx.send(line);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            rest
        });

        let mut attach = Attach {
            child: Some(child),
            binary,
            uri: String::new(),
            control: run_dir.join(format!("attach-{pid}.control")),
            nbd_socket: None,
            stdout_rest: Some(stdout_rest),
            stderr,
            stderr_thread,
            run_dir,
            _own_run_dir: own_run_dir,
        };
        let line = match line_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.ends_with('\n') => line,
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                let status = attach.wait_exit(Duration::from_secs(5));
                return Err(attach.failure(format!(
                    "exited ({}) before printing its URI",
                    describe(status)
                )));
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(attach.failure(format!("printed no URI within {START_TIMEOUT:?}")));
            }
        };
        attach.uri = line.trim_end().to_owned();
        attach.nbd_socket = attach
            .uri
            .split_once("?socket=")
            .map(|(_, path)| PathBuf::from(OsString::from_vec(percent_decode(path))));
        Ok(attach)
    }

    /// The NBD URI it printed.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Its NBD unix socket, unless it serves TCP.
    pub fn nbd_socket(&self) -> Option<&Path> {
        self.nbd_socket.as_deref()
    }

    /// Its control socket.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// Its run directory (`RISCSI_RUN_DIR`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer")).into_owned()
    }

    /// `riscsi status --control PATH --json`, parsed.
    pub fn status(&self) -> Result<Value> {
        let out = self
            .control_command(&["status", "--json"])
            .run_ok(CONTROL_TIMEOUT)?;
        serde_json::from_str(&out.stdout).map_err(|e| FixtureError::UnexpectedOutput {
            tool: "riscsi status".into(),
            detail: format!("{e}: {}", out.stdout),
        })
    }

    /// `riscsi path ACTION PORTAL --control PATH` (`fail`, `reinstate`, `reconnect`).
    pub fn path(&self, action: &str, portal: &str) -> Result<()> {
        self.control_command(&["path", action, portal])
            .run_ok(CONTROL_TIMEOUT)
            .map(drop)
    }

    /// Polls `status` until `condition` holds; the last status on timeout.
    pub fn wait_status(
        &self,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> std::result::Result<Value, Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .status()
                .unwrap_or_else(|e| Value::String(e.to_string()));
            if condition(&status) {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn control_command(&self, args: &[&str]) -> ToolCommand {
        let mut command = ToolCommand::at(&self.binary, "riscsi").args(args.iter().copied());
        command = command
            .arg("--control")
            .arg(self.control.display().to_string());
        command.env("RISCSI_RUN_DIR", self.run_dir.display().to_string())
    }

    /// Sends `signal` to the process (e.g. a second SIGINT while draining).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        // Never pid 0 (our own process group) once the child is reaped.
        let Some(child) = &self.child else {
            return Err(self.failure("signalled after it exited".into()));
        };
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, signal).map_err(|e| FixtureError::io("cannot signal riscsi attach", e.into()))
    }

    /// The clean stop: SIGINT, then exit status 0 within the deadline, no
    /// second line on stdout, and the control and NBD sockets removed.
    /// Returns what it logged.
    pub fn stop(self) -> Result<String> {
        self.stop_with(Signal::SIGINT)
    }

    /// [`Attach::stop`] with another signal (SIGTERM, as systemd sends).
    pub fn stop_with(mut self, signal: Signal) -> Result<String> {
        self.signal(signal)?;
        let status = self.wait_exit(STOP_TIMEOUT);
        match status {
            Some(s) if s.success() => {}
            other => {
                return Err(self.failure(format!(
                    "after {signal}: {} (expected exit 0 within {STOP_TIMEOUT:?})",
                    describe(other)
                )));
            }
        }
        let rest = self
            .stdout_rest
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if !rest.is_empty() {
            return Err(self.failure(format!(
                "printed more than its URI on stdout: {:?}",
                String::from_utf8_lossy(&rest)
            )));
        }
        let left: Vec<&Path> = std::iter::once(self.control.as_path())
            .chain(self.nbd_socket.as_deref())
            .filter(|p| p.exists())
            .collect();
        if !left.is_empty() {
            return Err(self.failure(format!("left its sockets behind: {left:?}")));
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        Ok(self.stderr())
    }

    /// Waits for the exit (reaping it); `None` if it is still running.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_until(child, Instant::now() + timeout).ok().flatten();
        if status.is_some() {
            self.child = None;
        }
        status
    }

    fn failure(&self, detail: String) -> FixtureError {
        FixtureError::UnexpectedOutput {
            tool: "riscsi attach".into(),
            detail: format!("{detail}; its stderr:\n{}", self.stderr()),
        }
    }
}

/// `%XX` escapes decoded (the URI's socket path is percent-encoded).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "still running".into(), |s| s.to_string())
}

impl Drop for Attach {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_are_percent_decoded() {
        assert_eq!(percent_decode("/tmp/a%20b%25c"), b"/tmp/a b%c");
        assert_eq!(percent_decode("/x%zz%4"), b"/x%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é".as_bytes());
    }
}
