//! The Cinder connection_info a fixture writes, in both forms.

use std::fs;

use serde_json::Value;

use riscsi_tests::prelude::*;
use riscsi_tests::{Result, temp_dir};

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn both_forms_describe_the_fixture() -> Result<()> {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .chap("gina", "gina-secret-1")
        .discovery_chap("finder", "finder-secret")
        .start()?;
    let dir = temp_dir("ci-test")?;
    let files = tgt.write_connection_info(dir.path())?;
    let parse = |path| -> Value {
        serde_json::from_str(&fs::read_to_string(path).expect("written")).expect("valid JSON")
    };

    let lists = parse(&files.lists);
    assert_eq!(lists, tgt.connection_info(ConnectionInfoForm::Lists));
    assert_eq!(lists["driver_volume_type"], "iscsi");
    let data = &lists["data"];
    assert_eq!(strings(&data["target_portals"]), tgt.portal_strings());
    assert!(
        strings(&data["target_portals"]).contains(&format!("[::1]:{}", tgt.portals()[2].port()))
    );
    assert_eq!(strings(&data["target_iqns"]), vec![tgt.iqn().to_owned(); 3]);
    assert_eq!(data["target_luns"], serde_json::json!([1, 1, 1]));
    assert_eq!(data["target_portal"], tgt.portal_strings()[0]);
    assert_eq!(data["target_iqn"], tgt.iqn());
    assert_eq!(data["target_lun"], 1);
    assert_eq!(data["auth_method"], "CHAP");
    assert_eq!(data["auth_username"], "gina");
    assert_eq!(data["auth_password"], "gina-secret-1");
    assert_eq!(data["discovery_auth_username"], "finder");
    assert_eq!(data["discovery_auth_password"], "finder-secret");

    let singular = parse(&files.singular);
    let data = singular["data"].as_object().expect("data object");
    assert_eq!(data["target_portal"], tgt.portal_strings()[0]);
    assert_eq!(data["target_iqn"], tgt.iqn());
    assert_eq!(data["target_lun"], 1);
    assert_eq!(data["auth_username"], "gina");
    for key in ["target_portals", "target_iqns", "target_luns"] {
        assert!(!data.contains_key(key), "{key} in the singular form");
    }
    Ok(())
}

#[test]
fn no_auth_keys_without_chap_and_istgt_uses_lun_zero() -> Result<()> {
    let istgt = Istgt::builder().portal("127.0.0.1").portal("::1").start()?;
    let json = istgt.connection_info(ConnectionInfoForm::Lists);
    let data = json["data"].as_object().expect("data object");
    assert_eq!(data["target_luns"], serde_json::json!([0, 0]));
    assert_eq!(strings(&data["target_portals"]), istgt.portal_strings());
    for key in data.keys() {
        assert!(!key.contains("auth"), "{key} present without CHAP");
    }
    Ok(())
}
