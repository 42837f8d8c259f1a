//! `riscsi discover`: iscsiadm-style lines and `--json` from tgtd (which
//! answers with the portal it was asked on) and istgt (which lists every
//! portal of the group), on IPv4 and IPv6, with discovery CHAP.

use riscsi_tests::portal_string;
use riscsi_tests::prelude::*;
use serde_json::json;

use crate::support::{own_loopback, riscsi};

#[test]
fn tgtd_answers_each_portal_with_that_portal() {
    let tgt = Tgt::builder()
        .portal_ip(own_loopback())
        .portal_ip(own_loopback())
        .portal("::1")
        .start()
        .unwrap();
    for &portal in tgt.portals() {
        let address = portal_string(portal);
        let lines = riscsi(["discover", &address]).run().success();
        assert_eq!(
            lines.stdout_text(),
            format!("{address},1 {}\n", tgt.iqn()),
            "asked on {address}"
        );
        let listed = riscsi(["discover", "--json", &address]).run().success();
        assert_eq!(
            listed.json(),
            json!([{"portal": address, "target": tgt.iqn(), "tpgt": 1}])
        );
    }
    // The IPv6 portal is printed in brackets.
    assert!(portal_string(tgt.portals()[2]).starts_with("[::1]:"));
}

#[test]
fn portal_as_an_iscsi_url() {
    let tgt = Tgt::start().unwrap();
    let address = portal_string(tgt.portals()[0]);
    let out = riscsi(["discover", &format!("iscsi://{address}")])
        .run()
        .success();
    assert_eq!(out.stdout_text(), format!("{address},1 {}\n", tgt.iqn()));
}

#[test]
fn discovery_chap_from_user_option_and_secret_file() {
    const SECRET: &str = "finder-secret-4417";
    let tgt = Tgt::builder()
        .discovery_chap("finder", SECRET)
        .start()
        .unwrap();
    let address = portal_string(tgt.portals()[0]);
    let dir = tempfile::tempdir().unwrap();
    let good = crate::support::write_file(&dir, "good", format!("{SECRET}\n").as_bytes());
    let wrong = crate::support::write_file(&dir, "wrong", b"not-the-finder-secret\n");
    let secret_file = |f: &std::path::Path| f.to_str().unwrap().to_owned();

    let out = riscsi(["discover", &address, "--chap-user", "finder"])
        .args(["--chap-secret-file", &secret_file(&good)])
        .run()
        .success();
    assert_eq!(out.stdout_text(), format!("{address},1 {}\n", tgt.iqn()));
    out.assert_never_shows(SECRET);

    let anonymous = riscsi(["discover", &address]).run();
    anonymous.one_error_line();
    let refused = riscsi(["discover", &address, "--chap-user", "finder"])
        .args(["--chap-secret-file", &secret_file(&wrong)])
        .run();
    refused.one_error_line();
    refused.assert_never_shows("not-the-finder-secret");
}

#[test]
fn istgt_lists_all_three_portals_on_each() {
    let istgt = Istgt::builder()
        .portal_ip(own_loopback())
        .portal_ip(own_loopback())
        .portal("::1")
        .start()
        .unwrap();
    let mut expected: Vec<String> = istgt
        .portal_strings()
        .iter()
        .map(|p| format!("{p},1 {}", istgt.iqn()))
        .collect();
    expected.sort();
    for &portal in istgt.portals() {
        let out = riscsi(["discover", &portal_string(portal)]).run().success();
        let text = out.stdout_text();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(lines, expected, "asked on {portal}");
    }
}
