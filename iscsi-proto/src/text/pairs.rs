//! The key=value text format of Login and Text PDUs (RFC 7143 §6.1):
//! UTF-8 `key=value` entries, each terminated by one NUL byte.

use std::fmt;

use super::error::{Snippet, TextError};
use super::keys::{self, MAX_KEY_LEN};

/// One `key=value` pair, in the order it appeared on the wire.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The key name (case-sensitive).
    pub key: String,
    /// The raw value text.
    pub value: String,
}

impl KeyValue {
    /// Builds a pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

// Debug and Display hide CHAP challenges and responses so that pairs can be
// logged freely.
impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if keys::is_sensitive(&self.key) {
            write!(f, "{}=<redacted>", self.key)
        } else {
            write!(f, "{}={}", self.key, self.value)
        }
    }
}

/// The value of the first pair named `key`.
pub fn find<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// Bounds on received text, so a hostile peer cannot make us buffer or
/// allocate without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Most bytes of text in one negotiation sequence (all continued PDUs
    /// together).
    pub max_bytes: usize,
    /// Most key=value pairs in one negotiation sequence.
    pub max_pairs: usize,
}

impl TextLimits {
    /// RFC 7143 §6.1 requires accepting at least 8192 bytes, and 64 KiB
    /// when long authentication items are in use; 64 KiB covers both.
    pub const DEFAULT: Self = Self {
        max_bytes: 64 * 1024,
        max_pairs: 1024,
    };
}

impl Default for TextLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses a complete text (all continued segments joined) into pairs.
///
/// Runs of NUL bytes (padding, or empty entries) are skipped. Every pair
/// must be NUL-terminated, keys must follow the RFC syntax, values must fit
/// their key's length limit, and the text must fit `limits`.
pub fn parse_pairs(data: &[u8], limits: TextLimits) -> Result<Vec<KeyValue>, TextError> {
    if data.len() > limits.max_bytes {
        return Err(TextError::TooLong {
            len: data.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(data).map_err(|e| TextError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut pairs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(end) = rest.find('\0') else {
            return Err(TextError::Unterminated {
                entry: Snippet::new(rest),
            });
        };
        let entry = &rest[..end];
        rest = &rest[end + 1..];
        if entry.is_empty() {
            continue;
        }
        if pairs.len() == limits.max_pairs {
            return Err(TextError::TooManyPairs {
                limit: limits.max_pairs,
            });
        }
        pairs.push(parse_entry(entry, pairs.len())?);
    }
    Ok(pairs)
}

fn parse_entry(entry: &str, index: usize) -> Result<KeyValue, TextError> {
    let Some((key, value)) = entry.split_once('=') else {
        return Err(TextError::MissingSeparator {
            index,
            entry: Snippet::new(entry),
        });
    };
    if key.is_empty() {
        return Err(TextError::EmptyKey { index });
    }
    check_key(key)?;
    check_value(key, value)?;
    Ok(KeyValue::new(key, value))
}

/// Checks a key name's length and syntax.
pub fn check_key(key: &str) -> Result<(), TextError> {
    if key.len() > MAX_KEY_LEN {
        return Err(TextError::KeyTooLong {
            key: Snippet::new(key),
            len: key.len(),
            limit: MAX_KEY_LEN,
        });
    }
    if !keys::is_valid_key_name(key) {
        return Err(TextError::InvalidKeyName {
            key: Snippet::new(key),
        });
    }
    Ok(())
}

/// Checks a value against its key's length limit.
pub fn check_value(key: &str, value: &str) -> Result<(), TextError> {
    let (limit, per_element) = keys::value_length_limit(key);
    let longest = if per_element {
        value.split(',').map(str::len).max().unwrap_or(0)
    } else {
        value.len()
    };
    if longest > limit {
        return Err(TextError::ValueTooLong {
            key: key.to_owned(),
            len: longest,
            limit,
        });
    }
    Ok(())
}

/// Encodes pairs as `key=value\0...`, checking each as [`parse_pairs`]
/// would, so we never send what we would refuse to receive.
pub fn encode_pairs(pairs: &[KeyValue]) -> Result<Vec<u8>, TextError> {
    let mut out = Vec::new();
    encode_pairs_into(pairs, &mut out)?;
    Ok(out)
}

/// Appends encoded pairs to `out`; on error `out` is left unchanged.
pub fn encode_pairs_into(pairs: &[KeyValue], out: &mut Vec<u8>) -> Result<(), TextError> {
    for kv in pairs {
        check_key(&kv.key)?;
        if kv.value.contains('\0') {
            return Err(TextError::NulInValue {
                key: kv.key.clone(),
            });
        }
        check_value(&kv.key, &kv.value)?;
    }
    let len: usize = pairs
        .iter()
        .map(|kv| kv.key.len() + kv.value.len() + 2)
        .sum();
    out.reserve(len);
    for kv in pairs {
        out.extend_from_slice(kv.key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(kv.value.as_bytes());
        out.push(0);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: TextLimits = TextLimits::DEFAULT;

    #[test]
    fn parses_tgtd_login_response_with_padding() {
        let data = b"TargetPortalGroupTag=1\0AuthMethod=CHAP\0\0\0";
        let pairs = parse_pairs(data, LIMITS).expect("valid");
        assert_eq!(
            pairs,
            vec![
                KeyValue::new("TargetPortalGroupTag", "1"),
                KeyValue::new("AuthMethod", "CHAP")
            ]
        );
    }

    #[test]
    fn value_may_contain_equals_and_commas() {
        let pairs =
            parse_pairs(b"TargetAddress=10.0.0.1:3260,1\0X-a=b=c\0", LIMITS).expect("valid");
        assert_eq!(pairs[0].value, "10.0.0.1:3260,1");
        assert_eq!(pairs[1].value, "b=c");
    }

    #[test]
    fn empty_value_is_allowed() {
        let pairs = parse_pairs(b"SendTargets=\0", LIMITS).expect("valid");
        assert_eq!(pairs, vec![KeyValue::new("SendTargets", "")]);
    }

    #[test]
    fn empty_text_gives_no_pairs() {
        assert_eq!(parse_pairs(b"", LIMITS), Ok(vec![]));
        assert_eq!(parse_pairs(b"\0\0\0\0", LIMITS), Ok(vec![]));
    }

    #[test]
    fn rejects_malformed_entries() {
        assert!(matches!(
            parse_pairs(b"NoEquals\0", LIMITS),
            Err(TextError::MissingSeparator { index: 0, .. })
        ));
        assert!(matches!(
            parse_pairs(b"A=1\0=2\0", LIMITS),
            Err(TextError::EmptyKey { index: 1 })
        ));
        assert!(matches!(
            parse_pairs(b"bad key=1\0", LIMITS),
            Err(TextError::InvalidKeyName { .. })
        ));
        assert!(matches!(
            parse_pairs(b"A=1", LIMITS),
            Err(TextError::Unterminated { .. })
        ));
        assert!(matches!(
            parse_pairs(b"A=\xff\0", LIMITS),
            Err(TextError::InvalidUtf8 { offset: 2 })
        ));
    }

    #[test]
    fn rejects_over_long_key_and_value() {
        let key = format!("X-{}", "k".repeat(62));
        let text = format!("{key}=1\0");
        assert!(matches!(
            parse_pairs(text.as_bytes(), LIMITS),
            Err(TextError::KeyTooLong {
                len: 64,
                limit: 63,
                ..
            })
        ));
        let text = format!("TargetAlias={}\0", "a".repeat(256));
        assert!(matches!(
            parse_pairs(text.as_bytes(), LIMITS),
            Err(TextError::ValueTooLong {
                len: 256,
                limit: 255,
                ..
            })
        ));
        // Lists are limited per element, not as a whole.
        let long_list = vec!["Y-".to_owned() + &"d".repeat(200); 3].join(",");
        let text = format!("HeaderDigest={long_list}\0");
        assert!(parse_pairs(text.as_bytes(), LIMITS).is_ok());
        // CHAP responses may be much longer than 255 bytes.
        let text = format!("CHAP_R=0x{}\0", "ab".repeat(1024));
        assert!(parse_pairs(text.as_bytes(), LIMITS).is_ok());
        let text = format!("CHAP_R=0x{}\0", "ab".repeat(1025));
        assert!(parse_pairs(text.as_bytes(), LIMITS).is_err());
    }

    #[test]
    fn enforces_caller_limits() {
        let limits = TextLimits {
            max_bytes: 16,
            max_pairs: 2,
        };
        assert!(matches!(
            parse_pairs(b"A=1\0B=2\0C=3\0", limits),
            Err(TextError::TooManyPairs { limit: 2 })
        ));
        assert!(matches!(
            parse_pairs(&[b'\0'; 17], limits),
            Err(TextError::TooLong { len: 17, limit: 16 })
        ));
    }

    #[test]
    fn encode_refuses_what_parse_would_refuse() {
        assert!(encode_pairs(&[KeyValue::new("bad key", "1")]).is_err());
        assert!(matches!(
            encode_pairs(&[KeyValue::new("A", "x\0y")]),
            Err(TextError::NulInValue { .. })
        ));
        let mut out = b"keep".to_vec();
        assert!(
            encode_pairs_into(&[KeyValue::new("TargetAlias", "a".repeat(300))], &mut out).is_err()
        );
        assert_eq!(out, b"keep");
    }

    #[test]
    fn debug_redacts_chap_response() {
        let kv = KeyValue::new("CHAP_R", "0x0123456789");
        let shown = format!("{kv:?} {kv}");
        assert!(!shown.contains("0123456789"));
        assert_eq!(
            format!("{}", KeyValue::new("CHAP_N", "alice")),
            "CHAP_N=alice"
        );
    }

    #[test]
    fn find_returns_first_match() {
        let pairs = [
            KeyValue::new("TargetAddress", "a"),
            KeyValue::new("TargetAddress", "b"),
        ];
        assert_eq!(find(&pairs, "TargetAddress"), Some("a"));
        assert_eq!(find(&pairs, "TargetName"), None);
    }

    pub(crate) fn pair_strategy() -> impl Strategy<Value = KeyValue> {
        (
            "X-[A-Za-z0-9.+@_-]{1,20}",
            // Values: any UTF-8 without NUL or comma-separated parts over 255 bytes.
            "[^\u{0}]{0,40}",
        )
            .prop_map(|(k, v)| KeyValue::new(k, v))
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(pairs in proptest::collection::vec(pair_strategy(), 0..20),
                                         padding in 0usize..4) {
            let mut bytes = encode_pairs(&pairs).expect("valid pairs");
            bytes.extend(std::iter::repeat_n(0u8, padding));
            prop_assert_eq!(parse_pairs(&bytes, LIMITS), Ok(pairs));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_pairs(&bytes, LIMITS);
        }
    }
}
