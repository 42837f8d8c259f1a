//! `connection_info`: [`ConnectionInfo::parse`] on arbitrary text (byte 0
//! even), and on documents built from the fuzzer's bytes (byte 0 odd): every
//! key of the contract, each absent, null or of any JSON kind, with values
//! drawn from near-valid vocabularies (portals, IQNs, LUNs at the edges of
//! the range, CHAP methods) or arbitrary, in the whole answer or bare.
//!
//! Passwords are recognisable: a built document's passwords start with
//! [`MARK`], a character no vocabulary uses. Asserted, beyond "no panic":
//! - a password (the `auth_password` and `discovery_auth_password` values
//!   of the object read, not the same keys nested deeper) that carries the
//!   mark and that no other string holds appears in no error message
//!   (Display or Debug) and in no Debug of the parsed value; where the mark
//!   appears only in passwords, no mark does either (a cut password
//!   included); a document that is not JSON gets an error quoting none of it;
//! - text, parsed value and serde all agree: a built document, its JSON
//!   text (compact or pretty) and serde accept the same documents with the
//!   same result, error messages included (`parse(text)`,
//!   `from_value(value)` and `serde_json::from_value`);
//! - what is accepted is usable: a LUN within `MAX_LUN`, a main path that
//!   leads the path plan, CHAP secrets equal to the passwords given.

use iscsi_multipath::{ConnectionInfo, ConnectionInfoError, MAX_LUN, PathPlan};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use serde_json::{Map, Number, Value, json};

/// Starts every password of a built document (U+1F511 KEY).
pub const MARK: char = '\u{1F511}';

const PASSWORD_KEYS: [&str; 2] = ["auth_password", "discovery_auth_password"];

/// The object the parser reads its keys from, as `unwrap_envelope` picks
/// it: `data` in the whole answer, else the document itself.
fn data_of(doc: &Value) -> &Value {
    doc.get("data").filter(|d| d.is_object()).unwrap_or(doc)
}

/// Every string in `v` (keys too) except the values of the password keys
/// of `data`. Only those are passwords by the contract: the same key names
/// nested deeper (in `qos_specs`, say, which is kept and shown as given)
/// or outside `data` hold ordinary strings.
fn other_strings<'a>(v: &'a Value, data: &Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| other_strings(x, data, out)),
        Value::Object(m) => {
            let is_data = std::ptr::eq(v, data);
            for (k, x) in m {
                out.push(k);
                if !(is_data && PASSWORD_KEYS.contains(&k.as_str())) {
                    other_strings(x, data, out);
                }
            }
        }
        _ => {}
    }
}

/// Whether the mark, wherever it appears in `doc`, is only in passwords.
fn mark_only_in_passwords(doc: &Value) -> bool {
    let mut others = Vec::new();
    other_strings(doc, data_of(doc), &mut others);
    !others.iter().any(|s| s.contains(MARK))
}

/// The marked passwords of `doc` that must never be shown, even where the
/// mark is elsewhere too: those whose text no other string of the document
/// holds (where one does, showing that string shows it, rightly).
fn secrets(doc: &Value) -> Vec<&str> {
    let data = data_of(doc);
    let mut others = Vec::new();
    other_strings(doc, data, &mut others);
    PASSWORD_KEYS
        .iter()
        .filter_map(|k| data.get(*k).and_then(Value::as_str))
        .filter(|p| p.contains(MARK) && !others.iter().any(|s| s.contains(p)))
        .collect()
}

fn no_mark(what: &str, text: &str) {
    assert!(!text.contains(MARK), "a password in {what}: {text}");
}

/// Neither a secret nor its Debug escaping in `text`.
fn no_secret(secrets: &[&str], what: &str, text: &str) {
    for p in secrets {
        let escaped = format!("{p:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        assert!(
            !text.contains(p) && !text.contains(escaped),
            "a password in {what}: {text}"
        );
    }
}

/// The checks on one document's outcome.
fn check(doc: Option<&Value>, result: &Result<ConnectionInfo, ConnectionInfoError>) {
    // Guarded: no mark may show at all (a cut password included).
    let guarded = doc.is_none_or(mark_only_in_passwords);
    let secrets = doc.map(secrets).unwrap_or_default();
    let shown = |what: &str, text: &str| {
        if guarded {
            no_mark(what, text);
        }
        no_secret(&secrets, what, text);
    };
    match result {
        Err(e) => {
            if matches!(e, ConnectionInfoError::NotJson { .. }) {
                no_mark("an error", &e.to_string());
            }
            shown("an error", &e.to_string());
            shown("an error's Debug", &format!("{e:?}"));
            assert!(!e.to_string().contains('\n'), "a two-line error: {e}");
        }
        Ok(info) => {
            shown("a ConnectionInfo's Debug", &format!("{info:?}"));
            shown("CHAP's Debug", &format!("{:?}", info.session_chap()));
            assert!(info.main_path().lun <= MAX_LUN);
            match info.path_plan() {
                PathPlan::Given { paths, .. } => {
                    assert_eq!(paths.first(), Some(info.main_path()), "main path not first");
                    assert!(paths.iter().all(|p| p.lun <= MAX_LUN && !p.iqn.is_empty()));
                }
                PathPlan::Discover(path) => assert_eq!(&path, info.main_path()),
            }
            if let Some(doc) = doc {
                let data = data_of(doc);
                for (key, chap) in [
                    ("auth_password", info.auth()),
                    ("discovery_auth_password", info.discovery_auth()),
                ] {
                    if let Some(chap) = chap {
                        let given = data.get(key).and_then(Value::as_str).unwrap_or_default();
                        assert_eq!(chap.secret.expose(), given.as_bytes(), "{key} changed");
                    }
                }
            }
        }
    }
}

/// Raw mode: arbitrary text.
pub fn run_text(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let result = ConnectionInfo::parse(&text);
    let doc = serde_json::from_str::<Value>(&text).ok();
    if let Some(doc) = &doc {
        assert_eq!(
            ConnectionInfo::from_value(doc),
            result,
            "parse and from_value disagree"
        );
    }
    check(doc.as_ref(), &result);
}

fn pick<'a>(u: &mut Unstructured<'_>, options: &[&'a str]) -> ArbResult<&'a str> {
    Ok(options[u.choose_index(options.len())?])
}

/// A short arbitrary string (possibly with the mark: then the checks
/// stand down for that document, which is right).
fn any_string(u: &mut Unstructured<'_>) -> ArbResult<String> {
    let s: String = u.arbitrary()?;
    Ok(s.chars().take(48).collect())
}

const PORTALS: &[&str] = &[
    "10.0.0.1:3260",
    "10.0.0.2:3260,1",
    "[fe80::1]:3260",
    "[::1]:3261",
    "host.example:3260",
    "10.0.0.1",
    "[::1]",
    ":3260",
    "10.0.0.1:99999",
    "",
];
const IQNS: &[&str] = &[
    "iqn.2010-10.org.openstack:volume-1",
    "iqn.2010-10.org.openstack:volume-2",
    "eui.0123456789abcdef",
    "",
];
const LUN_TEXT: &[&str] = &[
    "0", "1", " 2 ", "1.0", "1.5", "-1", "16383", "16384", "1e3", "x",
];
const METHODS: &[&str] = &["CHAP", "chap", " CHAP ", "None", "none", "", "PAP"];

/// A number near the LUN range's edges, or any.
fn number(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => json!(pick_int(u)?),
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!(u.arbitrary::<u64>()?),
        _ => Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
    })
}

fn pick_int(u: &mut Unstructured<'_>) -> ArbResult<i64> {
    let options = [0, 1, 2, 0x3fff, 0x4000, 65535, 65536, -1, i64::MIN];
    Ok(options[u.choose_index(options.len())?])
}

/// A value for `key`: absent (`None`), or any JSON kind, mostly near-valid.
fn value_for(u: &mut Unstructured<'_>, key: &str, depth: u8) -> ArbResult<Option<Value>> {
    let choice = u.int_in_range(0..=9u8)?;
    let vocab = |u: &mut Unstructured<'_>| -> ArbResult<Value> {
        Ok(match key {
            "target_portal" => json!(pick(u, PORTALS)?),
            "target_iqn" => json!(pick(u, IQNS)?),
            "target_lun" => {
                if u.arbitrary()? {
                    json!(pick(u, LUN_TEXT)?)
                } else {
                    number(u)?
                }
            }
            "target_portals" | "target_iqns" | "target_luns" => {
                let single = match key {
                    "target_portals" => "target_portal",
                    "target_iqns" => "target_iqn",
                    _ => "target_lun",
                };
                let len = u.int_in_range(0..=3usize)?;
                let mut list = Vec::with_capacity(len);
                for _ in 0..len {
                    list.push(value_for(u, single, depth)?.unwrap_or(Value::Null));
                }
                Value::Array(list)
            }
            "auth_method" | "discovery_auth_method" => json!(pick(u, METHODS)?),
            "auth_username" | "discovery_auth_username" => json!(pick(u, &["user", "", "u"])?),
            "auth_password" | "discovery_auth_password" => {
                json!(format!("{MARK}{}", any_string(u)?))
            }
            "access_mode" => json!(pick(u, &["rw", "ro", "wo", ""])?),
            "driver_volume_type" => json!(pick(u, &["iscsi", "rbd", "ISCSI"])?),
            _ => json!(pick(u, &["x", "vol-1"])?),
        })
    };
    Ok(Some(match choice {
        0 | 1 => return Ok(None),
        2 => Value::Null,
        3 => Value::Bool(u.arbitrary()?),
        4 => number(u)?,
        5 => Value::String(any_string(u)?),
        6 if depth > 0 => {
            let len = u.int_in_range(0..=2usize)?;
            let mut list = Vec::with_capacity(len);
            for _ in 0..len {
                list.push(value_for(u, key, depth - 1)?.unwrap_or(Value::Null));
            }
            Value::Array(list)
        }
        7 if depth > 0 => Value::Object(data_object(u, depth - 1)?),
        _ => vocab(u)?,
    }))
}

/// The keys of the `data` object, plus one the contract does not know.
const DATA_KEYS: &[&str] = &[
    "target_portal",
    "target_iqn",
    "target_lun",
    "target_portals",
    "target_iqns",
    "target_luns",
    "target_discovered",
    "auth_method",
    "auth_username",
    "auth_password",
    "discovery_auth_method",
    "discovery_auth_username",
    "discovery_auth_password",
    "access_mode",
    "discard",
    "volume_id",
    "qos_specs",
    "cacheable",
    "encrypted",
    "unknown_key",
];

fn data_object(u: &mut Unstructured<'_>, depth: u8) -> ArbResult<Map<String, Value>> {
    let mut map = Map::new();
    for key in DATA_KEYS {
        if let Some(v) = value_for(u, key, depth)? {
            map.insert((*key).to_owned(), v);
        }
    }
    Ok(map)
}

/// A whole answer or a bare data object.
pub fn document(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    let data = Value::Object(data_object(u, 1)?);
    Ok(match u.int_in_range(0..=3u8)? {
        0 | 1 => data,
        2 => json!({"driver_volume_type": "iscsi", "data": data}),
        _ => {
            let mut top = Map::new();
            if let Some(t) = value_for(u, "driver_volume_type", 0)? {
                top.insert("driver_volume_type".into(), t);
            }
            if let Some(d) = value_for(u, "data", 1)? {
                top.insert("data".into(), d);
            } else {
                top.insert("data".into(), data);
            }
            Value::Object(top)
        }
    })
}

/// Structured mode: a built document, through all three entry points.
pub fn run_structured(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(doc) = document(&mut u) else {
        return;
    };
    let text = if u.arbitrary().unwrap_or(false) {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    }
    .expect("a Value serialises");
    // Compared with the built document itself, not with the text read back
    // (parse is that, so the check would compare parse with itself): the
    // text must say exactly what the document does, floats included, which
    // holds because iscsi-multipath reads floats exactly (serde_json's
    // float_roundtrip; the default parser can land 1 ULP off).
    let parsed = ConnectionInfo::parse(&text);
    let direct = ConnectionInfo::from_value(&doc);
    assert_eq!(parsed, direct, "parse(text) and from_value(value) disagree");
    let via_serde = serde_json::from_value::<ConnectionInfo>(doc.clone());
    match (&via_serde, &direct) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "serde and from_value disagree"),
        (Err(e), Err(_)) => {
            if mark_only_in_passwords(&doc) {
                no_mark("serde's error", &e.to_string());
            }
            no_secret(&secrets(&doc), "serde's error", &e.to_string());
        }
        (a, b) => panic!("serde {a:?} but from_value {b:?}"),
    }
    check(Some(&doc), &direct);
}

/// One input, by mode.
pub fn run(data: &[u8]) {
    match data.split_first() {
        Some((b, rest)) if b & 1 != 0 => run_structured(rest),
        Some((_, rest)) => run_text(rest),
        None => {}
    }
}
