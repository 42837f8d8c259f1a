//! Running a short-lived tool (tgtadm, iscsi-inq, ...) with a deadline, capturing its
//! output, and never printing the CHAP secrets on its command line.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{FixtureError, Result};
use crate::spawn::spawn_tied;
use crate::tools::require_tool;

/// How often a running child is polled for exit.
const POLL: Duration = Duration::from_millis(5);

/// A command line for an external tool, with the secrets it carries.
#[derive(Clone)]
pub struct ToolCommand {
    program: PathBuf,
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for ToolCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// What a finished tool printed, and how it exited.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl ToolCommand {
    /// A command running `tool`, which must be installed.
    pub fn new(tool: &str) -> Result<Self> {
        Ok(ToolCommand {
            program: require_tool(tool)?,
            name: tool.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
        })
    }

    /// A command running the binary at `program`, one that is not looked up
    /// on `PATH` (e.g. the workspace's own `riscsi`); `name` is how messages
    /// show it.
    pub fn at(program: impl Into<PathBuf>, name: &str) -> Self {
        ToolCommand {
            program: program.into(),
            name: name.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Marks `secret` as something never to show in messages: every occurrence in
    /// the command line or in captured output quoted by errors becomes `***`.
    pub fn redact(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.is_empty() {
            self.secrets.push(secret);
        }
        self
    }

    /// The command line as shown in errors, secrets replaced.
    pub fn display(&self) -> String {
        let line = std::iter::once(self.name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        self.scrub(&line)
    }

    /// Replaces every secret in `text` with `***`.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
    }

    /// The `std::process::Command` equivalent (stdin closed).
    pub fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs the tool to completion and returns its output whatever the exit status;
    /// kills it and fails with [`FixtureError::CommandTimedOut`] past `timeout`.
    pub fn run(&self, timeout: Duration) -> Result<ToolOutput> {
        let mut command = self.to_command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = spawn_tied(command)
            .map_err(|e| FixtureError::io(format!("cannot run `{}`", self.display()), e))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = match wait_until(&mut child, started + timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FixtureError::CommandTimedOut {
                    command: self.display(),
                    timeout,
                });
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FixtureError::io(
                    format!("waiting for `{}`", self.display()),
                    e,
                ));
            }
        };
        Ok(ToolOutput {
            status,
            stdout: join_drain(stdout),
            stderr: join_drain(stderr),
            elapsed: started.elapsed(),
        })
    }

    /// Like [`run`](Self::run), but a non-zero exit is an error quoting stderr.
    pub fn run_ok(&self, timeout: Duration) -> Result<ToolOutput> {
        let output = self.run(timeout)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(self.failure(&output))
        }
    }

    /// The error describing a failed run of this command.
    pub fn failure(&self, output: &ToolOutput) -> FixtureError {
        let text = if output.stderr.trim().is_empty() {
            &output.stdout
        } else {
            &output.stderr
        };
        FixtureError::CommandFailed {
            command: self.display(),
            status: output.status.to_string(),
            stderr: self.scrub(text.trim()),
        }
    }
}

/// Polls `child` until it exits or `deadline` passes (`Ok(None)`).
pub(crate) fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full
/// pipe while we wait for it.
pub(crate) fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    })
}

pub(crate) fn join_drain(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    handle
        .and_then(|h| h.join().ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = ToolCommand::new("sh")
            .unwrap()
            .args(["-c", "echo out; echo err >&2; exit 4"])
            .run(Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(4));
    }

    #[test]
    fn run_ok_turns_failure_into_error_with_stderr() {
        let err = ToolCommand::new("sh")
            .unwrap()
            .args(["-c", "echo broken >&2; exit 1"])
            .run_ok(Duration::from_secs(5))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("broken"), "{text}");
        assert!(text.contains("sh -c"), "{text}");
    }

    #[test]
    fn deadline_kills_a_hanging_tool() {
        let started = Instant::now();
        let err = ToolCommand::new("sleep")
            .unwrap()
            .arg("10")
            .run(Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, FixtureError::CommandTimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let err = ToolCommand::new("sh")
            .unwrap()
            .args([
                "-c",
                "echo 'bad password hunter2' >&2; exit 1",
                "--password",
                "hunter2",
            ])
            .redact("hunter2")
            .run_ok(Duration::from_secs(5))
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("***"), "{text}");
    }

    #[test]
    fn env_reaches_the_child() {
        let out = ToolCommand::new("sh")
            .unwrap()
            .args(["-c", "echo $RISCSI_PROBE"])
            .env("RISCSI_PROBE", "seen")
            .run_ok(Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.stdout.trim(), "seen");
    }
}
