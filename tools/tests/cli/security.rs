//! Security as tests, through the binary against tgtd: CHAP secrets never
//! show in `riscsi attach`'s trace-level log, its errors, `riscsi status`
//! or its process title (/proc/PID/cmdline) when they come the documented
//! safe ways (a connection_info file, secret files, the environment; a
//! secret in an `iscsi://user%secret@` URL is on the command line, which
//! every user can read: that form is for tests and one-off runs); the
//! control and NBD unix sockets are mode 0600 and refuse other users even
//! when their mode is loosened (SO_PEERCRED), tried as `nobody`; a
//! non-loopback NBD listener needs --nbd-allow-remote; secrets read from
//! files that other users can read are warned about.
//!
//! The other cases of the inventory: `chap.rs` (wrong secrets in one line,
//! inquiry at trace level), iscsi-session's `config::tests` (Debug), and
//! tests/tests/hostile_targets.rs (mutual CHAP answered wrongly).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use riscsi_tests::nbd_client::NbdClient;
use riscsi_tests::prelude::*;
use riscsi_tests::{Attach, free_port, portal_string};
use serde_json::json;

use crate::support::{Outcome, riscsi, sha256, write_file};

const USER: &str = "alice";
const SECRET: &str = "alice-secret-6071";
const WRONG: &str = "mallory-guess-3348";
const TARGET_USER: &str = "array";
const TARGET_SECRET: &str = "array-secret-5192";
const ALL_SECRETS: &[&str] = &[SECRET, WRONG, TARGET_SECRET];
/// What one probe run as another user may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// `iscsi://[USERS@]host:port/iqn/lun` of the fixture's LUN, no secret in it.
fn url(fixture: &impl Fixture, users: &str, query: &str) -> String {
    format!(
        "iscsi://{users}{}/{}/{}{query}",
        portal_string(fixture.portals()[0]),
        fixture.iqn(),
        fixture.first_lun().number
    )
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in ALL_SECRETS {
        assert!(!text.contains(secret), "a secret in {what}:\n{text}");
    }
}

/// The first 64 KiB through NBD must be the LU's.
#[track_caller]
fn nbd_reads_the_lu(attach: &Attach, fixture: &impl Fixture) {
    let socket = attach.nbd_socket().expect("a unix socket");
    let mut client = NbdClient::unix(socket, "", true).expect("an NBD client");
    let data = client.read(0, 65536).unwrap().expect("a read");
    let backing = fixture.first_lun().read_backing(0, 65536).unwrap();
    assert_eq!(sha256(&data), sha256(&backing), "the data through NBD");
    client.disconnect().unwrap();
}

/// Everything a running attach shows others: its process title, `riscsi
/// status` both ways; then its whole trace-level log after the clean stop.
fn assert_attach_never_shows_a_secret(attach: Attach, fixture: &impl Fixture) {
    nbd_reads_the_lu(&attach, fixture);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", attach.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("attach"), "{cmdline}");
    assert_no_secret("the process title", &cmdline);
    let json = attach.status().expect("riscsi status --json");
    assert_eq!(json["volume"]["paths"][0]["state"], "active", "{json:#}");
    assert_no_secret("riscsi status --json", &json.to_string());
    let run_dir = attach.run_dir().display().to_string();
    let text = riscsi(["status"]).env("RISCSI_RUN_DIR", &run_dir).run();
    assert!(text.status.success(), "{}", text.stderr);
    assert_no_secret("riscsi status", &text.stdout_text());
    let log = attach.stop().unwrap_or_else(|e| panic!("{e}"));
    // Nothing logs below debug; the CHAP exchange is logged at debug.
    assert!(
        log.contains("DEBUG") && log.contains("answering the CHAP challenge"),
        "verbose logging is off?\n{log}"
    );
    assert_no_secret("the trace-level log", &log);
}

/// One-way CHAP from a connection_info file, mutual CHAP from the
/// environment and from secret files; each attach at RUST_LOG=trace.
#[test]
fn attach_never_shows_a_chap_secret() {
    let trace = ("RUST_LOG", "trace");
    let one_way = Tgt::builder().chap(USER, SECRET).start().unwrap();
    let info = one_way.connection_info(ConnectionInfoForm::Lists);
    assert_eq!(info["data"]["auth_password"], SECRET, "{info:#}");
    let attach = Attach::start_env(&info, &[], &[trace]).unwrap_or_else(|e| panic!("{e}"));
    assert_attach_never_shows_a_secret(attach, &one_way);

    let mutual = Tgt::builder()
        .chap(USER, SECRET)
        .mutual_chap(TARGET_USER, TARGET_SECRET)
        .start()
        .unwrap();
    let users = url(
        &mutual,
        &format!("{USER}@"),
        &format!("?target_user={TARGET_USER}"),
    );
    let from_env = Attach::start_volume_env(
        &users,
        &[],
        &[
            trace,
            ("RISCSI_CHAP_SECRET", SECRET),
            ("RISCSI_TARGET_SECRET", TARGET_SECRET),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_attach_never_shows_a_secret(from_env, &mutual);

    let dir = tempfile::tempdir().unwrap();
    let ours = write_file(&dir, "initiator", SECRET.as_bytes());
    let theirs = write_file(&dir, "target", TARGET_SECRET.as_bytes());
    let bare = url(&mutual, "", "");
    let from_files = Attach::start_volume_env(
        &bare,
        &[
            "--chap-user",
            USER,
            "--chap-secret-file",
            ours.to_str().unwrap(),
            "--target-user",
            TARGET_USER,
            "--target-secret-file",
            theirs.to_str().unwrap(),
        ],
        &[trace],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_attach_never_shows_a_secret(from_files, &mutual);
}

/// `riscsi attach` with a wrong secret (in a connection_info file) fails
/// with one line naming the refusal, not the secret; at trace level the
/// whole log shows no secret either.
#[test]
fn a_refused_attach_names_no_secret() {
    let tgt = Tgt::builder().chap(USER, SECRET).start().unwrap();
    let mut info = tgt.connection_info(ConnectionInfoForm::Lists);
    info["data"]["auth_password"] = json!(WRONG);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(&dir, "ci.json", info.to_string().as_bytes());
    let volume = format!("@{}", file.display());
    let run_dir = dir.path().join("run");
    let attach = |env: &[(&str, &str)]| {
        let mut run = riscsi(["attach", volume.as_str()])
            .env("RISCSI_RUN_DIR", &run_dir.display().to_string());
        for (k, v) in env {
            run = run.env(k, v);
        }
        run.run()
    };
    let quiet = attach(&[]);
    let line = quiet.one_error_line();
    assert!(line.contains(USER) && line.contains("refused"), "{line}");
    assert_no_secret("the error", &line);
    let loud = attach(&[("RUST_LOG", "trace")]);
    assert!(!loud.status.success());
    assert!(
        loud.stderr.contains("DEBUG") && loud.stderr.contains("answering the CHAP challenge"),
        "{}",
        loud.stderr
    );
    assert_no_secret("the trace-level log of a refused login", &loud.stderr);
}

/// Mode bits of `path` itself (not what it points to).
fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// `nobody`'s uid and gid.
fn nobody() -> (u32, u32) {
    let user = nix::unistd::User::from_name("nobody")
        .expect("the user database")
        .expect("a user `nobody` to connect as");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// Runs `program ARGS` as `nobody` (std's Command::uid: setgid, setgroups
/// and setuid in the child before exec); its exit success and stderr.
fn run_as_nobody(program: &Path, args: &[&str]) -> (bool, String) {
    let (uid, gid) = nobody();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} as nobody: {e}", program.display()));
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "{} {args:?} as nobody: no end within {PROBE_TIMEOUT:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for `line` in the attach's log.
#[track_caller]
fn wait_logged(attach: &Attach, line: &str) {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while !attach.stderr().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} logged:\n{}",
            attach.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Both unix sockets are mode 0600 in a 0700 directory: `nobody` cannot
/// reach them. With the modes loosened (0755 directory, 0666 sockets) it
/// reaches them, and attach still refuses it from the peer credentials:
/// `riscsi status` gets no answer, nbdinfo no greeting, and each refusal
/// is logged with nobody's uid. Our own user is served all along.
#[test]
fn unix_sockets_are_private_and_refuse_other_users() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs a client as `nobody`, which needs root"
    );
    let nbdinfo = riscsi_tests::require_tool("nbdinfo").unwrap_or_else(|e| panic!("{e}"));
    let tgt = Tgt::builder().start().unwrap();
    let attach = Attach::start(&tgt.connection_info(ConnectionInfoForm::Lists), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let control = attach.control().to_owned();
    let socket = attach.nbd_socket().expect("a unix socket").to_owned();
    assert_eq!(mode(&control), 0o600, "the control socket");
    assert_eq!(mode(&socket), 0o600, "the NBD socket");
    assert_eq!(mode(attach.run_dir()), 0o700, "the run directory");

    // The riscsi binary where nobody may run it: the build tree may sit
    // under a directory private to root.
    let probe_dir = tempfile::tempdir().unwrap();
    chmod(probe_dir.path(), 0o755);
    let probe: PathBuf = probe_dir.path().join("riscsi");
    std::fs::copy(env!("CARGO_BIN_EXE_riscsi"), &probe).unwrap();
    chmod(&probe, 0o755);
    let control_arg = control.display().to_string();
    let status = ["status", "--control", control_arg.as_str()];
    let uri = attach.uri().to_owned();

    let (ok, stderr) = run_as_nobody(&probe, &status);
    assert!(
        !ok && stderr.contains("ermission denied"),
        "status as nobody: {stderr}"
    );
    let (ok, stderr) = run_as_nobody(&nbdinfo, &[&uri]);
    assert!(
        !ok && stderr.contains("ermission denied"),
        "nbdinfo as nobody: {stderr}"
    );

    chmod(attach.run_dir(), 0o755);
    chmod(&control, 0o666);
    chmod(&socket, 0o666);
    let (uid, _) = nobody();
    let (ok, stderr) = run_as_nobody(&probe, &status);
    assert!(!ok, "status as nobody through loosened modes: {stderr}");
    assert!(!stderr.contains("nbd_clients"), "{stderr}");
    wait_logged(
        &attach,
        &format!("control socket: refusing a unix socket client of uid {uid}"),
    );
    let (ok, stderr) = run_as_nobody(&nbdinfo, &[&uri]);
    assert!(!ok, "nbdinfo as nobody through loosened modes: {stderr}");
    wait_logged(
        &attach,
        &format!("NBD: refusing a unix socket client of uid {uid}"),
    );

    // Our own user is still served, on both.
    let json = attach.status().expect("status as root");
    assert_eq!(json["nbd_clients"], 0, "{json:#}");
    nbd_reads_the_lu(&attach, &tgt);
    attach.stop().unwrap_or_else(|e| panic!("{e}"));
}

/// `--nbd-listen` on a non-loopback address fails at once, before any
/// login, with one line naming the address and the flag; with
/// --nbd-allow-remote it serves there.
#[test]
fn a_non_loopback_nbd_listener_needs_the_explicit_flag() {
    let unreachable = "iscsi://127.0.0.1:9/iqn.2026-11.io.riscsi.test:none/0";
    let run_dir = tempfile::tempdir().unwrap();
    let run_dir_arg = run_dir.path().display().to_string();
    for listen in ["0.0.0.0:10809", "[::]:10809", "192.0.2.1:10809"] {
        let out = riscsi(["attach", unreachable, "--nbd-listen", listen])
            .env("RISCSI_RUN_DIR", &run_dir_arg)
            .run();
        let line = out.one_error_line();
        assert!(
            line.contains(listen) && line.contains("--nbd-allow-remote"),
            "{listen}: {line}"
        );
    }

    let tgt = Tgt::builder().start().unwrap();
    let port = free_port(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).unwrap();
    let listen = format!("0.0.0.0:{port}");
    let attach = Attach::start(
        &tgt.connection_info(ConnectionInfoForm::Lists),
        &["--nbd-listen", &listen, "--nbd-allow-remote"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(attach.uri(), format!("nbd://{listen}/"));
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut client = NbdClient::tcp(addr, "", true).expect("a client over TCP");
    let data = client.read(0, 4096).unwrap().expect("a read");
    assert_eq!(data, tgt.first_lun().read_backing(0, 4096).unwrap());
    client.disconnect().unwrap();
    attach.stop().unwrap_or_else(|e| panic!("{e}"));
}

/// The warning lines of a run.
fn warnings(run: &Outcome) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.contains("WARN")).collect()
}

/// A secret file, or a connection_info file with passwords, that its group
/// or others may read or write: the login works, and one warning names the
/// file and its mode (never the secret). Mode 0600 and 0400 files, and a
/// loose connection_info file without passwords, get none.
#[test]
fn secrets_in_files_other_users_can_read_are_warned_about() {
    let tgt = Tgt::builder().chap(USER, SECRET).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_file(&dir, "secret", format!("{SECRET}\n").as_bytes());
    let secret_arg = secret_file.display().to_string();
    let bare = url(&tgt, "", "");
    let with_file = || {
        riscsi(["inquiry", bare.as_str(), "--json"])
            .args([
                "--chap-user",
                USER,
                "--chap-secret-file",
                secret_arg.as_str(),
            ])
            .run()
    };
    let info = tgt.connection_info(ConnectionInfoForm::Lists);
    let ci_file = write_file(&dir, "ci.json", info.to_string().as_bytes());
    let ci_arg = format!("@{}", ci_file.display());
    let with_ci = || riscsi(["inquiry", ci_arg.as_str(), "--json"]).run();
    let open = Tgt::builder().start().unwrap();
    let no_chap = open.connection_info(ConnectionInfoForm::Lists);
    assert!(
        no_chap["data"].get("auth_password").is_none(),
        "{no_chap:#}"
    );
    let plain_file = write_file(&dir, "plain.json", no_chap.to_string().as_bytes());
    chmod(&plain_file, 0o644);
    let plain = riscsi(["inquiry", &format!("@{}", plain_file.display()), "--json"]).run();
    assert!(plain.status.success(), "{}", plain.stderr);
    assert!(warnings(&plain).is_empty(), "{}", plain.stderr);

    let cases: [(&PathBuf, &dyn Fn() -> Outcome); 2] =
        [(&secret_file, &with_file), (&ci_file, &with_ci)];
    for (file, run) in cases {
        for (mode, warned) in [
            (0o600, false),
            (0o400, false),
            (0o644, true),
            (0o640, true),
            (0o604, true),
            (0o660, true),
        ] {
            chmod(file, mode);
            let out = run();
            assert!(out.status.success(), "{mode:o}: {}", out.stderr);
            assert_eq!(out.json()["session"]["auth_method"], "CHAP");
            out.assert_never_shows(SECRET);
            let lines = warnings(&out);
            if warned {
                assert_eq!(lines.len(), 1, "{mode:o}: {}", out.stderr);
                let name = file.display().to_string();
                assert!(
                    lines[0].contains(&name)
                        && lines[0].contains(&format!("mode {mode:03o}"))
                        && lines[0].contains("chmod 600"),
                    "{}",
                    lines[0]
                );
            } else {
                assert!(out.stderr.is_empty(), "{mode:o}: {}", out.stderr);
            }
        }
    }
}
