//! Errors of the text layer: parsing, value syntax, negotiation and discovery.

use std::fmt;

use thiserror::Error;

/// Longest piece of peer-supplied text quoted in an error.
const SNIPPET_MAX_CHARS: usize = 64;

/// Peer-supplied text quoted in an error: escaped (no control characters
/// reach a log) and truncated, so a hostile peer cannot flood logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Snippet(String);

impl Snippet {
    /// Quotes raw bytes (invalid UTF-8 is shown lossily).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self::new(&String::from_utf8_lossy(bytes))
    }

    /// Quotes a string.
    pub fn new(text: &str) -> Self {
        let mut out = String::new();
        let mut chars = text.chars();
        for c in chars.by_ref().take(SNIPPET_MAX_CHARS) {
            out.extend(c.escape_debug());
        }
        if chars.next().is_some() {
            out.push('…');
        }
        Self(out)
    }

    /// Quotes the value of `key`, hiding it entirely for keys whose values
    /// must never reach a log (CHAP challenges and responses).
    pub fn value_of(key: &str, value: &str) -> Self {
        if super::keys::is_sensitive(key) {
            Self("<redacted>".to_owned())
        } else {
            Self::new(value)
        }
    }

    /// The escaped text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything that can go wrong while handling iSCSI text.
///
/// Variants raised while receiving mean the peer violated RFC 7143; the
/// RFC's answer to most of them is to fail the login or close the connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TextError {
    /// A NUL-terminated entry has no `=`.
    #[error("text entry {index} has no '=': {entry}")]
    MissingSeparator {
        /// Position of the entry in the text (0-based).
        index: usize,
        /// The entry.
        entry: Snippet,
    },
    /// `=value` with nothing before the `=`.
    #[error("text entry {index} has an empty key")]
    EmptyKey {
        /// Position of the entry in the text (0-based).
        index: usize,
    },
    /// A key longer than RFC 7143 allows.
    #[error("key {key} is {len} bytes long, the limit is {limit}")]
    KeyTooLong {
        /// The key.
        key: Snippet,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A key with a character outside `[A-Za-z0-9.+@_#-]` or not starting
    /// with a capital letter.
    #[error("key {key} is not a valid key name")]
    InvalidKeyName {
        /// The key.
        key: Snippet,
    },
    /// A value (or one list element of it) longer than its key allows.
    #[error("value of {key} is {len} bytes long, the limit is {limit}")]
    ValueTooLong {
        /// The key.
        key: String,
        /// Length of the offending value or list element.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A value containing a NUL byte (only possible when encoding).
    #[error("value of {key} contains a NUL byte")]
    NulInValue {
        /// The key.
        key: String,
    },
    /// The text is not UTF-8.
    #[error("text is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// More key=value pairs than the caller allows.
    #[error("text has more than {limit} key=value pairs")]
    TooManyPairs {
        /// The limit.
        limit: usize,
    },
    /// More text bytes than the caller allows.
    #[error("text of {len} bytes exceeds the limit of {limit} bytes")]
    TooLong {
        /// Bytes received so far (including the segment that overflowed).
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The final segment ends inside a key=value pair.
    #[error("text ends without a NUL terminator after {entry}")]
    Unterminated {
        /// The unfinished entry.
        entry: Snippet,
    },
    /// A value that does not follow the syntax its key requires.
    #[error("value {value} of {key} is invalid: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value.
        value: Snippet,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key we do not know, where one is required (policy, our own offers).
    #[error("unknown key {key}")]
    UnknownKey {
        /// The key.
        key: Snippet,
    },
    /// The peer sent the same key twice in one negotiation.
    #[error("key {key} received twice in one negotiation")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// We tried to offer a key that is already negotiated or pending.
    #[error("key {key} is already being negotiated or settled")]
    AlreadyNegotiated {
        /// The key.
        key: String,
    },
    /// A key sent by a party RFC 7143 does not allow to send it.
    #[error("key {key} may not be sent by the {sender}")]
    WrongSender {
        /// The key.
        key: String,
        /// Who sent it.
        sender: &'static str,
    },
    /// A key negotiated in a stage where RFC 7143 does not allow it.
    #[error("key {key} is not allowed in the {stage} stage")]
    WrongStage {
        /// The key.
        key: String,
        /// The current stage.
        stage: &'static str,
    },
    /// A leading-only key on a connection that is not the leading one.
    #[error("key {key} may only be negotiated on the leading connection")]
    NotLeadingConnection {
        /// The key.
        key: String,
    },
    /// An answer that the key's result function does not allow for our
    /// offer (RFC 7143 §6.2: a protocol error, close the connection).
    #[error("illegal answer {answer} to our offer {offered} for {key}: {reason}")]
    IllegalAnswer {
        /// The key.
        key: String,
        /// What we offered.
        offered: Snippet,
        /// What the peer answered.
        answer: Snippet,
        /// Why the answer is illegal.
        reason: &'static str,
    },
    /// A reserved answer (`Reject`, `Irrelevant`, `NotUnderstood`) for a key
    /// we never offered.
    #[error("answer {answer} for {key}, which we did not offer")]
    UnexpectedAnswer {
        /// The key.
        key: String,
        /// The answer.
        answer: Snippet,
    },
    /// Negotiated values that contradict each other.
    #[error("inconsistent outcome: {reason}")]
    Inconsistent {
        /// What contradicts what.
        reason: &'static str,
    },
    /// A SendTargets response with a TargetAddress before any TargetName.
    #[error("TargetAddress {address} appears before any TargetName")]
    AddressWithoutTarget {
        /// The address.
        address: Snippet,
    },
    /// A TargetAddress value that cannot be parsed.
    #[error("invalid TargetAddress {address}: {reason}")]
    InvalidTargetAddress {
        /// The address.
        address: Snippet,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_escapes_and_truncates() {
        let s = Snippet::from_bytes(b"a\nb\x00c");
        assert_eq!(s.as_str(), "a\\nb\\0c");
        let long = "x".repeat(200);
        let s = Snippet::new(&long);
        assert_eq!(s.as_str().chars().count(), SNIPPET_MAX_CHARS + 1);
        assert!(s.as_str().ends_with('…'));
    }

    #[test]
    fn sensitive_values_are_redacted() {
        let s = Snippet::value_of("CHAP_R", "0xdeadbeef");
        assert!(!s.to_string().contains("dead"));
        let s = Snippet::value_of("MaxBurstLength", "512");
        assert_eq!(s.as_str(), "512");
    }

    #[test]
    fn error_messages_carry_context() {
        let e = TextError::ValueTooLong {
            key: "TargetAlias".into(),
            len: 300,
            limit: 255,
        };
        let msg = e.to_string();
        assert!(msg.contains("TargetAlias") && msg.contains("300") && msg.contains("255"));
    }
}
