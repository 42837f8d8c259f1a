//! A long-running target daemon: spawned tied to the test process, its output in a
//! log file, ready once it listens on every portal, killed and reaped on drop.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{FixtureError, Result};
use crate::proc_net::listening_addrs;
use crate::spawn::spawn_tied;

/// How much of the log an error quotes.
const LOG_TAIL: u64 = 4096;

/// How often startup progress is polled.
const POLL: Duration = Duration::from_millis(10);

/// The outcome of waiting for a daemon to come up.
#[derive(Debug)]
pub(crate) enum Startup {
    /// Listening on every portal.
    Ready,
    /// Lost a race for a port or control socket: worth another attempt.
    Collision(FixtureError),
    /// Broken for a reason retrying will not fix.
    Failed(FixtureError),
}

/// A running daemon we spawned.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `command`, sending its stdout and stderr to `log` (a file, not a
    /// pipe: nobody has to drain it and it survives for the error message).
    pub fn spawn(name: &'static str, mut command: Command, log: &Path) -> Result<Daemon> {
        let context = || format!("cannot start {name}");
        let out = File::create(log).map_err(|e| FixtureError::io(context(), e))?;
        let err = out
            .try_clone()
            .map_err(|e| FixtureError::io(context(), e))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = spawn_tied(command).map_err(|e| FixtureError::io(context(), e))?;
        Ok(Daemon {
            name,
            child,
            log: log.to_owned(),
            exited: None,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last few KiB of what the daemon printed.
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = File::open(&self.log) else {
            return String::from("(no log)");
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
        let mut bytes = Vec::new();
        let _ = file.take(LOG_TAIL).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    fn log_contains_any(&self, markers: &[&str]) -> bool {
        fs::read_to_string(&self.log)
            .map(|text| markers.iter().any(|m| text.contains(m)))
            .unwrap_or(false)
    }

    /// Exit status if the daemon has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits until the daemon listens on every one of `portals`. A log line
    /// containing one of `collision_markers` (or an exit after printing one) means a
    /// port or control socket was taken: [`Startup::Collision`].
    pub fn wait_listening(
        &mut self,
        portals: &[SocketAddr],
        timeout: Duration,
        collision_markers: &[&str],
    ) -> Startup {
        let deadline = Instant::now() + timeout;
        let wanted: HashSet<SocketAddr> = portals.iter().copied().collect();
        loop {
            if let Some(status) = self.try_exit() {
                let error = FixtureError::DaemonExited {
                    daemon: self.name,
                    status: status.to_string(),
                    log: self.log_tail(),
                };
                return if self.log_contains_any(collision_markers) {
                    Startup::Collision(error)
                } else {
                    Startup::Failed(error)
                };
            }
            if self.log_contains_any(collision_markers) {
                return Startup::Collision(FixtureError::DaemonNotReady {
                    daemon: self.name,
                    timeout,
                    detail: "a portal or control socket was taken".into(),
                    log: self.log_tail(),
                });
            }
            // An error means the daemon is exiting right now; the next turn reports it.
            let listening = listening_addrs(self.pid()).unwrap_or_default();
            if wanted.is_subset(&listening) {
                return Startup::Ready;
            }
            if Instant::now() >= deadline {
                let mut missing: Vec<String> = wanted
                    .difference(&listening)
                    .map(ToString::to_string)
                    .collect();
                missing.sort();
                return Startup::Failed(FixtureError::DaemonNotReady {
                    daemon: self.name,
                    timeout,
                    detail: format!("not listening on {}", missing.join(", ")),
                    log: self.log_tail(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `grace` for the daemon to exit on its own, then SIGKILLs it, and
    /// reaps it in both cases. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.try_exit().is_none() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temp::temp_dir;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn exit_during_startup_quotes_the_log() {
        let dir = temp_dir("daemon-unit").unwrap();
        let mut d = Daemon::spawn(
            "fake",
            sh("echo dying loudly; exit 7"),
            &dir.path().join("log"),
        )
        .unwrap();
        let portal: SocketAddr = "127.0.0.1:1".parse().unwrap();
        match d.wait_listening(&[portal], Duration::from_secs(5), &["taken"]) {
            Startup::Failed(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("dying loudly") && text.contains("fake"),
                    "{text}"
                );
            }
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn collision_marker_is_recognised() {
        let dir = temp_dir("daemon-unit").unwrap();
        let mut d = Daemon::spawn(
            "fake",
            sh("echo port taken; sleep 30"),
            &dir.path().join("log"),
        )
        .unwrap();
        let portal: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            d.wait_listening(&[portal], Duration::from_secs(5), &["port taken"]),
            Startup::Collision(_)
        ));
        let pid = d.pid();
        drop(d);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "not reaped");
    }

    #[test]
    fn not_listening_times_out_naming_the_portal() {
        let dir = temp_dir("daemon-unit").unwrap();
        let mut d = Daemon::spawn("fake", sh("sleep 30"), &dir.path().join("log")).unwrap();
        let portal: SocketAddr = "127.0.0.1:1".parse().unwrap();
        match d.wait_listening(&[portal], Duration::from_millis(100), &[]) {
            Startup::Failed(e) => assert!(e.to_string().contains("127.0.0.1:1"), "{e}"),
            other => panic!("expected timeout, got {other:?}"),
        }
    }

    #[test]
    fn graceful_stop_keeps_the_exit_status() {
        let dir = temp_dir("daemon-unit").unwrap();
        let mut d = Daemon::spawn("fake", sh("exit 0"), &dir.path().join("log")).unwrap();
        d.stop(Duration::from_secs(5));
        assert!(d.try_exit().unwrap().success());
    }
}
