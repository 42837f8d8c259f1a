//! tshark as the wire oracle: live captures of our own traffic on loopback and
//! the checks every capture must pass (no malformed PDU, no expert error).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::temp::temp_dir;
use crate::tools::require_tool;

/// How long tshark may take to start capturing.
const CAPTURE_START: Duration = Duration::from_secs(15);

/// Runs `tshark -r path` with `prefs` (`-o key:value`) and `args`; returns stdout.
pub fn read(path: &Path, prefs: &[&str], args: &[&str]) -> String {
    if let Err(e) = require_tool("tshark") {
        panic!("{e}");
    }
    let mut command = Command::new("tshark");
    command.arg("-r").arg(path);
    for pref in prefs {
        command.args(["-o", pref]);
    }
    let output = command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    assert!(
        output.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Frames tshark flags as malformed or with an expert error, one line each
/// (frame number, expert message, info column).
pub fn problems(path: &Path, prefs: &[&str], args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.extend_from_slice(&[
        "-Y",
        "_ws.malformed || _ws.expert.severity >= error",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
        "-e",
        "_ws.col.Info",
    ]);
    read(path, prefs, &all).lines().map(str::to_owned).collect()
}

/// A live capture of one TCP port on loopback, written to a pcap file.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    path: PathBuf,
    server: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing the TCP port of `server` on `lo` and returns once
    /// packets really reach the file: tshark says "Capturing on" before its
    /// filter is attached, so we knock on `server` (connect, close) until the
    /// file grows.
    pub fn start(server: SocketAddr) -> Capture {
        let port = server.port();
        if let Err(e) = require_tool("tshark") {
            panic!("{e}");
        }
        let dir = temp_dir("capture").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("capture.pcap");
        let mut child = Command::new("tshark")
            // A large capture buffer: loopback delivers 64 KiB segments faster
            // than dumpcap drains a small one.
            .args([
                "-i",
                "lo",
                "-B",
                "256",
                "-f",
                &format!("tcp port {port}"),
                "-w",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tshark: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Capturing on") {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + CAPTURE_START;
        if rx.recv_timeout(CAPTURE_START).is_err() {
            let _ = child.kill();
            panic!("tshark did not start capturing on lo within {CAPTURE_START:?}");
        }
        let capture = Capture {
            child,
            path,
            server,
            _dir: dir,
        };
        if !capture.knock_until_written(deadline) {
            panic!("tshark captured nothing on lo within {CAPTURE_START:?}");
        }
        capture
    }

    /// Connects to the server and closes until the capture file grows: then
    /// everything before the knock is in the file too (dumpcap writes in order).
    fn knock_until_written(&self, deadline: Instant) -> bool {
        let size = || std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        while Instant::now() < deadline {
            drop(TcpStream::connect_timeout(
                &self.server,
                Duration::from_secs(1),
            ));
            std::thread::sleep(Duration::from_millis(50));
            if size() > before {
                return true;
            }
        }
        false
    }

    /// Stops the capture (SIGINT, so the file is complete) and checks it: no
    /// frame tshark calls malformed or an expert error. Returns the opcode
    /// names tshark read, in order, so the caller can check the traffic was
    /// really dissected as iSCSI.
    pub fn finish(mut self) -> Vec<String> {
        let flushed = self.knock_until_written(Instant::now() + CAPTURE_START);
        assert!(flushed, "tshark stopped writing the capture");
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.child.wait();
        // RISCSI_KEEP_CAPTURE=DIR keeps the pcap for a look in Wireshark.
        if let Some(dir) = std::env::var_os("RISCSI_KEEP_CAPTURE") {
            let kept = Path::new(&dir).join(format!("riscsi-{}.pcap", self.server.port()));
            let _ = std::fs::copy(&self.path, &kept);
            eprintln!("capture kept at {}", kept.display());
        }
        let decode_as = format!("tcp.port=={},iscsi", self.server.port());
        let args = ["-d", decode_as.as_str()];
        let bad = problems(&self.path, &[], &args);
        assert!(
            bad.is_empty(),
            "tshark flags our traffic:\n{}",
            bad.join("\n")
        );
        let mut all = args.to_vec();
        all.extend_from_slice(&["-Y", "iscsi", "-T", "fields", "-e", "iscsi.opcode"]);
        read(&self.path, &[], &all)
            .lines()
            .flat_map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
