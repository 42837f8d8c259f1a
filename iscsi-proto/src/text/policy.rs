//! What one side supports and prefers, per key: the input of the responder
//! logic and the natural source of our own offers.

use std::collections::BTreeMap;
use std::fmt;

use super::error::{Snippet, TextError};
use super::keys::{self, KeyDef, ValueType};
use super::pairs::{KeyValue, check_value};
use super::value::Value;

/// Local values per key.
///
/// For a numeric key: the limit we accept (Min keys) or require (Max keys).
/// For a boolean key: our preference. For a list key: every value we
/// support, in our order of preference. For a declarative key: what we
/// declare. A key without an entry stands at its RFC 7143 default.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Policy {
    values: BTreeMap<String, String>,
}

impl Policy {
    /// An empty policy: every key at its RFC default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets our value for `key`, checking it against the key table.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, TextError> {
        let def = keys::lookup(key).ok_or_else(|| TextError::UnknownKey {
            key: Snippet::new(key),
        })?;
        check_local_value(def, value)?;
        self.values.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    /// Builder form of [`Policy::set`].
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, TextError> {
        self.set(key, value)?;
        Ok(self)
    }

    /// Our configured value for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Our value for `def`, falling back to the RFC default.
    pub fn value_for(&self, def: &KeyDef) -> Option<Value> {
        match self.get(def.name) {
            Some(text) => def.parse_value(text).ok(),
            None => def.default_value(),
        }
    }

    /// The configured entries as pairs, in key order.
    pub fn pairs(&self) -> Vec<KeyValue> {
        self.values
            .iter()
            .map(|(k, v)| KeyValue::new(k.as_str(), v.as_str()))
            .collect()
    }
}

/// Checks a value we are about to use as our own (policy or offer): it must
/// parse for the key's type and must not be a reserved answer.
pub(crate) fn check_local_value(def: &KeyDef, value: &str) -> Result<Value, TextError> {
    let invalid = |reason| TextError::InvalidValue {
        key: def.name.to_owned(),
        value: Snippet::value_of(def.name, value),
        reason,
    };
    if matches!(def.value_type, ValueType::Obsolete { .. }) {
        return Err(invalid("obsolete key"));
    }
    check_value(def.name, value)?;
    let parsed = def.parse_value(value).map_err(|e| invalid(e.reason()))?;
    if parsed.is_reserved_answer() {
        return Err(invalid("a reserved answer is not a value"));
    }
    Ok(parsed)
}

// Debug goes through KeyValue's Display, which hides sensitive values.
impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.pairs()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_against_the_table() {
        let mut p = Policy::new();
        assert!(p.set("MaxBurstLength", "262144").is_ok());
        assert!(matches!(
            p.set("MaxBurstLength", "100"),
            Err(TextError::InvalidValue { .. })
        ));
        assert!(matches!(
            p.set("NoSuchKey", "1"),
            Err(TextError::UnknownKey { .. })
        ));
        assert!(p.set("InitialR2T", "Reject").is_err());
        assert!(p.set("IFMarker", "No").is_err());
        assert!(p.set("HeaderDigest", "CRC32C,None").is_ok());
        assert_eq!(p.get("HeaderDigest"), Some("CRC32C,None"));
    }

    #[test]
    fn value_for_falls_back_to_default() {
        let p = Policy::new().with("ImmediateData", "No").expect("valid");
        let imm = keys::lookup("ImmediateData").expect("key");
        let mbl = keys::lookup("MaxBurstLength").expect("key");
        assert_eq!(p.value_for(imm), Some(Value::Boolean(false)));
        assert_eq!(p.value_for(mbl), Some(Value::Number(262_144)));
        let tname = keys::lookup("TargetName").expect("key");
        assert_eq!(p.value_for(tname), None);
    }

    #[test]
    fn debug_hides_chap_values() {
        let p = Policy::new()
            .with("CHAP_C", "0x0123456789abcdef")
            .expect("valid");
        assert!(!format!("{p:?}").contains("0123456789"));
    }
}
