//! Running the `riscsi` binary the way a user would: argv, environment and
//! stdin in, exit status, stdout and stderr out, under a deadline.
//!
//! Every run of a subcommand that takes `--initiator-name` gets it (unless
//! a test asks for the generated one), its own empty `RISCSI_STATE_DIR`, no inherited CHAP secrets or log
//! filter, and `RUST_BACKTRACE=1` so that a panic could not hide behind a
//! short message.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use riscsi_tests::{portal_string, spawn_tied, unique_loopback_v4};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The initiator name every run uses unless told otherwise.
pub const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:cli";

/// A single run that takes longer than this is a hang: it is killed and the
/// test fails with what the run printed so far.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(40);

/// How often a running child is polled for exit.
const POLL: Duration = Duration::from_millis(10);

/// Environment the tool reads that must not leak in from the test's own.
const SCRUBBED_ENV: &[&str] = &[
    "RISCSI_CHAP_SECRET",
    "RISCSI_TARGET_SECRET",
    "RISCSI_STATE_DIR",
    "RISCSI_OPEN_ISCSI_FILE",
    "RUST_LOG",
];

/// What a run reads on its standard input.
enum Input {
    Null,
    /// Fed through a pipe by a helper thread.
    Piped(Vec<u8>),
    /// A regular file, so the tool can see its size.
    File(PathBuf),
}

/// The subcommands that take `--initiator-name` (after their name: it is
/// not a global option).
const NAMED_SUBCOMMANDS: &[&str] = &[
    "discover",
    "inquiry",
    "copy",
    "bench",
    "connector",
    "attach",
    "conformance",
];

/// One `riscsi` command line, ready to run.
pub struct Riscsi {
    args: Vec<String>,
    /// Given as `--initiator-name` right after the subcommand, if it takes one.
    initiator: Option<&'static str>,
    env: Vec<(String, String)>,
    input: Input,
    state_dir: Option<PathBuf>,
    timeout: Duration,
}

/// `riscsi ARGS...`, with `--initiator-name INITIATOR` after the
/// subcommand when it takes one.
pub fn riscsi<I, S>(args: I) -> Riscsi
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Riscsi {
        initiator: Some(INITIATOR),
        ..riscsi_unnamed(args)
    }
}

/// `riscsi ARGS...` without `--initiator-name`, for the tests of the
/// generated name.
pub fn riscsi_unnamed<I, S>(args: I) -> Riscsi
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Riscsi {
        args: args.into_iter().map(Into::into).collect(),
        initiator: None,
        env: Vec::new(),
        input: Input::Null,
        state_dir: None,
        timeout: RUN_TIMEOUT,
    }
}

impl Riscsi {
    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for this run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Uses `dir` as `RISCSI_STATE_DIR` instead of a fresh temporary one.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self
    }

    /// Feeds `bytes` on stdin through a pipe.
    pub fn stdin_pipe(mut self, bytes: Vec<u8>) -> Self {
        self.input = Input::Piped(bytes);
        self
    }

    /// Opens `path` as stdin (a regular file, whose size the tool can see).
    pub fn stdin_file(mut self, path: &Path) -> Self {
        self.input = Input::File(path.to_owned());
        self
    }

    /// The arguments as the binary gets them: `--initiator-name` goes
    /// right after the subcommand (the first argument that is no flag),
    /// when that subcommand takes it.
    fn argv(&self) -> Vec<String> {
        let mut argv = self.args.clone();
        let subcommand = argv.iter().position(|a| !a.starts_with('-'));
        if let (Some(name), Some(at)) = (self.initiator, subcommand)
            && NAMED_SUBCOMMANDS.contains(&argv[at].as_str())
        {
            argv.splice(
                at + 1..at + 1,
                ["--initiator-name".to_owned(), name.to_owned()],
            );
        }
        argv
    }

    /// The command line as failure messages show it.
    fn display(&self) -> String {
        format!("riscsi {}", self.argv().join(" "))
    }

    /// Starts the run; [`Running::wait`] collects it.
    pub fn spawn(self) -> Running {
        let display = self.display();
        let temp_state = tempfile::tempdir().expect("temporary state directory");
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| temp_state.path().to_owned());
        let mut command = Command::new(env!("CARGO_BIN_EXE_riscsi"));
        command.args(self.argv());
        for key in SCRUBBED_ENV {
            command.env_remove(key);
        }
        command
            .env("RISCSI_STATE_DIR", &state_dir)
            .env("RUST_BACKTRACE", "1");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut fed = None;
        match self.input {
            Input::Null => {
                command.stdin(Stdio::null());
            }
            Input::File(path) => {
                let file = File::open(&path)
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
                command.stdin(file);
            }
            Input::Piped(bytes) => {
                command.stdin(Stdio::piped());
                fed = Some(bytes);
            }
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            spawn_tied(command).unwrap_or_else(|e| panic!("cannot run `{display}`: {e}"));
        let feeder = fed.map(|bytes| {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // The tool may stop reading early (overflow, error): a broken
            // pipe here is the tool's business, not a test failure.
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        Running {
            stdout: drain(child.stdout.take()),
            stderr: drain(child.stderr.take()),
            child,
            feeder,
            deadline: Instant::now() + self.timeout,
            display,
            _temp_state: temp_state,
        }
    }

    /// Runs to completion.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// A run in progress.
pub struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    feeder: Option<JoinHandle<()>>,
    deadline: Instant,
    display: String,
    /// Kept until the run ends: the state directory the tool may write to.
    _temp_state: TempDir,
}

impl Running {
    /// True once the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the exit; past the deadline, kills the run and fails the test
    /// with its output.
    pub fn wait(mut self) -> Outcome {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= self.deadline => break None,
                Ok(None) => thread::sleep(POLL),
                Err(e) => panic!("waiting for `{}`: {e}", self.display),
            }
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(feeder) = self.feeder {
            let _ = feeder.join();
        }
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&self.stderr.join().unwrap_or_default()).into_owned();
        let Some(status) = status else {
            panic!(
                "`{}` still running after {RUN_TIMEOUT:?}; killed. stderr:\n{stderr}",
                self.display
            );
        };
        Outcome {
            status,
            stdout,
            stderr,
            display: self.display,
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    let mut pipe = pipe.expect("output is piped");
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// How a run ended and what it printed.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    display: String,
}

impl Outcome {
    /// Stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone())
            .unwrap_or_else(|_| panic!("`{}` printed non-UTF-8 on stdout", self.display))
    }

    /// Stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}):\n{}",
                self.display,
                String::from_utf8_lossy(&self.stdout)
            )
        })
    }

    /// Asserts the run succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.status.success(),
            "`{}` failed with {}:\n{}",
            self.display,
            self.status,
            self.stderr
        );
        self
    }

    /// Asserts the run failed the way every riscsi error must: a non-zero exit
    /// status, nothing on stdout, and exactly one stderr line that starts with
    /// `riscsi: ` (no panic, no backtrace, no log noise). Returns the message.
    #[track_caller]
    pub fn one_error_line(&self) -> String {
        assert!(
            !self.status.success(),
            "`{}` succeeded but should have failed; stdout:\n{}",
            self.display,
            String::from_utf8_lossy(&self.stdout)
        );
        assert!(
            self.stdout.is_empty(),
            "`{}` failed but printed on stdout:\n{}",
            self.display,
            String::from_utf8_lossy(&self.stdout)
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("riscsi: "),
            "`{}`: expected one `riscsi: ` line on stderr, got:\n{}",
            self.display,
            self.stderr
        );
        for noise in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(noise), "{noise} in: {}", self.stderr);
        }
        lines[0]["riscsi: ".len()..].to_owned()
    }

    /// Asserts `secret` appears nowhere in what the run printed.
    #[track_caller]
    pub fn assert_never_shows(&self, secret: &str) {
        let stdout = String::from_utf8_lossy(&self.stdout);
        assert!(
            !stdout.contains(secret) && !self.stderr.contains(secret),
            "`{}` printed a secret",
            self.display
        );
    }
}

/// A URL for LUN `lun` of target `iqn` through `portal`.
pub fn volume_url(portal: SocketAddr, iqn: &str, lun: u64) -> String {
    format!("iscsi://{}/{iqn}/{lun}", portal_string(portal))
}

/// A loopback IPv4 address of its own, for one portal.
pub fn own_loopback() -> IpAddr {
    IpAddr::V4(unique_loopback_v4())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a whole file.
pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}

/// `len` reproducible bytes that match no fixture's initial contents.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    // Far from the seeds fixtures use, so a write that did not land shows.
    riscsi_tests::pattern::bytes(seed ^ 0x5eed_0000_cafe, 0, len)
}

/// Writes `bytes` to a new file in `dir`, mode 0600 (the tool warns about
/// secrets in files other users can read).
pub fn write_file(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the test's input file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("make the test's input file private");
    path
}

/// Asserts two byte strings are equal; on a mismatch names the lengths and
/// the first differing offset instead of dumping megabytes.
#[track_caller]
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let at = actual.iter().zip(expected).position(|(a, e)| a != e);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {at:?}",
            actual.len(),
            expected.len()
        );
    }
}
