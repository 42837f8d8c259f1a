//! Text data segments in full feature phase (SendTargets, renegotiation):
//! the key=value codec of iscsi-proto with the limits a connection enforces.

use bytes::Bytes;
use iscsi_proto::text::{KeyValue, TextError, TextLimits, encode_pairs, parse_pairs};

use crate::core::connection::MAX_TEXT_RESPONSE;

/// Limits for a text answer in full feature phase (SendTargets).
pub(crate) const FULL_FEATURE_TEXT: TextLimits = TextLimits {
    max_bytes: MAX_TEXT_RESPONSE,
    max_pairs: 65536,
};

/// Encodes key=value pairs as a text data segment.
pub(crate) fn encode_text(pairs: &[(&str, &str)]) -> Result<Bytes, TextError> {
    let kvs: Vec<KeyValue> = pairs.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
    encode_pairs(&kvs).map(Bytes::from)
}

/// Decodes a complete text data segment into pairs.
pub(crate) fn decode_text(data: &[u8]) -> Result<Vec<KeyValue>, TextError> {
    parse_pairs(data, FULL_FEATURE_TEXT)
}
