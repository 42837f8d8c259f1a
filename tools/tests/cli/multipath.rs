//! Every VOLUME argument may be `@FILE` (connection_info JSON, `@-` for
//! stdin): inquiry lists the paths with role and state (IPv6 included),
//! copy and bench run over the multipath volume, and the multipath flags
//! reach it.

use std::net::SocketAddr;

use riscsi_tests::prelude::*;
use riscsi_tests::{IscsiPath, free_port, unique_loopback_v4};

use crate::support::{assert_same_bytes, payload, riscsi, sha256, write_file};

fn write_ci(dir: &tempfile::TempDir, tgt: &Tgt, extra: Option<IscsiPath>) -> String {
    let mut info = tgt.connection_info_spec();
    info.others.extend(extra);
    let path = write_file(
        dir,
        "ci.json",
        info.to_json(ConnectionInfoForm::Lists)
            .to_string()
            .as_bytes(),
    );
    format!("@{}", path.display())
}

#[test]
fn inquiry_lists_every_path_with_role_and_state() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("::1")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let ip = std::net::IpAddr::V4(unique_loopback_v4());
    let dead = SocketAddr::new(ip, free_port(ip).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let volume = write_ci(
        &dir,
        &tgt,
        Some(IscsiPath {
            portal: dead,
            iqn: tgt.iqn().to_owned(),
            lun: tgt.first_lun().number,
        }),
    );
    let report = riscsi(["inquiry", &volume, "--json", "--policy", "round-robin"])
        .run()
        .success();
    let json = report.json();
    let paths = json["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 3, "{json:#}");
    assert_eq!(paths[0]["role"], "main");
    assert_eq!(paths[0]["state"], "active");
    let v6 = format!("[::1]:{}", tgt.portals()[1].port());
    assert_eq!(paths[1]["portal"], v6.as_str());
    assert_eq!(paths[1]["role"], "secondary");
    assert!(
        matches!(paths[1]["state"].as_str(), Some("active" | "reconnecting")),
        "{json:#}"
    );
    assert_eq!(paths[2]["portal"], dead.to_string().as_str());
    assert_eq!(paths[2]["state"], "reconnecting");
    assert!(
        paths[2]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );
    assert_eq!(json["policy"], "round-robin");
    assert!(
        json["path_origin"]
            .as_str()
            .unwrap()
            .contains("3 paths from target_portals")
    );
    let human = riscsi(["inquiry", &volume]).run().success().stdout_text();
    assert!(
        human.contains(&format!("{v6} {} LUN 1 (secondary", tgt.iqn())),
        "{human}"
    );
}

#[test]
fn copy_and_bench_run_over_the_multipath_volume() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(8 << 20))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let volume = write_ci(&dir, &tgt, None);
    let data = payload(41, 4 << 20);
    let input = write_file(&dir, "in.img", &data);
    riscsi(["copy", input.to_str().unwrap(), &volume])
        .run()
        .success();
    assert_same_bytes(
        &tgt.first_lun().read_backing(0, data.len()).unwrap(),
        &data,
        "on the LU",
    );
    let out = riscsi(["copy", &volume, "-", "--length", "4m"])
        .run()
        .success();
    assert_eq!(sha256(&out.stdout), sha256(&data));
    // The connection_info on stdin.
    let ci = std::fs::read(volume.strip_prefix('@').unwrap()).unwrap();
    let out = riscsi(["copy", "@-", "-", "--length", "1m"])
        .stdin_pipe(ci)
        .run()
        .success();
    assert_eq!(out.stdout, data[..1 << 20]);
    let bench = riscsi([
        "bench",
        &volume,
        "--seconds",
        "1",
        "--pattern",
        "rand-read",
        "--block",
        "4k",
        "--json",
        "--policy",
        "round-robin",
    ])
    .run()
    .success();
    assert!(bench.json()["iops"].as_f64().unwrap() > 0.0);
}
