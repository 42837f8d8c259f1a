//! `riscsi inquiry`: the human report has every row, and `--json` agrees
//! with what the fixture exports (size, block size, serial, identity).

use std::collections::BTreeMap;

use riscsi_tests::portal_string;
use riscsi_tests::prelude::*;
use serde_json::Value;

use crate::support::{riscsi, volume_url};

/// Rows every report has, whatever the target.
const ROWS: &[&str] = &[
    "volume",
    "vendor",
    "product",
    "revision",
    "device type",
    "unit serial",
    "lu identity",
    "capacity",
    "blocks",
    "logical block size",
    "physical block size",
    "thin provisioning",
    "portal",
    "target",
    "tsih",
    "target portal group",
    "auth method",
    "header digest",
    "data digest",
    "max recv data segment",
    "max xmit data segment",
    "max burst length",
    "first burst length",
    "immediate data",
    "initial r2t",
    "max outstanding r2t",
];

/// `key: value` rows; repeated keys (designator) keep every value.
fn rows(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a `key: value` row: {line:?}"));
        rows.entry(key.to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    rows
}

fn one<'a>(rows: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match rows.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("row {key:?}: {other:?}"),
    }
}

#[test]
fn human_and_json_reports_match_the_fixture() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(8 << 20))
        .lun(LunSpec::new(16 << 20).block_size(4096))
        .start()
        .unwrap();
    let portal = tgt.portals()[0];
    for lun in &tgt.target().luns {
        let url = volume_url(portal, tgt.iqn(), lun.number);
        let human = riscsi(["inquiry", &url]).run().success();
        let rows = rows(&human.stdout_text());
        for key in ROWS {
            assert!(rows.contains_key(*key), "no {key:?} row in:\n{rows:#?}");
        }
        assert!(
            ["max transfer", "optimal transfer", "max unmap"]
                .iter()
                .all(|k| rows.contains_key(*k))
                || rows.contains_key("block limits"),
            "no block limits rows: {rows:#?}"
        );
        assert!(rows.contains_key("designator"), "{rows:#?}");
        assert_eq!(one(&rows, "vendor"), "IET");
        assert_eq!(one(&rows, "unit serial"), lun.scsi_sn);
        assert_eq!(one(&rows, "blocks"), lun.blocks().to_string());
        assert_eq!(one(&rows, "logical block size"), lun.block_size.to_string());
        assert!(
            one(&rows, "capacity").starts_with(&format!("{} bytes", lun.size)),
            "{rows:#?}"
        );
        assert_eq!(one(&rows, "target"), tgt.iqn());
        assert_eq!(one(&rows, "portal"), portal_string(portal));
        assert_eq!(one(&rows, "auth method"), "None");

        let report = riscsi(["inquiry", "--json", &url]).run().success().json();
        assert_eq!(report["vendor"], "IET");
        assert_eq!(report["capacity_bytes"], lun.size);
        assert_eq!(report["capacity_blocks"], lun.blocks());
        assert_eq!(report["logical_block_size"], lun.block_size);
        assert_eq!(report["unit_serial"], lun.scsi_sn.as_str());
        assert_eq!(report["session"]["target"], tgt.iqn());
        assert_eq!(report["session"]["portal"], portal_string(portal));
        assert_eq!(report["session"]["target_portal_group_tag"], 1);
        // tgtd's T10 vendor designator is the fixture's scsi_id (its first 8
        // characters in the vendor field), and the LU identity is the NAA 6
        // designator made of its hex digits, unique per LU (not the NAA 3 that
        // every tgtd gives its first LUN).
        let scsi_id = lun.scsi_id.as_deref().expect("tgtd LUNs have a scsi_id");
        let designators = report["designators"].as_array().unwrap();
        let t10 = format!("{} {}", &scsi_id[..8], &scsi_id[8..]);
        assert!(
            designators
                .iter()
                .any(|d| d["type"] == "t10" && d["value"] == t10.as_str()),
            "{t10} not among {designators:#?}"
        );
        let hex_digits: String = scsi_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase();
        let identity = report["lu_identity"].as_str().expect("an LU identity");
        assert!(
            identity.starts_with("naa.6") && identity.ends_with(&hex_digits),
            "{identity} is not the NAA 6 of {scsi_id}"
        );
        assert_eq!(identity, one(&rows, "lu identity"));
        assert_eq!(rows["designator"].len(), designators.len());
        assert!(report["physical_block_size"].as_u64().unwrap() >= u64::from(lun.block_size));
        assert!(matches!(report["provisioning"]["lbpme"], Value::Bool(_)));
    }
}

#[test]
fn istgt_4096_byte_lun() {
    let istgt = Istgt::builder()
        .lun(LunSpec::new(8 << 20).block_size(4096).scsi_sn("IST-CLI-4K"))
        .start()
        .unwrap();
    let lun = istgt.first_lun();
    let url = volume_url(istgt.portals()[0], istgt.iqn(), lun.number);
    let report = riscsi(["inquiry", "--json", &url]).run().success().json();
    assert_eq!(report["capacity_bytes"], 8 << 20);
    assert_eq!(report["logical_block_size"], 4096);
    assert_eq!(report["unit_serial"], "IST-CLI-4K");
    assert_eq!(report["session"]["target"], istgt.iqn());
}
