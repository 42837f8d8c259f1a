//! Typed reads of `connection_info` keys out of the JSON object. Every failure
//! names the key; values are quoted only for keys that cannot hold a secret.

use iscsi_proto::pdu::Lun;
use iscsi_session::Portal;
use serde_json::{Map, Value};

use super::error::ConnectionInfoError as E;

/// Longest value text quoted back in an error; the rest is elided.
const SHOWN_CHARS: usize = 40;

/// The JSON kind of `v`, as an error message says it.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text`, cut to a length that keeps an error message on one readable line.
pub(super) fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A non-secret value as an error quotes it: numbers as JSON, strings quoted.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", shorten(s)),
        other => shorten(&other.to_string()),
    }
}

/// `list[index]`, the key of a list entry in messages.
pub(super) fn entry(list: &str, index: usize) -> String {
    format!("{list}[{index}]")
}

/// The keys of one JSON object.
pub(super) struct Fields<'a>(pub(super) &'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The value of `key`; JSON null counts as absent, as Python's None does
    /// in the drivers that produce these documents.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<&'a str>, E> {
        self.get(key).map(|v| string(v, key)).transpose()
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, E> {
        self.get(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| E::WrongType {
                    key: key.to_owned(),
                    expected: "a boolean",
                    found: kind(v),
                })
            })
            .transpose()
    }

    pub(super) fn list(&self, key: &str) -> Result<Option<&'a [Value]>, E> {
        self.get(key)
            .map(|v| match v {
                Value::Array(items) => Ok(items.as_slice()),
                other => Err(E::WrongType {
                    key: key.to_owned(),
                    expected: "a list",
                    found: kind(other),
                }),
            })
            .transpose()
    }
}

/// `v` as a string.
pub(super) fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, E> {
    v.as_str().ok_or_else(|| E::WrongType {
        key: key.to_owned(),
        expected: "a string",
        found: kind(v),
    })
}

/// `v` as a non-empty string (an IQN).
pub(super) fn non_empty<'a>(v: &'a Value, key: &str) -> Result<&'a str, E> {
    let s = string(v, key)?;
    if s.trim().is_empty() {
        return Err(E::Empty {
            key: key.to_owned(),
        });
    }
    Ok(s)
}

/// `v` as a portal; `,tpgt` is dropped by the parser.
pub(super) fn portal(v: &Value, key: &str) -> Result<Portal, E> {
    string(v, key)?.parse().map_err(|source| E::BadPortal {
        key: key.to_owned(),
        source,
    })
}

/// `v` as a LUN: a JSON number or a numeric string (Cinder drivers send
/// both), whole, not negative, and encodable in the LUN field.
pub(super) fn lun(v: &Value, key: &str) -> Result<u16, E> {
    let bad = |reason| E::BadLun {
        key: key.to_owned(),
        value: shown(v),
        reason,
    };
    let out_of_range = || E::LunOutOfRange {
        key: key.to_owned(),
        value: shown(v),
    };
    let number = match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u,
            (None, Some(_)) => return Err(bad("a LUN cannot be negative")),
            // A float, or an integer too large for 64 bits.
            (None, None) => float_lun(n.as_f64().unwrap_or(f64::NAN)).map_err(|r| match r {
                FloatLun::Reason(reason) => bad(reason),
                FloatLun::TooLarge => out_of_range(),
            })?,
        },
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u64>().map_err(|_| out_of_range())?
            } else if let Ok(f) = s.parse::<f64>() {
                float_lun(f).map_err(|r| match r {
                    FloatLun::Reason(reason) => bad(reason),
                    FloatLun::TooLarge => out_of_range(),
                })?
            } else {
                return Err(bad("a LUN must be a number"));
            }
        }
        other => {
            return Err(E::WrongType {
                key: key.to_owned(),
                expected: "a number or a numeric string",
                found: kind(other),
            });
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|&n| Lun::from_number(n).is_some())
        .ok_or_else(out_of_range)
}

enum FloatLun {
    Reason(&'static str),
    TooLarge,
}

/// A LUN written as a float: `1.0` is LUN 1 (JSON does not tell integers
/// from floats), `1.5` is not a LUN.
fn float_lun(f: f64) -> Result<u64, FloatLun> {
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(FloatLun::Reason("a LUN must be a whole number"));
    }
    if f < 0.0 {
        return Err(FloatLun::Reason("a LUN cannot be negative"));
    }
    if f > f64::from(u16::MAX) {
        return Err(FloatLun::TooLarge);
    }
    // Whole, non-negative and at most 65535: the conversion is exact.
    Ok(f as u64)
}
