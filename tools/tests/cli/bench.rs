//! `riscsi bench`: every pattern runs for its second and reports figures
//! that agree with each other; write patterns need `--allow-write`.

use riscsi_tests::prelude::*;
use serde_json::Value;

use crate::support::{riscsi, volume_url};

const LUN_SIZE: u64 = 16 << 20;
const BLOCK: u64 = 64 << 10;

fn float(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report:#}"))
}

/// `a` and `b` agree to within 1 %.
#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 0.01 * a.abs().max(b.abs()),
        "{what}: {a} vs {b}"
    );
}

fn run_pattern(pattern: &str, allow_write: bool) {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(61))
        .start()
        .unwrap();
    let url = volume_url(tgt.portals()[0], tgt.iqn(), tgt.first_lun().number);
    let mut command = riscsi(["bench", &url, "--json", "--pattern", pattern]).args([
        "--seconds",
        "1",
        "--depth",
        "4",
        "--block",
        "64k",
    ]);
    if allow_write {
        command = command.args(["--allow-write"]);
    }
    let out = command.run().success();
    let report = out.json();
    assert_eq!(report["pattern"], pattern);
    assert_eq!(report["block_bytes"], BLOCK);
    assert_eq!(report["depth"], 4);
    assert_eq!(report["seconds_requested"], 1);
    assert_eq!(report["region_bytes"], LUN_SIZE);
    let ios = report["ios"].as_u64().expect("ios");
    assert!(ios > 0, "{report:#}");
    assert_eq!(report["bytes"], ios * BLOCK);
    let elapsed = float(&report, "elapsed_seconds");
    assert!((1.0..5.0).contains(&elapsed), "elapsed {elapsed}");
    close(float(&report, "iops"), ios as f64 / elapsed, "iops");
    let bytes = (ios * BLOCK) as f64;
    close(float(&report, "mb_per_s"), bytes / elapsed / 1e6, "MB/s");
    close(
        float(&report, "mib_per_s"),
        bytes / elapsed / 1048576.0,
        "MiB/s",
    );
    let latency = &report["latency_us"];
    let order = ["min", "p50", "p90", "p99", "p99_9", "max"].map(|k| float(latency, k));
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{latency:#}");
    assert!(order[0] > 0.0, "{latency:#}");
    let avg = float(latency, "avg");
    assert!(order[0] <= avg && avg <= order[5], "{latency:#}");
    // Four workers, one I/O each in flight: no I/O can take longer than the run.
    assert!(order[5] <= elapsed * 1e6, "{latency:#}");
    assert!(float(&report, "cpu_seconds") >= 0.0);
    // Writes land on the volume; reads leave it alone.
    let lun = tgt.first_lun();
    let now = lun.read_backing(0, LUN_SIZE as usize).unwrap();
    assert_eq!(
        now == lun.initial_bytes(0, LUN_SIZE as usize),
        !allow_write,
        "{pattern} and the volume's contents"
    );
}

#[test]
fn seq_read() {
    run_pattern("seq-read", false);
}

#[test]
fn rand_read() {
    run_pattern("rand-read", false);
}

#[test]
fn seq_write() {
    run_pattern("seq-write", true);
}

#[test]
fn rand_write() {
    run_pattern("rand-write", true);
}

#[test]
fn writes_without_permission_fail_before_connecting() {
    // Nothing listens there: a connection attempt would fail differently.
    let nowhere = "iscsi://127.0.0.1:1/iqn.2026-11.io.riscsi.test:none/1";
    for pattern in ["seq-write", "rand-write"] {
        let message = riscsi(["bench", nowhere, "--pattern", pattern, "--seconds", "1"])
            .run()
            .one_error_line();
        assert!(
            message.contains(pattern) && message.contains("--allow-write"),
            "{message}"
        );
    }
}
