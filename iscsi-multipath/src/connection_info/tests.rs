use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::path::PathSpec;

const PASSWORD: &str = "hunter2-very-secret";
const DISCOVERY_PASSWORD: &str = "disc0very-secret";

fn parse(v: Value) -> Result<ConnectionInfo, ConnectionInfoError> {
    ConnectionInfo::parse(&v.to_string())
}

fn err(v: Value) -> ConnectionInfoError {
    parse(v).expect_err("accepted")
}

/// The error's message, checked never to carry either password.
fn message(v: Value) -> String {
    let m = err(v).to_string();
    assert!(
        !m.contains(PASSWORD) && !m.contains(DISCOVERY_PASSWORD),
        "{m}"
    );
    assert!(!m.contains('\n'), "one line: {m}");
    m
}

/// A valid singular-form data object, with both CHAPs.
fn data() -> Value {
    json!({
        "target_discovered": false,
        "target_portal": "10.0.0.1:3260",
        "target_iqn": "iqn.2010-10.org.openstack:volume-1",
        "target_lun": 1,
        "auth_method": "CHAP",
        "auth_username": "user",
        "auth_password": PASSWORD,
        "discovery_auth_method": "CHAP",
        "discovery_auth_username": "duser",
        "discovery_auth_password": DISCOVERY_PASSWORD,
        "volume_id": "6f2c3b0e-5d1e-4c4e-9f39-000000000001",
        "access_mode": "rw",
        "encrypted": false,
        "qos_specs": null,
        "cacheable": false,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn lists() -> Value {
    json!({
        "target_portals": ["10.0.0.1:3260", "10.0.0.2:3260"],
        "target_iqns": ["iqn.2014-2.org.example:vol1-1", "iqn.2014-2.org.example:vol1-2"],
        "target_luns": [1, 2],
        "target_portal": "10.0.0.1:3260",
        "target_iqn": "iqn.2014-2.org.example:vol1-1",
        "target_lun": 1,
    })
}

fn given(info: &ConnectionInfo) -> Vec<PathSpec> {
    match info.path_plan() {
        PathPlan::Given { paths, .. } => paths,
        other => panic!("expected the lists form, got {other:?}"),
    }
}

fn path(portal: &str, iqn: &str, lun: u16) -> PathSpec {
    PathSpec::new(portal.parse().unwrap(), iqn, lun)
}

// --- the two shapes ---

#[test]
fn whole_and_bare_forms_are_the_same() {
    let whole = parse(json!({"driver_volume_type": "iscsi", "data": data()})).unwrap();
    let bare = parse(data()).unwrap();
    assert_eq!(whole, bare);
    assert_eq!(
        bare.path_plan(),
        PathPlan::Discover(path(
            "10.0.0.1:3260",
            "iqn.2010-10.org.openstack:volume-1",
            1
        ))
    );
    assert_eq!(bare.access_mode(), AccessMode::ReadWrite);
    assert!(!bare.read_only() && !bare.discard());
    assert_eq!(bare.target_discovered(), Some(false));
    assert_eq!(
        bare.volume_id(),
        Some("6f2c3b0e-5d1e-4c4e-9f39-000000000001")
    );
    assert_eq!(bare.qos_specs(), None);
    assert_eq!(bare.cacheable(), Some(false));
}

#[test]
fn serde_deserialize_validates_too() {
    let info: ConnectionInfo =
        serde_json::from_value(json!({"driver_volume_type": "iscsi", "data": lists()})).unwrap();
    assert_eq!(given(&info).len(), 2);
    let e = serde_json::from_value::<ConnectionInfo>(with(data(), "target_lun", json!(-1)))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "target_lun is -1: a LUN cannot be negative");
}

#[test]
fn envelope_without_driver_volume_type_is_accepted() {
    assert!(parse(json!({"data": data()})).is_ok());
}

#[test]
fn other_driver_volume_type_is_refused() {
    assert_eq!(
        message(json!({"driver_volume_type": "rbd", "data": data()})),
        r#"driver_volume_type is "rbd": riscsi attaches only "iscsi" volumes"#
    );
    assert_eq!(
        message(json!({"driver_volume_type": 3, "data": data()})),
        "driver_volume_type must be a string, found a number"
    );
}

#[test]
fn envelope_needs_an_object_as_data() {
    assert_eq!(
        message(json!({"driver_volume_type": "iscsi"})),
        "data is missing (driver_volume_type is given)"
    );
    assert_eq!(
        message(json!({"driver_volume_type": "iscsi", "data": [1]})),
        "data must be an object, found an array"
    );
}

#[test]
fn not_json_names_the_position() {
    let e = ConnectionInfo::parse("{\"target_portal\": \n  \"10.0.0.1:3260\",, }").unwrap_err();
    let ConnectionInfoError::NotJson { line, column, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!((*line, *column), (2, 19));
    assert_eq!(
        e.to_string(),
        "connection_info is not JSON: key must be a string at line 2 column 19"
    );
    let e = ConnectionInfo::parse("").unwrap_err().to_string();
    assert_eq!(
        e,
        "connection_info is not JSON: EOF while parsing a value at line 1 column 0"
    );
    // The password in a broken document does not come back.
    let broken = format!(r#"{{"auth_password": "{PASSWORD}" "#);
    let e = ConnectionInfo::parse(&broken).unwrap_err().to_string();
    assert!(
        e.starts_with("connection_info is not JSON: ") && !e.contains(PASSWORD),
        "{e}"
    );
}

#[test]
fn non_object_is_refused() {
    assert_eq!(
        message(json!([1, 2])),
        "connection_info must be a JSON object, found an array"
    );
    assert_eq!(
        message(json!("x")),
        "connection_info must be a JSON object, found a string"
    );
}

// --- the lists form ---

#[test]
fn lists_form_every_index_is_a_path() {
    let info = parse(lists()).unwrap();
    assert_eq!(
        given(&info),
        vec![
            path("10.0.0.1:3260", "iqn.2014-2.org.example:vol1-1", 1),
            path("10.0.0.2:3260", "iqn.2014-2.org.example:vol1-2", 2),
        ]
    );
}

#[test]
fn main_is_the_entry_on_target_portal_compared_as_portals() {
    let v = with(lists(), "target_portal", json!("10.0.0.2:3260,1"));
    let info = parse(v).unwrap();
    assert_eq!(
        info.main_path(),
        &path("10.0.0.2:3260", "iqn.2014-2.org.example:vol1-2", 2)
    );
    assert_eq!(given(&info)[0], *info.main_path());
    assert_eq!(given(&info)[1].portal.to_string(), "10.0.0.1:3260");
    // target_portal with the default port left out is the same portal.
    let v = with(lists(), "target_portal", json!("10.0.0.2"));
    assert_eq!(
        parse(v).unwrap().main_path().portal.to_string(),
        "10.0.0.2:3260"
    );
}

#[test]
fn main_is_index_0_when_target_portal_matches_nothing_or_is_absent() {
    let v = with(lists(), "target_portal", json!("10.9.9.9:3260"));
    assert_eq!(
        parse(v).unwrap().main_path().portal.to_string(),
        "10.0.0.1:3260"
    );
    let v = without(
        without(without(lists(), "target_portal"), "target_iqn"),
        "target_lun",
    );
    assert_eq!(
        parse(v).unwrap().main_path().portal.to_string(),
        "10.0.0.1:3260"
    );
}

#[test]
fn missing_target_luns_uses_target_lun_for_every_portal() {
    let v = with(without(lists(), "target_luns"), "target_lun", json!("5"));
    let paths = given(&parse(v).unwrap());
    assert!(paths.iter().all(|p| p.lun == 5), "{paths:?}");
    assert_eq!(
        message(without(without(lists(), "target_luns"), "target_lun")),
        "target_lun is missing (target_portals is given without target_luns)"
    );
}

#[test]
fn list_lengths_must_agree_never_truncated() {
    let v = with(
        lists(),
        "target_iqns",
        json!(["iqn.a:1", "iqn.a:2", "iqn.a:3"]),
    );
    let e = err(v);
    assert_eq!(
        e,
        ConnectionInfoError::ListLengths {
            first: "target_portals",
            first_len: 2,
            second: "target_iqns",
            second_len: 3,
        }
    );
    assert_eq!(
        e.to_string(),
        "target_portals has 2 entries but target_iqns has 3: the lists are parallel, one path per index"
    );
    let v = with(lists(), "target_luns", json!([1]));
    assert_eq!(
        message(v),
        "target_portals has 2 entries but target_luns has 1: the lists are parallel, one path per index"
    );
}

#[test]
fn a_list_without_its_partner_is_refused() {
    assert_eq!(
        message(without(lists(), "target_iqns")),
        "target_iqns is missing (target_portals is given)"
    );
    assert_eq!(
        message(without(lists(), "target_portals")),
        "target_portals is missing (target_iqns is given)"
    );
    let v = with(data(), "target_luns", json!([1]));
    assert_eq!(
        message(v),
        "target_portals is missing (target_luns is given)"
    );
}

#[test]
fn empty_lists_are_refused() {
    let v = json!({"target_portals": [], "target_iqns": [], "target_lun": 0});
    assert_eq!(message(v), "target_portals is empty: no path to log in to");
}

#[test]
fn bad_portal_names_the_portal_and_the_index() {
    let v = with(
        lists(),
        "target_portals",
        json!(["10.0.0.1:3260", "10.0.0.2:99999"]),
    );
    assert_eq!(
        message(v),
        "target_portals[1]: invalid portal \"10.0.0.2:99999\": invalid TargetAddress \"10.0.0.2:99999\": port is not a number in 1..=65535"
    );
    let v = with(data(), "target_portal", json!("[fd00::1"));
    let m = message(v);
    assert!(
        m.starts_with("target_portal: ") && m.contains("[fd00::1"),
        "{m}"
    );
    let v = with(lists(), "target_portals", json!(["10.0.0.1:3260", 7]));
    assert_eq!(
        message(v),
        "target_portals[1] must be a string, found a number"
    );
    let v = with(lists(), "target_portals", json!("10.0.0.1:3260"));
    assert_eq!(message(v), "target_portals must be a list, found a string");
}

#[test]
fn empty_iqn_is_refused() {
    let v = with(lists(), "target_iqns", json!(["iqn.a:1", ""]));
    assert_eq!(message(v), "target_iqns[1] is empty");
    assert_eq!(
        message(with(data(), "target_iqn", json!(" "))),
        "target_iqn is empty"
    );
}

#[test]
fn ipv6_portals_parse_compare_and_print() {
    let v = json!({
        "target_portals": ["[fd00::1]:3260", "[fd00::2]:3261,2", "10.0.0.3:3260"],
        "target_iqns": ["iqn.t:a", "iqn.t:a", "iqn.t:a"],
        "target_luns": [0, 0, 0],
        "target_portal": "[fd00:0:0::2]:3261",
    });
    let info = parse(v).unwrap();
    let shown: Vec<String> = given(&info).iter().map(|p| p.portal.to_string()).collect();
    assert_eq!(shown, ["[fd00::2]:3261", "[fd00::1]:3260", "10.0.0.3:3260"]);
    let single = parse(with(data(), "target_portal", json!("[::1]:3262"))).unwrap();
    assert_eq!(single.main_path().portal.to_string(), "[::1]:3262");
    assert_eq!(
        single.main_path().to_string(),
        "iqn.2010-10.org.openstack:volume-1 at [::1]:3262 LUN 1"
    );
}

// --- LUNs ---

#[test]
fn luns_as_numbers_or_numeric_strings() {
    for (lun, expected) in [
        (json!(0), 0),
        (json!("0"), 0),
        (json!(255), 255),
        (json!(" 256 "), 256),
        (json!(16383), 16383),
        (json!("16383"), 16383),
        (json!(3.0), 3),
    ] {
        let info = parse(with(data(), "target_lun", lun.clone())).unwrap();
        assert_eq!(info.main_path().lun, expected, "{lun}");
    }
    let v = with(lists(), "target_luns", json!(["1", 2]));
    let luns: Vec<u16> = given(&parse(v).unwrap()).iter().map(|p| p.lun).collect();
    assert_eq!(luns, [1, 2]);
}

#[test]
fn max_lun_is_what_the_lun_field_encodes() {
    use iscsi_proto::pdu::Lun;
    assert!(Lun::from_number(MAX_LUN).is_some());
    assert!(Lun::from_number(MAX_LUN + 1).is_none());
}

#[test]
fn lun_out_of_range() {
    for (lun, shown) in [
        (json!(16384), "16384"),
        (json!("16384"), "\"16384\""),
        (json!(65536), "65536"),
        (json!(u64::MAX), "18446744073709551615"),
        (
            json!("99999999999999999999999"),
            "\"99999999999999999999999\"",
        ),
        (json!(1e30), "1e+30"),
    ] {
        let m = message(with(data(), "target_lun", lun));
        assert_eq!(
            m,
            format!(
                "target_lun is {shown}: a LUN must be in 0..=16383 (SAM peripheral/flat addressing)"
            )
        );
    }
    let v = with(lists(), "target_luns", json!([1, 20000]));
    assert!(message(v).starts_with("target_luns[1] is 20000: a LUN must be in 0..=16383"));
}

#[test]
fn a_float_lun_is_read_and_quoted_exactly() {
    // Found by the connection_info fuzz target: serde_json's default float
    // parser reads this text 1 ULP off, so the error quoted another number
    // than the one given, and from_value on the document disagreed with
    // parse on its text.
    let text = "1.1631898716904038e-28";
    let given: f64 = text.parse().unwrap();
    let doc =
        format!(r#"{{"target_portal":"10.0.0.1:3260","target_iqn":"iqn.x","target_lun":{text}}}"#);
    let e = ConnectionInfo::parse(&doc).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("target_lun is {text}: a LUN must be a whole number")
    );
    let value = with(
        json!({"target_portal": "10.0.0.1:3260", "target_iqn": "iqn.x"}),
        "target_lun",
        json!(given),
    );
    assert_eq!(ConnectionInfo::from_value(&value), Err(e));
}

#[test]
fn negative_fractional_and_non_numeric_luns() {
    let cases = [
        (json!(-1), "target_lun is -1: a LUN cannot be negative"),
        (
            json!("-3"),
            "target_lun is \"-3\": a LUN cannot be negative",
        ),
        (json!(-2.0), "target_lun is -2.0: a LUN cannot be negative"),
        (
            json!(1.5),
            "target_lun is 1.5: a LUN must be a whole number",
        ),
        (
            json!("1.5"),
            "target_lun is \"1.5\": a LUN must be a whole number",
        ),
        (
            json!("one"),
            "target_lun is \"one\": a LUN must be a number",
        ),
        (json!(""), "target_lun is \"\": a LUN must be a number"),
        (
            json!(true),
            "target_lun must be a number or a numeric string, found a boolean",
        ),
        (
            json!([1]),
            "target_lun must be a number or a numeric string, found an array",
        ),
    ];
    for (lun, expected) in cases {
        assert_eq!(message(with(data(), "target_lun", lun)), expected);
    }
    let v = with(lists(), "target_luns", json!([1, null]));
    assert_eq!(
        message(v),
        "target_luns[1] must be a number or a numeric string, found null"
    );
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "9".repeat(30) + &"x".repeat(100);
    let m = message(with(data(), "target_lun", json!(long)));
    assert!(m.len() < 120 && m.contains("...\""), "{m}");
}

// --- missing keys ---

#[test]
fn missing_target_keys() {
    let bare = json!({"auth_method": "CHAP", "auth_username": "u", "auth_password": PASSWORD});
    assert_eq!(
        message(bare),
        "connection_info names no target: it needs target_portals and target_iqns, or target_portal and target_iqn"
    );
    assert_eq!(
        message(without(data(), "target_iqn")),
        "target_iqn is missing (target_portal is given)"
    );
    assert_eq!(
        message(without(data(), "target_portal")),
        "target_portal is missing (target_iqn is given)"
    );
    assert_eq!(
        message(without(data(), "target_lun")),
        "target_lun is missing (target_portal and target_iqn are given)"
    );
    // null counts as absent.
    assert_eq!(
        message(with(data(), "target_lun", Value::Null)),
        "target_lun is missing (target_portal and target_iqn are given)"
    );
}

// --- authentication ---

#[test]
fn session_and_discovery_chap() {
    let info = parse(data()).unwrap();
    let chap = info.session_chap().unwrap();
    assert_eq!(chap.initiator.username, "user");
    assert_eq!(chap.initiator.secret.expose(), PASSWORD.as_bytes());
    assert_eq!(chap.target, None);
    let d = info.discovery_chap().unwrap();
    assert_eq!(d.initiator.username, "duser");
    assert_eq!(d.initiator.secret.expose(), DISCOVERY_PASSWORD.as_bytes());
    assert_eq!(info.auth().unwrap().username, "user");
    assert_eq!(info.discovery_auth().unwrap().username, "duser");
}

#[test]
fn no_auth_method_means_no_chap() {
    for method in [Value::Null, json!(""), json!("None"), json!("none")] {
        let v = with(
            with(data(), "auth_method", method.clone()),
            "discovery_auth_method",
            method,
        );
        let info = parse(v).unwrap();
        assert_eq!(info.session_chap(), None);
        assert_eq!(info.discovery_chap(), None);
    }
    let v = without(without(data(), "auth_method"), "discovery_auth_method");
    assert_eq!(parse(v).unwrap().auth(), None);
    assert!(
        parse(with(data(), "auth_method", json!("chap")))
            .unwrap()
            .auth()
            .is_some()
    );
}

#[test]
fn other_auth_methods_are_refused() {
    assert_eq!(
        message(with(data(), "auth_method", json!("KRB5"))),
        r#"auth_method is "KRB5": riscsi supports CHAP or no authentication"#
    );
    assert_eq!(
        message(with(data(), "discovery_auth_method", json!("SRP"))),
        r#"discovery_auth_method is "SRP": riscsi supports CHAP or no authentication"#
    );
    assert_eq!(
        message(with(data(), "auth_method", json!(true))),
        "auth_method must be a string, found a boolean"
    );
}

#[test]
fn chap_needs_user_and_password() {
    let cases = [
        (
            without(data(), "auth_username"),
            "auth_method is CHAP but auth_username is missing or empty",
        ),
        (
            with(data(), "auth_username", json!("")),
            "auth_method is CHAP but auth_username is missing or empty",
        ),
        (
            without(data(), "auth_password"),
            "auth_method is CHAP but auth_password is missing or empty",
        ),
        (
            with(data(), "auth_password", json!("")),
            "auth_method is CHAP but auth_password is missing or empty",
        ),
        (
            without(data(), "discovery_auth_password"),
            "discovery_auth_method is CHAP but discovery_auth_password is missing or empty",
        ),
        (
            without(data(), "discovery_auth_username"),
            "discovery_auth_method is CHAP but discovery_auth_username is missing or empty",
        ),
    ];
    for (v, expected) in cases {
        assert_eq!(message(v), expected);
    }
}

#[test]
fn a_password_of_the_wrong_type_is_not_echoed() {
    let v = with(data(), "auth_password", json!([PASSWORD]));
    assert_eq!(message(v), "auth_password must be a string, found an array");
    let v = with(
        data(),
        "discovery_auth_password",
        json!({"p": DISCOVERY_PASSWORD}),
    );
    assert_eq!(
        message(v),
        "discovery_auth_password must be a string, found an object"
    );
}

#[test]
fn debug_never_shows_passwords() {
    let mut with_lists = lists();
    with_lists["auth_method"] = json!("CHAP");
    with_lists["auth_username"] = json!("user");
    with_lists["auth_password"] = json!(PASSWORD);
    for info in [parse(data()).unwrap(), parse(with_lists).unwrap()] {
        let shown = format!("{info:?} {info:#?}");
        assert!(
            !shown.contains(PASSWORD) && !shown.contains(DISCOVERY_PASSWORD),
            "{shown}"
        );
        assert!(
            shown.contains("user") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}

// --- the other keys ---

#[test]
fn access_mode_rw_ro_or_error() {
    assert_eq!(
        parse(without(data(), "access_mode")).unwrap().access_mode(),
        AccessMode::ReadWrite
    );
    let ro = parse(with(data(), "access_mode", json!("ro"))).unwrap();
    assert!(ro.read_only());
    assert_eq!(
        message(with(data(), "access_mode", json!("wo"))),
        r#"access_mode is "wo": it must be "rw" or "ro""#
    );
    assert_eq!(
        message(with(data(), "access_mode", json!(1))),
        "access_mode must be a string, found a number"
    );
}

#[test]
fn discard_is_a_boolean() {
    assert!(
        parse(with(data(), "discard", json!(true)))
            .unwrap()
            .discard()
    );
    assert!(
        !parse(with(data(), "discard", Value::Null))
            .unwrap()
            .discard()
    );
    assert_eq!(
        message(with(data(), "discard", json!("yes"))),
        "discard must be a boolean, found a string"
    );
}

#[test]
fn encrypted_true_is_refused() {
    assert_eq!(
        message(with(data(), "encrypted", json!(true))),
        "the volume is encrypted (encrypted: true) and riscsi does not decrypt: attach it through a host-side encryptor instead"
    );
    assert_eq!(
        err(with(data(), "encrypted", json!(true))),
        ConnectionInfoError::Encrypted
    );
    assert!(parse(with(data(), "encrypted", json!(false))).is_ok());
    assert_eq!(
        message(with(data(), "encrypted", json!("true"))),
        "encrypted must be a boolean, found a string"
    );
}

#[test]
fn informational_keys_are_kept() {
    let v = with(data(), "qos_specs", json!({"total_iops_sec": "1000"}));
    let v = with(
        with(v, "cacheable", json!(true)),
        "target_discovered",
        json!(true),
    );
    let info = parse(v).unwrap();
    assert_eq!(info.qos_specs(), Some(&json!({"total_iops_sec": "1000"})));
    assert_eq!(info.cacheable(), Some(true));
    assert_eq!(info.target_discovered(), Some(true));
    // Keys riscsi does not know (drivers add their own) are ignored.
    assert!(parse(with(data(), "device_path", json!("/dev/sdx"))).is_ok());
}

// --- robustness ---

/// Arbitrary JSON values, biased towards the contract's keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9 .:\\[\\],a-f-]{0,24}".prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            Just("driver_volume_type".to_owned()),
            Just("data".to_owned()),
            Just("target_portals".to_owned()),
            Just("target_iqns".to_owned()),
            Just("target_luns".to_owned()),
            Just("target_portal".to_owned()),
            Just("target_iqn".to_owned()),
            Just("target_lun".to_owned()),
            Just("auth_method".to_owned()),
            Just("auth_username".to_owned()),
            Just("auth_password".to_owned()),
            Just("discovery_auth_method".to_owned()),
            Just("access_mode".to_owned()),
            Just("encrypted".to_owned()),
            Just("discard".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Puts the passwords where passwords belong, next to whatever else is there.
fn plant_passwords(v: &mut Value, chap: bool) {
    fn plant(m: &mut serde_json::Map<String, Value>, chap: bool) {
        m.insert("auth_password".into(), json!(PASSWORD));
        m.insert("discovery_auth_password".into(), json!(PASSWORD));
        if chap {
            m.insert("auth_method".into(), json!("CHAP"));
        }
    }
    let Value::Object(top) = v else { return };
    plant(top, chap);
    if let Some(Value::Object(data)) = top.get_mut("data") {
        plant(data, chap);
    }
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_nor_leaks(mut v in json_value(), chap in any::<bool>()) {
        plant_passwords(&mut v, chap);
        if let Err(e) = ConnectionInfo::from_value(&v) {
            let m = e.to_string();
            prop_assert!(!m.contains(PASSWORD), "{}", m);
        }
        // And the same through the text path.
        let _ = ConnectionInfo::parse(&v.to_string());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let _ = ConnectionInfo::parse(&text);
    }

    #[test]
    fn mutated_documents_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let text = json!({"driver_volume_type": "iscsi", "data": data()}).to_string();
        let mut bytes = text.into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes)
            && let Err(e) = ConnectionInfo::parse(&text) {
                prop_assert!(!e.to_string().contains(PASSWORD));
            }
    }
}
