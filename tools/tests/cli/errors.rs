//! Failures a user meets (no such target, no such LUN, nobody listening,
//! something else than iSCSI listening, a malformed URL): a non-zero exit status and exactly one `riscsi: ` line on
//! stderr that says what went wrong, from every subcommand.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use riscsi_tests::prelude::*;
use riscsi_tests::{free_port, portal_string};

use crate::support::{own_loopback, riscsi, volume_url};

/// The subcommands that open a volume, each as a command line ending in the URL.
fn volume_commands(url: &str) -> [Vec<String>; 3] {
    [
        vec!["inquiry".into(), url.into()],
        vec!["copy".into(), url.into(), "-".into()],
        vec!["bench".into(), url.into(), "--seconds".into(), "1".into()],
    ]
}

/// Runs every volume subcommand on `url`; each must fail with one line that
/// contains every string of `says`.
#[track_caller]
fn every_command_fails(url: &str, says: &[&str]) {
    for args in volume_commands(url) {
        let out = riscsi(args.clone()).run();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", out.stderr);
        let message = out.one_error_line();
        for part in says {
            assert!(
                message.contains(part),
                "{args:?}: {part:?} not in {message:?}"
            );
        }
    }
}

#[test]
fn unknown_target_and_unknown_lun() {
    let tgt = Tgt::start().unwrap();
    let portal = tgt.portals()[0];
    let nobody = "iqn.2026-11.io.riscsi.test:nobody-home";
    every_command_fails(&volume_url(portal, nobody, 1), &[nobody, "not found"]);
    every_command_fails(
        &volume_url(portal, tgt.iqn(), 9),
        &["LUN 9 does not exist on", tgt.iqn(), "it has LUNs 0, 1"],
    );
}

#[test]
fn nobody_listening() {
    let ip = own_loopback();
    let closed = SocketAddr::new(ip, free_port(ip).unwrap());
    let address = portal_string(closed);
    every_command_fails(
        &volume_url(closed, "iqn.2026-11.io.riscsi.test:x", 1),
        &[&address],
    );
    let out = riscsi(["discover", &address]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let message = out.one_error_line();
    assert!(message.contains(&address), "{message}");
    // conformance checks the portal first: one line, no table of errors.
    let url = volume_url(closed, "iqn.2026-11.io.riscsi.test:x", 1);
    let out = riscsi(["conformance", &url]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let message = out.one_error_line();
    assert!(message.contains(&address), "{message}");
    assert!(message.contains("no test was run"), "{message}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A portal where an HTTP server listens: it reads whatever comes and
/// answers every connection with a 400 status line, until the test ends.
fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    addr
}

#[test]
fn an_http_server_is_no_iscsi_target() {
    let server = http_server();
    let address = portal_string(server);
    let url = format!("iscsi://{address}/iqn.x/0");
    let out = riscsi(["inquiry", url.as_str()]).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let message = out.one_error_line();
    assert!(
        message.contains(&format!(
            "iqn.x at {address}: the peer does not speak iSCSI: it sent \"HTTP/1.1 400 Bad Request\""
        )),
        "{message}"
    );
    assert!(!message.contains("opcode"), "{message}");
    every_command_fails(&url, &[&address, "does not speak iSCSI"]);
}

#[test]
fn malformed_urls() {
    for (url, says) in [
        (
            "iscsi://127.0.0.1:99999/iqn.2026-11.io.riscsi.test:x/1",
            "99999",
        ),
        (
            "iscsi://127.0.0.1:3260/iqn.2026-11.io.riscsi.test:x/not-a-lun",
            "not-a-lun",
        ),
        ("iscsi://127.0.0.1:3260", "names no volume"),
        ("iscsi://[::1/iqn.2026-11.io.riscsi.test:x/1", "[::1"),
        ("iscsi://", "empty host"),
        (
            "iscsi://127.0.0.1/iqn.2026-11.io.riscsi.test:x/1?header_digest=md5",
            "md5",
        ),
    ] {
        every_command_fails(url, &[says]);
    }
    for portal in ["127.0.0.1:notaport", "iscsi://", "[::1"] {
        let out = riscsi(["discover", portal]).run();
        assert_eq!(out.status.code(), Some(1), "{portal}: {}", out.stderr);
        out.one_error_line();
    }
    // Two local sides: not a URL at all where one is needed.
    let out = riscsi(["copy", "a.img", "b.img"]).run();
    assert!(out.one_error_line().contains("iscsi://"));
}
