//! `riscsi attach` and its operator commands against tgtd: `riscsi status`
//! (the path table, JSON) and `riscsi path fail|reinstate` through the
//! control socket, I/O through NBD meanwhile, and a clean stop.

use std::time::{Duration, Instant};

use riscsi_tests::prelude::*;
use serde_json::Value;

use crate::support::riscsi;
use riscsi_tests::Attach;

/// `riscsi status --json` with the sockets of `run_dir`.
fn status(run_dir: &std::path::Path) -> Value {
    let out = riscsi(["status", "--json"])
        .env("RISCSI_RUN_DIR", &run_dir.display().to_string())
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn path_state(status: &Value, index: usize) -> String {
    status["volume"]["paths"][index]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls the status until `cond` holds.
fn wait_status(run_dir: &std::path::Path, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(run_dir);
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the whole export through NBD with nbdcopy; it must equal `want`.
fn nbd_read(uri: &str, want: &[u8]) {
    let nbdcopy = riscsi_tests::require_tool("nbdcopy").unwrap();
    let out = std::process::Command::new(nbdcopy)
        .args([uri, "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == want,
        "the export's data differs from the LU's"
    );
}

#[test]
fn operators_fail_and_reinstate_paths_while_io_flows() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(16 << 20).pattern(3))
        .start()
        .unwrap();
    let dir = riscsi_tests::temp_dir("attach-control").unwrap();
    let ci = dir.path().join("ci.json");
    std::fs::write(
        &ci,
        tgt.connection_info(ConnectionInfoForm::Lists).to_string(),
    )
    .unwrap();
    let want = tgt.first_lun().read_backing(0, 16 << 20).unwrap();
    let attach = Attach::start_in(dir.path(), &format!("@{}", ci.display()), &[]).unwrap();
    let uri = attach.uri().to_owned();
    assert!(uri.starts_with("nbd+unix:///?socket="), "{uri}");
    let s = wait_status(dir.path(), "both paths usable", |s| {
        path_state(s, 0) == "active" && path_state(s, 1) == "standby"
    });
    assert_eq!(s["volume"]["paths"][0]["role"], "main");
    let main = s["volume"]["paths"][0]["portal"]
        .as_str()
        .unwrap()
        .to_owned();
    let human = riscsi(["status"])
        .env("RISCSI_RUN_DIR", &dir.path().display().to_string())
        .run();
    let table = human.stdout_text();
    assert!(table.contains("ROLE") && table.contains(&main), "{table}");

    // The operator fails the main path: I/O moves, and stays moved.
    let out = riscsi(["path", "fail", &main])
        .env("RISCSI_RUN_DIR", &dir.path().display().to_string())
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    nbd_read(&uri, &want);
    let s = wait_status(dir.path(), "main failed by the operator", |s| {
        path_state(s, 0) == "failed" && path_state(s, 1) == "active"
    });
    assert_eq!(
        s["volume"]["paths"][0]["last_error"],
        "failed by the operator"
    );
    let on_secondary = s["volume"]["paths"][1]["completed"].as_u64().unwrap();
    assert!(on_secondary > 0, "{s:#}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        path_state(&status(dir.path()), 0),
        "failed",
        "the checker leaves it alone"
    );

    // Reinstated: the checker verifies it and I/O goes back (failback immediate).
    let out = riscsi(["path", "reinstate", &main])
        .env("RISCSI_RUN_DIR", &dir.path().display().to_string())
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    wait_status(dir.path(), "failback", |s| path_state(s, 0) == "active");
    let before = status(dir.path())["volume"]["paths"][0]["completed"]
        .as_u64()
        .unwrap();
    nbd_read(&uri, &want);
    let after = status(dir.path())["volume"]["paths"][0]["completed"]
        .as_u64()
        .unwrap();
    assert!(after > before, "main carries I/O again");

    // A portal that is not a path: one line naming the paths there are.
    let out = riscsi(["path", "fail", "192.0.2.1:3260"])
        .env("RISCSI_RUN_DIR", &dir.path().display().to_string())
        .run();
    assert_eq!(out.status.code(), Some(1));
    let line = out.one_error_line();
    assert!(
        line.contains("no path through 192.0.2.1:3260") && line.contains(&main),
        "{line}"
    );

    attach.stop().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("attach-"))
        .collect();
    assert!(left.is_empty(), "sockets removed: {left:?}");
    // No attach running: status says so.
    let out = riscsi(["status"])
        .env("RISCSI_RUN_DIR", &dir.path().display().to_string())
        .run();
    assert!(
        out.one_error_line().contains("no riscsi attach is running"),
        "{}",
        out.stderr
    );
}

/// `--failback manual`: a reinstated main path waits on standby until the
/// operator's `riscsi failback`.
#[test]
fn manual_failback_waits_for_the_operator() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(16 << 20).pattern(5))
        .start()
        .unwrap();
    let dir = riscsi_tests::temp_dir("attach-failback").unwrap();
    let ci = dir.path().join("ci.json");
    std::fs::write(
        &ci,
        tgt.connection_info(ConnectionInfoForm::Lists).to_string(),
    )
    .unwrap();
    let want = tgt.first_lun().read_backing(0, 16 << 20).unwrap();
    let attach = Attach::start_in(
        dir.path(),
        &format!("@{}", ci.display()),
        &["--failback", "manual"],
    )
    .unwrap();
    let uri = attach.uri().to_owned();
    let run_dir = dir.path().display().to_string();
    let s = wait_status(dir.path(), "both paths usable", |s| {
        path_state(s, 0) == "active" && path_state(s, 1) == "standby"
    });
    let main = s["volume"]["paths"][0]["portal"]
        .as_str()
        .unwrap()
        .to_owned();
    riscsi(["path", "fail", &main])
        .env("RISCSI_RUN_DIR", &run_dir)
        .run()
        .success();
    nbd_read(&uri, &want);
    riscsi(["path", "reinstate", &main])
        .env("RISCSI_RUN_DIR", &run_dir)
        .run()
        .success();
    let s = wait_status(dir.path(), "main healthy on standby", |s| {
        path_state(s, 0) == "standby" && path_state(s, 1) == "active"
    });
    assert_eq!(s["volume"]["failback"], "manual");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        path_state(&status(dir.path()), 0),
        "standby",
        "no failback on its own"
    );
    riscsi(["failback"])
        .env("RISCSI_RUN_DIR", &run_dir)
        .run()
        .success();
    wait_status(dir.path(), "failback by the operator", |s| {
        path_state(s, 0) == "active" && path_state(s, 1) == "standby"
    });
    nbd_read(&uri, &want);
    attach.stop().unwrap();
}
