//! `riscsi connector`: the os-brick connector object of
//! /work/shared/docs/connection-info.md, and the generated initiator name that
//! stays the same from one run to the next.

use std::path::Path;

use serde_json::Value;

use crate::support::{INITIATOR, riscsi, riscsi_unnamed};

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

/// open-iscsi's name file: when it exists, the tool uses its name.
const OPEN_ISCSI_FILE: &str = "/etc/iscsi/initiatorname.iscsi";

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
        riscsi_unnamed(["connector"])
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
    if Path::new(OPEN_ISCSI_FILE).exists() {
        // This host has open-iscsi's name, which wins over a generated one.
        let file = std::fs::read_to_string(OPEN_ISCSI_FILE).unwrap();
        assert!(file.contains(&format!("InitiatorName={first}")), "{first}");
        return;
    }
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
    let other = riscsi_unnamed(["connector"])
        .state_dir(elsewhere.path())
        .run()
        .success()
        .json();
    assert_ne!(other["initiator"], first.as_str());
}
