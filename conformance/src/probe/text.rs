//! Login and Text data segments, built and read without the strict checks
//! of iscsi-proto's parser: the probe must be able to send malformed keys,
//! and to read whatever a target sends so that a test can judge it.

use iscsi_proto::text::KeyValue;

/// Largest text the probe accepts over one continued exchange.
pub const MAX_TEXT: usize = 256 * 1024;

/// `key=value\0` for every pair, as given: no syntax or length check.
pub fn encode(pairs: &[KeyValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for kv in pairs {
        out.extend_from_slice(kv.key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(kv.value.as_bytes());
        out.push(0);
    }
    out
}

/// Splits NUL-terminated entries at their first `=`. Runs of NULs are
/// skipped; an entry without `=` becomes a key with an empty value, and
/// invalid UTF-8 is replaced, so nothing a target sends can stop a test.
pub fn decode(data: &[u8]) -> Vec<KeyValue> {
    data.split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let text = String::from_utf8_lossy(entry);
            match text.split_once('=') {
                Some((k, v)) => KeyValue::new(k, v),
                None => KeyValue::new(text.as_ref(), ""),
            }
        })
        .collect()
}

/// The value of the last pair named `key`: a later declaration wins.
pub fn last<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// Every value sent for `key`, in order.
pub fn all<'a>(pairs: &'a [KeyValue], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
        .collect()
}

/// Builds pairs from `(key, value)` literals.
pub fn pairs(items: &[(&str, &str)]) -> Vec<KeyValue> {
    items.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_leniency() {
        let sent = pairs(&[("A", "1"), ("B", "x=y")]);
        let wire = encode(&sent);
        assert_eq!(wire, b"A=1\0B=x=y\0");
        assert_eq!(decode(&wire), sent);
        let odd = decode(b"\0\0NoEquals\0K=\xff\0\0");
        assert_eq!(odd[0], KeyValue::new("NoEquals", ""));
        assert_eq!(odd[1].key, "K");
        assert_eq!(last(&pairs(&[("K", "1"), ("K", "2")]), "K"), Some("2"));
        assert_eq!(all(&pairs(&[("K", "1"), ("K", "2")]), "K"), ["1", "2"]);
    }
}
