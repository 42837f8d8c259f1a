//! Typed text values (RFC 7143 §6.1): numbers, booleans, ranges, lists,
//! binary values, free text and the reserved answers.
//!
//! Parsing is driven by the [`ValueKind`] the key expects, because the same
//! string means different things for different keys (`None` is a list
//! element of HeaderDigest, `0x10` is a number or two bytes).

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Reserved answer: the responder does not know the key.
pub const NOT_UNDERSTOOD: &str = "NotUnderstood";
/// Reserved answer: the key has no meaning in the current context.
pub const IRRELEVANT: &str = "Irrelevant";
/// Reserved answer: the offered value is not acceptable.
pub const REJECT: &str = "Reject";
/// The literal `None` (a missing function, e.g. no digest).
pub const NONE: &str = "None";
/// Boolean true.
pub const YES: &str = "Yes";
/// Boolean false.
pub const NO: &str = "No";

/// Base64 as RFC 7143 uses it: standard alphabet, padding optional on input.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a value string does not match the syntax its key expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// Nothing where a value was needed.
    Empty,
    /// Not a decimal, `0x` hex or `0b` base64 constant.
    NotANumber,
    /// A number that does not fit in 64 bits.
    TooLarge,
    /// Not `Yes` or `No`.
    NotABoolean,
    /// Not `low~high` with `low <= high`.
    NotARange,
    /// A list with an empty element.
    EmptyListElement,
    /// Not a `0x` hex or `0b` base64 constant.
    NotBinary,
    /// A value outside the range the key allows.
    OutOfRange,
    /// A value that is not one of those the key allows.
    NotAllowed,
}

impl SyntaxError {
    /// A short human description, used in [`super::TextError::InvalidValue`].
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Empty => "empty value",
            Self::NotANumber => "not a numerical value",
            Self::TooLarge => "number exceeds 64 bits",
            Self::NotABoolean => "not Yes or No",
            Self::NotARange => "not a numeric range low~high",
            Self::EmptyListElement => "empty list element",
            Self::NotBinary => "not a 0x hex or 0b base64 constant",
            Self::OutOfRange => "outside the allowed range",
            Self::NotAllowed => "not an allowed value",
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The shape of value a key expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A regular or large numerical value up to 64 bits.
    Number,
    /// `Yes` or `No`.
    Boolean,
    /// `low~high`.
    Range,
    /// Comma separated values.
    List,
    /// A binary value: `0x` hex or `0b` base64.
    Binary,
    /// Free text (names, aliases, addresses).
    Text,
}

/// A parsed text value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A numerical value.
    Number(u64),
    /// A boolean value.
    Boolean(bool),
    /// A numeric range `low~high`.
    Range {
        /// Lower bound (inclusive).
        low: u64,
        /// Upper bound (inclusive).
        high: u64,
    },
    /// A list of values, in the sender's order of preference.
    List(Vec<String>),
    /// A binary value.
    Binary(Vec<u8>),
    /// Free text.
    Text(String),
    /// The literal `None`; also the single-element list `None`.
    None,
    /// The reserved answer `NotUnderstood`.
    NotUnderstood,
    /// The reserved answer `Irrelevant`.
    Irrelevant,
    /// The reserved answer `Reject`.
    Reject,
}

impl Value {
    /// Parses `text` as a value of `kind`; the reserved words `None`,
    /// `NotUnderstood`, `Irrelevant` and `Reject` are recognised for every
    /// kind.
    pub fn parse(kind: ValueKind, text: &str) -> Result<Self, SyntaxError> {
        match text {
            NONE => return Ok(Self::None),
            NOT_UNDERSTOOD => return Ok(Self::NotUnderstood),
            IRRELEVANT => return Ok(Self::Irrelevant),
            REJECT => return Ok(Self::Reject),
            _ => {}
        }
        Ok(match kind {
            ValueKind::Number => Self::Number(parse_number(text)?),
            ValueKind::Boolean => Self::Boolean(parse_boolean(text)?),
            ValueKind::Range => {
                let (low, high) = parse_range(text)?;
                Self::Range { low, high }
            }
            ValueKind::List => {
                Self::List(parse_list(text)?.into_iter().map(str::to_owned).collect())
            }
            ValueKind::Binary => Self::Binary(parse_binary(text)?),
            ValueKind::Text => Self::Text(text.to_owned()),
        })
    }

    /// True for `NotUnderstood`, `Irrelevant` and `Reject`: answers that
    /// leave the key at its default.
    pub fn is_reserved_answer(&self) -> bool {
        matches!(self, Self::NotUnderstood | Self::Irrelevant | Self::Reject)
    }

    /// The elements of a list value (`None` counts as the list `[None]`).
    pub fn list_items(&self) -> Option<Vec<&str>> {
        match self {
            Self::List(items) => Some(items.iter().map(String::as_str).collect()),
            Self::None => Some(vec![NONE]),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Boolean(b) => f.write_str(format_boolean(*b)),
            Self::Range { low, high } => write!(f, "{low}~{high}"),
            Self::List(items) => f.write_str(&items.join(",")),
            Self::Binary(bytes) => f.write_str(&format_binary(bytes)),
            Self::Text(text) => f.write_str(text),
            Self::None => f.write_str(NONE),
            Self::NotUnderstood => f.write_str(NOT_UNDERSTOOD),
            Self::Irrelevant => f.write_str(IRRELEVANT),
            Self::Reject => f.write_str(REJECT),
        }
    }
}

/// Parses a numerical value: decimal, `0x`/`0X` hex or `0b`/`0B` base64,
/// up to 64 bits.
pub fn parse_number(text: &str) -> Result<u64, SyntaxError> {
    if text.is_empty() {
        return Err(SyntaxError::Empty);
    }
    if let Some(hex) = strip_prefix_ci(text, 'x') {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SyntaxError::NotANumber);
        }
        let significant = hex.trim_start_matches('0');
        if significant.len() > 16 {
            return Err(SyntaxError::TooLarge);
        }
        if significant.is_empty() {
            return Ok(0);
        }
        return u64::from_str_radix(significant, 16).map_err(|_| SyntaxError::NotANumber);
    }
    if let Some(b64) = strip_prefix_ci(text, 'b') {
        let bytes = BASE64.decode(b64).map_err(|_| SyntaxError::NotANumber)?;
        if bytes.is_empty() {
            return Err(SyntaxError::NotANumber);
        }
        let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let significant = &bytes[first_nonzero..];
        if significant.len() > 8 {
            return Err(SyntaxError::TooLarge);
        }
        return Ok(significant
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError::NotANumber);
    }
    text.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(SyntaxError::TooLarge)
    })
}

/// Parses `Yes` or `No` (case-sensitive, as RFC 7143 requires).
pub fn parse_boolean(text: &str) -> Result<bool, SyntaxError> {
    match text {
        YES => Ok(true),
        NO => Ok(false),
        _ => Err(SyntaxError::NotABoolean),
    }
}

/// Formats a boolean as `Yes` or `No`.
pub const fn format_boolean(value: bool) -> &'static str {
    if value { YES } else { NO }
}

/// Parses a numeric range `low~high` (RFC 7143: high must not be lower).
pub fn parse_range(text: &str) -> Result<(u64, u64), SyntaxError> {
    let (low, high) = text.split_once('~').ok_or(SyntaxError::NotARange)?;
    let low = parse_number(low)?;
    let high = parse_number(high)?;
    if low > high {
        return Err(SyntaxError::NotARange);
    }
    Ok((low, high))
}

/// Splits a comma separated list; empty elements are an error.
pub fn parse_list(text: &str) -> Result<Vec<&str>, SyntaxError> {
    if text.is_empty() {
        return Err(SyntaxError::Empty);
    }
    let items: Vec<&str> = text.split(',').collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(SyntaxError::EmptyListElement);
    }
    Ok(items)
}

/// Joins list elements with commas.
pub fn format_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a binary value: `0x`/`0X` hex (an odd digit count implies a
/// leading zero nibble) or `0b`/`0B` base64.
pub fn parse_binary(text: &str) -> Result<Vec<u8>, SyntaxError> {
    if let Some(hex) = strip_prefix_ci(text, 'x') {
        return decode_hex(hex);
    }
    if let Some(b64) = strip_prefix_ci(text, 'b') {
        let bytes = BASE64.decode(b64).map_err(|_| SyntaxError::NotBinary)?;
        if bytes.is_empty() {
            return Err(SyntaxError::NotBinary);
        }
        return Ok(bytes);
    }
    Err(SyntaxError::NotBinary)
}

/// Formats bytes as a `0x` lowercase hex constant.
pub fn format_binary(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Formats bytes as a `0b` base64 constant (shorter than hex for large
/// values).
pub fn format_base64(bytes: &[u8]) -> String {
    format!("0b{}", BASE64.encode(bytes))
}

/// `0x...` / `0X...` (for `x`) or `0b...` / `0B...` (for `b`), without the
/// prefix.
fn strip_prefix_ci(text: &str, letter: char) -> Option<&str> {
    let rest = text.strip_prefix('0')?;
    rest.strip_prefix(letter)
        .or_else(|| rest.strip_prefix(letter.to_ascii_uppercase()))
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, SyntaxError> {
    fn nibble(b: u8) -> Result<u8, SyntaxError> {
        match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err(SyntaxError::NotBinary),
        }
    }
    let digits = hex.as_bytes();
    if digits.is_empty() {
        return Err(SyntaxError::NotBinary);
    }
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    let (head, rest) = if digits.len() % 2 == 1 {
        (Some(digits[0]), &digits[1..])
    } else {
        (None, digits)
    };
    if let Some(h) = head {
        out.push(nibble(h)?);
    }
    for pair in rest.chunks_exact(2) {
        out.push((nibble(pair[0])? << 4) | nibble(pair[1])?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_in_all_notations() {
        assert_eq!(parse_number("0"), Ok(0));
        assert_eq!(parse_number("262144"), Ok(262_144));
        assert_eq!(parse_number("0x40000"), Ok(262_144));
        assert_eq!(parse_number("0X40000"), Ok(262_144));
        assert!(parse_number("0b AAQAAA=").is_err());
        assert_eq!(parse_number("0bAAQAAA=="), Ok(262_144));
        assert_eq!(parse_number("0bAAQAAA"), Ok(262_144));
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_number("0xffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(parse_number("0x0000000000000000000001"), Ok(1));
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(parse_number(""), Err(SyntaxError::Empty));
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(SyntaxError::TooLarge)
        );
        assert_eq!(
            parse_number("0x10000000000000000"),
            Err(SyntaxError::TooLarge)
        );
        assert_eq!(parse_number("0bAQAAAAAAAAAA"), Err(SyntaxError::TooLarge));
        assert_eq!(parse_number("+5"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number("-5"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number("0x"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number("0x+5"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number("12a"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number(" 1"), Err(SyntaxError::NotANumber));
        assert_eq!(parse_number("0b"), Err(SyntaxError::NotANumber));
    }

    #[test]
    fn booleans_are_case_sensitive() {
        assert_eq!(parse_boolean("Yes"), Ok(true));
        assert_eq!(parse_boolean("No"), Ok(false));
        assert_eq!(parse_boolean("yes"), Err(SyntaxError::NotABoolean));
        assert_eq!(parse_boolean(""), Err(SyntaxError::NotABoolean));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("1~5"), Ok((1, 5)));
        assert_eq!(parse_range("0x10~0x20"), Ok((16, 32)));
        assert_eq!(parse_range("5~1"), Err(SyntaxError::NotARange));
        assert_eq!(parse_range("5"), Err(SyntaxError::NotARange));
        assert_eq!(parse_range("1~2~3"), Err(SyntaxError::NotANumber));
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("CRC32C,None"), Ok(vec!["CRC32C", "None"]));
        assert_eq!(parse_list("None"), Ok(vec!["None"]));
        assert_eq!(parse_list("a,,b"), Err(SyntaxError::EmptyListElement));
        assert_eq!(parse_list("a,"), Err(SyntaxError::EmptyListElement));
        assert_eq!(parse_list(""), Err(SyntaxError::Empty));
        assert_eq!(format_list(&["CHAP", "None"]), "CHAP,None");
    }

    #[test]
    fn binary_values() {
        assert_eq!(parse_binary("0x0102ff"), Ok(vec![1, 2, 0xff]));
        assert_eq!(parse_binary("0XABC"), Ok(vec![0x0a, 0xbc]));
        assert_eq!(parse_binary("0bAQL/"), Ok(vec![1, 2, 0xff]));
        assert_eq!(parse_binary("0x"), Err(SyntaxError::NotBinary));
        assert_eq!(parse_binary("0xzz"), Err(SyntaxError::NotBinary));
        assert_eq!(parse_binary("0102"), Err(SyntaxError::NotBinary));
        assert_eq!(parse_binary("0b!!"), Err(SyntaxError::NotBinary));
        assert_eq!(format_binary(&[0, 0xab]), "0x00ab");
        assert_eq!(format_base64(&[1, 2, 0xff]), "0bAQL/");
    }

    #[test]
    fn tgtd_chap_challenge_parses() {
        let c = "0x5fffeec6c38bfd71fd12791606311643f5a740415c7d9388d0641dfcd7ac0c073d2e31d33601a77132ae8b07ae43b74ab005";
        let bytes = parse_binary(c).expect("tgtd challenge");
        assert_eq!(bytes.len(), 50);
        assert_eq!(bytes[0], 0x5f);
    }

    #[test]
    fn reserved_words_win_over_kind() {
        for kind in [
            ValueKind::Number,
            ValueKind::Boolean,
            ValueKind::Range,
            ValueKind::List,
            ValueKind::Binary,
            ValueKind::Text,
        ] {
            assert_eq!(Value::parse(kind, "Reject"), Ok(Value::Reject));
            assert_eq!(Value::parse(kind, "Irrelevant"), Ok(Value::Irrelevant));
            assert_eq!(
                Value::parse(kind, "NotUnderstood"),
                Ok(Value::NotUnderstood)
            );
            assert_eq!(Value::parse(kind, "None"), Ok(Value::None));
        }
        assert!(Value::Reject.is_reserved_answer());
        assert!(!Value::None.is_reserved_answer());
        assert_eq!(Value::None.list_items(), Some(vec!["None"]));
    }

    fn value_strategy() -> impl Strategy<Value = (ValueKind, Value)> {
        let item = "[A-Za-z0-9.:_@+-]{1,12}".prop_filter("not reserved", |s| {
            ![NONE, REJECT, IRRELEVANT, NOT_UNDERSTOOD].contains(&s.as_str())
        });
        prop_oneof![
            any::<u64>().prop_map(|n| (ValueKind::Number, Value::Number(n))),
            any::<bool>().prop_map(|b| (ValueKind::Boolean, Value::Boolean(b))),
            (any::<u64>(), any::<u64>()).prop_map(|(a, b)| (
                ValueKind::Range,
                Value::Range {
                    low: a.min(b),
                    high: a.max(b)
                }
            )),
            proptest::collection::vec(item.clone(), 2..6)
                .prop_map(|items| (ValueKind::List, Value::List(items))),
            proptest::collection::vec(any::<u8>(), 1..64)
                .prop_map(|bytes| (ValueKind::Binary, Value::Binary(bytes))),
            item.prop_map(|t| (ValueKind::Text, Value::Text(t))),
            Just((ValueKind::List, Value::None)),
            Just((ValueKind::Number, Value::Reject)),
        ]
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips((kind, value) in value_strategy()) {
            let text = value.to_string();
            prop_assert_eq!(Value::parse(kind, &text), Ok(value));
        }

        #[test]
        fn numbers_round_trip_in_every_notation(n: u64) {
            prop_assert_eq!(parse_number(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_number(&format!("0x{n:x}")), Ok(n));
            prop_assert_eq!(parse_number(&format_base64(&n.to_be_bytes())), Ok(n));
        }

        #[test]
        fn binary_round_trips_both_encodings(bytes in proptest::collection::vec(any::<u8>(), 1..128)) {
            prop_assert_eq!(parse_binary(&format_binary(&bytes)), Ok(bytes.clone()));
            prop_assert_eq!(parse_binary(&format_base64(&bytes)), Ok(bytes));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            for kind in [ValueKind::Number, ValueKind::Boolean, ValueKind::Range,
                         ValueKind::List, ValueKind::Binary, ValueKind::Text] {
                let _ = Value::parse(kind, &s);
            }
        }
    }
}
