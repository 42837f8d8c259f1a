//! `riscsi connector`: the os-brick connector object of
//! /work/shared/docs/connection-info.md, and the generated initiator name that
//! stays the same from one run to the next.

use serde_json::Value;

use crate::support::{INITIATOR, Riscsi, riscsi, riscsi_unnamed, write_file};

/// Exactly the keys of the contract.
const KEYS: &[&str] = &[
    "initiator",
    "multipath",
    "enforce_multipath",
    "host",
    "ip",
    "platform",
    "os_type",
];

/// Names the open-iscsi name file the tool reads instead of
/// /etc/iscsi/initiatorname.iscsi, so that a host's own file cannot decide
/// what these tests see.
const OPEN_ISCSI_FILE_ENV: &str = "RISCSI_OPEN_ISCSI_FILE";

/// `riscsi connector` without `--initiator-name` and, whatever this host
/// has, without an open-iscsi name file.
fn connector_unnamed() -> Riscsi {
    riscsi_unnamed(["connector"]).env(
        OPEN_ISCSI_FILE_ENV,
        "/nonexistent/riscsi-test/initiatorname.iscsi",
    )
}

#[track_caller]
fn assert_contract_keys(connector: &Value) {
    let mut keys: Vec<&str> = connector
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

#[test]
fn defaults_follow_the_contract() {
    let connector = riscsi(["connector"]).run().success().json();
    assert_contract_keys(&connector);
    assert_eq!(connector["initiator"], INITIATOR);
    assert_eq!(connector["multipath"], true);
    assert_eq!(connector["enforce_multipath"], false);
    assert_eq!(connector["host"], hostname());
    assert_eq!(connector["platform"], std::env::consts::ARCH);
    assert_eq!(connector["os_type"], "linux");
    let ip: std::net::IpAddr = connector["ip"]
        .as_str()
        .expect("ip is a string")
        .parse()
        .expect("ip is an address");
    assert!(!ip.is_unspecified() && !ip.is_multicast(), "{ip}");
}

#[test]
fn flags_and_ip_override() {
    let connector = riscsi(["connector", "--no-multipath", "--enforce-multipath"])
        .args(["--ip", "fd00::17"])
        .run()
        .success()
        .json();
    assert_contract_keys(&connector);
    assert_eq!(connector["multipath"], false);
    assert_eq!(connector["enforce_multipath"], true);
    assert_eq!(connector["ip"], "fd00::17");
    let v4 = riscsi(["connector", "--ip", "192.0.2.44"])
        .run()
        .success()
        .json();
    assert_eq!(
        (v4["ip"].as_str(), v4["multipath"].as_bool()),
        (Some("192.0.2.44"), Some(true))
    );
    // A bad argument is clap's usage error (exit status 2), not a run.
    let bad = riscsi(["connector", "--ip", "not-an-address"]).run();
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    assert!(bad.stdout.is_empty() && bad.stderr.contains("not-an-address"));
}

#[test]
fn generated_name_is_kept_in_the_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let run = || {
        connector_unnamed()
            .state_dir(state.path())
            .run()
            .success()
            .json()["initiator"]
            .as_str()
            .expect("initiator is a string")
            .to_owned()
    };
    let first = run();
    let second = run();
    assert_eq!(first, second, "the name changed between runs");
    let suffix = first
        .strip_prefix("iqn.2026-11.io.riscsi:")
        .unwrap_or_else(|| panic!("{first} is not a generated riscsi name"));
    let (host, random) = suffix.rsplit_once('-').expect("<host>-<random>");
    assert_eq!(host, hostname().to_ascii_lowercase(), "{first}");
    assert!(
        random.len() == 6 && random.chars().all(|c| c.is_ascii_hexdigit()),
        "{first}"
    );
    let stored = std::fs::read_to_string(state.path().join("initiatorname")).unwrap();
    assert!(stored.contains(&first), "stored: {stored:?}");
    // Another state directory, another name.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = connector_unnamed()
        .state_dir(elsewhere.path())
        .run()
        .success()
        .json();
    assert_ne!(other["initiator"], first.as_str());
}

#[test]
fn open_iscsi_name_wins_over_a_generated_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        &dir,
        "initiatorname.iscsi",
        b"## DO NOT EDIT\n#InitiatorName=iqn.commented:out\nInitiatorName=iqn.1993-08.org.debian:01:5e1f\n",
    );
    let state = tempfile::tempdir().unwrap();
    let named = riscsi_unnamed(["connector"])
        .env(OPEN_ISCSI_FILE_ENV, file.to_str().unwrap())
        .state_dir(state.path())
        .run()
        .success()
        .json();
    assert_eq!(named["initiator"], "iqn.1993-08.org.debian:01:5e1f");
    assert!(
        !state.path().join("initiatorname").exists(),
        "no name generated beside open-iscsi's"
    );
    // An explicit name still wins over the file.
    let explicit = riscsi(["connector"])
        .env(OPEN_ISCSI_FILE_ENV, file.to_str().unwrap())
        .run()
        .success()
        .json();
    assert_eq!(explicit["initiator"], INITIATOR);
    // A file that is not a name is an error, not a generated identity.
    let bad = write_file(&dir, "bad", b"InitiatorName=has blank\n");
    let out = riscsi_unnamed(["connector"])
        .env(OPEN_ISCSI_FILE_ENV, bad.to_str().unwrap())
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.one_error_line().contains("has blank"));
}
