//! The RFC 7143 §13 key table (plus TaskReporting and iSCSIProtocolLevel
//! from RFC 7144, and the obsoleted marker keys), as static data.
//!
//! Each [`KeyDef`] records what the negotiation engine needs to compute and
//! check outcomes: value type and range, default, result function, the
//! stages it may appear in, its scope and who may send it. Keys not in the
//! table (including `X-` and `X#` vendor keys) are unknown and get answered
//! `NotUnderstood`.

use std::fmt;

use super::value::{self, SyntaxError, Value, ValueKind};

/// Longest key name RFC 7143 §6.1 allows.
pub const MAX_KEY_LEN: usize = 63;
/// Longest value (or list element) RFC 7143 §6.1 allows unless a key says
/// otherwise.
pub const MAX_VALUE_LEN: usize = 255;
/// Longest iSCSI name (RFC 7143 §4.2.7.1).
pub const MAX_ISCSI_NAME_LEN: usize = 223;
/// Largest decoded CHAP_C / CHAP_R (RFC 7143 §12.1.3).
pub const MAX_CHAP_BINARY_LEN: usize = 1024;
/// Upper bound of the 24-bit length keys (2^24 - 1).
pub const MAX_24_BIT: u64 = (1 << 24) - 1;

/// Which end of the connection a negotiation engine speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The iSCSI initiator.
    Initiator,
    /// The iSCSI target.
    Target,
}

impl Role {
    /// The other end.
    pub const fn peer(self) -> Self {
        match self {
            Self::Initiator => Self::Target,
            Self::Target => Self::Initiator,
        }
    }

    /// Lower-case name, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Target => "target",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::pdu::Stage;

/// The set of stages a key may be sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    /// Login security stage.
    pub security: bool,
    /// Login operational stage.
    pub operational: bool,
    /// Full feature phase (text requests).
    pub full_feature: bool,
}

impl Stages {
    const SECURITY: Self = Self {
        security: true,
        operational: false,
        full_feature: false,
    };
    const OPERATIONAL: Self = Self {
        security: false,
        operational: true,
        full_feature: false,
    };
    /// RFC "IO" for declarations: anywhere during login.
    const LOGIN: Self = Self {
        security: true,
        operational: true,
        full_feature: false,
    };
    const FULL_FEATURE: Self = Self {
        security: false,
        operational: false,
        full_feature: true,
    };
    const ALL: Self = Self {
        security: true,
        operational: true,
        full_feature: true,
    };

    /// Whether `stage` is in the set.
    pub const fn contains(self, stage: Stage) -> bool {
        match stage {
            Stage::Security => self.security,
            Stage::Operational => self.operational,
            Stage::FullFeature => self.full_feature,
        }
    }
}

/// Session-wide or per-connection parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Session-wide (RFC "SW").
    Session,
    /// Per connection (RFC "CO").
    Connection,
}

/// Who may send a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// Only the initiator.
    Initiator,
    /// Only the target.
    Target,
    /// Either side.
    Both,
}

impl Senders {
    /// Whether `role` may send the key.
    pub const fn allows(self, role: Role) -> bool {
        matches!(
            (self, role),
            (Self::Both, _) | (Self::Initiator, Role::Initiator) | (Self::Target, Role::Target)
        )
    }
}

/// How the outcome of a key is computed from the two sides' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFunction {
    /// No negotiation: each side states its own value, which needs no answer.
    Declarative,
    /// The smaller of the offer and the responder's value.
    Min,
    /// The larger of the offer and the responder's value.
    Max,
    /// Boolean AND (an offered `No` decides the outcome by itself).
    And,
    /// Boolean OR (an offered `Yes` decides the outcome by itself).
    Or,
    /// List negotiation: the first offered value the responder supports.
    FirstAcceptable,
}

/// When RFC 7143 says a key has no meaning and may be answered `Irrelevant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Irrelevance {
    /// Always relevant.
    Never,
    /// Irrelevant when `SessionType=Discovery`.
    Discovery,
    /// Irrelevant in discovery sessions and when no unsolicited data can be
    /// sent (`InitialR2T=Yes` and `ImmediateData=No`): FirstBurstLength.
    DiscoveryOrNoUnsolicitedData,
}

/// The value syntax a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `Yes` or `No`.
    Boolean,
    /// A number in `min..=max`.
    Number {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A list of literal values; `known` are the ones RFC 7143 defines
    /// (extension values like `Y-...` or `Z-...` are syntactically valid).
    List {
        /// Values RFC 7143 defines for the key.
        known: &'static [&'static str],
    },
    /// A list of numbers (CHAP_A algorithm identifiers).
    NumberList,
    /// Exactly one of `values`.
    Enumerated {
        /// The allowed values.
        values: &'static [&'static str],
    },
    /// An iSCSI name (up to 223 bytes).
    IscsiName,
    /// Free UTF-8 text up to 255 bytes (aliases, CHAP_N).
    Text,
    /// `domainname[:port][,portal-group-tag]`.
    Address,
    /// `All`, an iSCSI name, or empty (SendTargets).
    SendTargets,
    /// A binary value of at most `max_bytes` decoded bytes.
    Binary {
        /// Largest decoded length.
        max_bytes: usize,
    },
    /// A key RFC 7143 obsoleted; a responder answers with `answer`.
    Obsolete {
        /// What a responder sends back.
        answer: &'static str,
    },
}

impl ValueType {
    /// The [`ValueKind`] used to parse values of this type.
    pub const fn kind(self) -> ValueKind {
        match self {
            Self::Boolean => ValueKind::Boolean,
            Self::Number { .. } => ValueKind::Number,
            Self::List { .. } | Self::NumberList => ValueKind::List,
            Self::Binary { .. } => ValueKind::Binary,
            Self::Enumerated { .. }
            | Self::IscsiName
            | Self::Text
            | Self::Address
            | Self::SendTargets
            | Self::Obsolete { .. } => ValueKind::Text,
        }
    }

    /// Length limit in bytes of the encoded value, and whether it applies
    /// to each comma separated element rather than to the whole value.
    pub const fn length_limit(self) -> (usize, bool) {
        match self {
            Self::List { .. } | Self::NumberList => (MAX_VALUE_LEN, true),
            Self::IscsiName | Self::SendTargets => (MAX_ISCSI_NAME_LEN, false),
            // "0x" plus two hex digits per byte is the longest encoding.
            Self::Binary { max_bytes } => (2 + 2 * max_bytes, false),
            _ => (MAX_VALUE_LEN, false),
        }
    }

    /// Parses and checks `text` against this type (range, allowed values).
    /// Reserved answers (`Reject`, ...) are returned as such, unchecked.
    pub fn parse(self, text: &str) -> Result<Value, SyntaxError> {
        let parsed = Value::parse(self.kind(), text)?;
        if parsed.is_reserved_answer() {
            return Ok(parsed);
        }
        match (self, &parsed) {
            (Self::Number { min, max }, Value::Number(n)) if !(min..=max).contains(n) => {
                Err(SyntaxError::OutOfRange)
            }
            (Self::Number { .. } | Self::Boolean | Self::Binary { .. }, Value::None) => {
                Err(SyntaxError::NotAllowed)
            }
            (Self::Binary { max_bytes }, Value::Binary(bytes)) if bytes.len() > max_bytes => {
                Err(SyntaxError::OutOfRange)
            }
            (Self::NumberList, Value::List(items)) => {
                for item in items {
                    value::parse_number(item)?;
                }
                Ok(parsed)
            }
            (Self::NumberList, Value::None) => Err(SyntaxError::NotANumber),
            (Self::Enumerated { values }, _) => {
                let text_value = parsed.to_string();
                if values.contains(&text_value.as_str()) {
                    Ok(parsed)
                } else {
                    Err(SyntaxError::NotAllowed)
                }
            }
            (Self::IscsiName, Value::Text(name)) if name.is_empty() => Err(SyntaxError::Empty),
            (Self::Address, Value::Text(addr)) if addr.is_empty() => Err(SyntaxError::Empty),
            _ => Ok(parsed),
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDef {
    /// The key name, case-sensitive.
    pub name: &'static str,
    /// The value syntax.
    pub value_type: ValueType,
    /// The value in force when the key is not negotiated.
    pub default: Option<&'static str>,
    /// How the outcome is computed.
    pub result: ResultFunction,
    /// The stages the key may be sent in.
    pub stages: Stages,
    /// Only on the leading connection of a session (RFC "LO").
    pub leading_only: bool,
    /// Session-wide or per connection.
    pub scope: Scope,
    /// Who may send the key.
    pub senders: Senders,
    /// When the key may be answered `Irrelevant`.
    pub irrelevant: Irrelevance,
    /// May appear several times in one negotiation (TargetAddress lists,
    /// re-declared MaxRecvDataSegmentLength).
    pub repeatable: bool,
    /// Value must never be logged (CHAP challenge and response).
    pub sensitive: bool,
}

impl KeyDef {
    /// Parses and checks a value for this key.
    pub fn parse_value(&self, text: &str) -> Result<Value, SyntaxError> {
        self.value_type.parse(text)
    }

    /// The default as a typed value, if the key has one.
    pub fn default_value(&self) -> Option<Value> {
        self.default.and_then(|d| self.value_type.parse(d).ok())
    }
}

/// Fills in the fields shared by most operational keys.
const fn operational(
    name: &'static str,
    value_type: ValueType,
    default: &'static str,
    result: ResultFunction,
    irrelevant: Irrelevance,
) -> KeyDef {
    KeyDef {
        name,
        value_type,
        default: Some(default),
        result,
        stages: Stages::OPERATIONAL,
        leading_only: true,
        scope: Scope::Session,
        senders: Senders::Both,
        irrelevant,
        repeatable: false,
        sensitive: false,
    }
}

/// A declarative key with no default.
const fn declaration(
    name: &'static str,
    value_type: ValueType,
    stages: Stages,
    senders: Senders,
) -> KeyDef {
    KeyDef {
        name,
        value_type,
        default: None,
        result: ResultFunction::Declarative,
        stages,
        leading_only: false,
        scope: Scope::Session,
        senders,
        irrelevant: Irrelevance::Never,
        repeatable: false,
        sensitive: false,
    }
}

/// A key exchanged during the security stage (authentication).
const fn security(name: &'static str, value_type: ValueType, result: ResultFunction) -> KeyDef {
    KeyDef {
        name,
        value_type,
        default: None,
        result,
        stages: Stages::SECURITY,
        leading_only: false,
        scope: Scope::Connection,
        senders: Senders::Both,
        irrelevant: Irrelevance::Never,
        repeatable: false,
        sensitive: false,
    }
}

const fn number(min: u64, max: u64) -> ValueType {
    ValueType::Number { min, max }
}

const fn obsolete(name: &'static str, answer: &'static str) -> KeyDef {
    KeyDef {
        name,
        value_type: ValueType::Obsolete { answer },
        default: None,
        result: ResultFunction::Declarative,
        stages: Stages::OPERATIONAL,
        leading_only: false,
        scope: Scope::Connection,
        senders: Senders::Both,
        irrelevant: Irrelevance::Never,
        repeatable: false,
        sensitive: false,
    }
}

/// HeaderDigest / DataDigest values.
pub const DIGEST_VALUES: &[&str] = &["CRC32C", "None"];
/// AuthMethod values.
pub const AUTH_METHODS: &[&str] = &["KRB5", "SRP", "SPKM1", "SPKM2", "CHAP", "None"];
/// TaskReporting values.
pub const TASK_REPORTING_VALUES: &[&str] = &["RFC3720", "ResponseFence", "FastAbort"];
/// SessionType values.
pub const SESSION_TYPES: &[&str] = &["Discovery", "Normal"];

use Irrelevance::{Discovery, DiscoveryOrNoUnsolicitedData, Never};
use ResultFunction::{And, FirstAcceptable, Max, Min, Or};

/// Every key this crate knows, in RFC 7143 §13 order.
pub static KEYS: &[KeyDef] = &[
    KeyDef {
        scope: Scope::Connection,
        leading_only: false,
        ..operational(
            "HeaderDigest",
            ValueType::List {
                known: DIGEST_VALUES,
            },
            "None",
            FirstAcceptable,
            Never,
        )
    },
    KeyDef {
        scope: Scope::Connection,
        leading_only: false,
        ..operational(
            "DataDigest",
            ValueType::List {
                known: DIGEST_VALUES,
            },
            "None",
            FirstAcceptable,
            Never,
        )
    },
    operational("MaxConnections", number(1, 65535), "1", Min, Discovery),
    declaration(
        "SendTargets",
        ValueType::SendTargets,
        Stages::FULL_FEATURE,
        Senders::Initiator,
    ),
    // Sent by the initiator at login, by the target in SendTargets answers.
    declaration(
        "TargetName",
        ValueType::IscsiName,
        Stages::ALL,
        Senders::Both,
    ),
    declaration(
        "InitiatorName",
        ValueType::IscsiName,
        Stages::LOGIN,
        Senders::Initiator,
    ),
    declaration("TargetAlias", ValueType::Text, Stages::ALL, Senders::Target),
    declaration(
        "InitiatorAlias",
        ValueType::Text,
        Stages::ALL,
        Senders::Initiator,
    ),
    KeyDef {
        repeatable: true,
        ..declaration(
            "TargetAddress",
            ValueType::Address,
            Stages::ALL,
            Senders::Target,
        )
    },
    declaration(
        "TargetPortalGroupTag",
        number(0, 65535),
        Stages::LOGIN,
        Senders::Target,
    ),
    operational("InitialR2T", ValueType::Boolean, "Yes", Or, Discovery),
    operational("ImmediateData", ValueType::Boolean, "Yes", And, Discovery),
    KeyDef {
        result: ResultFunction::Declarative,
        stages: Stages::ALL,
        leading_only: false,
        scope: Scope::Connection,
        // Peers re-declare it in practice (e.g. after a Reject); the last
        // declaration wins.
        repeatable: true,
        ..operational(
            "MaxRecvDataSegmentLength",
            number(512, MAX_24_BIT),
            "8192",
            Min,
            Never,
        )
    },
    operational(
        "MaxBurstLength",
        number(512, MAX_24_BIT),
        "262144",
        Min,
        Discovery,
    ),
    operational(
        "FirstBurstLength",
        number(512, MAX_24_BIT),
        "65536",
        Min,
        DiscoveryOrNoUnsolicitedData,
    ),
    operational("DefaultTime2Wait", number(0, 3600), "2", Max, Never),
    operational("DefaultTime2Retain", number(0, 3600), "20", Min, Never),
    operational("MaxOutstandingR2T", number(1, 65535), "1", Min, Discovery),
    operational("DataPDUInOrder", ValueType::Boolean, "Yes", Or, Discovery),
    operational(
        "DataSequenceInOrder",
        ValueType::Boolean,
        "Yes",
        Or,
        Discovery,
    ),
    operational("ErrorRecoveryLevel", number(0, 2), "0", Min, Never),
    KeyDef {
        default: Some("Normal"),
        leading_only: true,
        ..declaration(
            "SessionType",
            ValueType::Enumerated {
                values: SESSION_TYPES,
            },
            Stages::LOGIN,
            Senders::Initiator,
        )
    },
    KeyDef {
        default: Some("None"),
        ..security(
            "AuthMethod",
            ValueType::List {
                known: AUTH_METHODS,
            },
            FirstAcceptable,
        )
    },
    // CHAP (RFC 7143 §12.1.3): the initiator offers algorithms, the target
    // picks one and sends identifier and challenge; the rest are statements.
    security("CHAP_A", ValueType::NumberList, FirstAcceptable),
    security("CHAP_I", number(0, 255), ResultFunction::Declarative),
    KeyDef {
        sensitive: true,
        ..security(
            "CHAP_C",
            ValueType::Binary {
                max_bytes: MAX_CHAP_BINARY_LEN,
            },
            ResultFunction::Declarative,
        )
    },
    security("CHAP_N", ValueType::Text, ResultFunction::Declarative),
    KeyDef {
        sensitive: true,
        ..security(
            "CHAP_R",
            ValueType::Binary {
                max_bytes: MAX_CHAP_BINARY_LEN,
            },
            ResultFunction::Declarative,
        )
    },
    operational(
        "TaskReporting",
        ValueType::List {
            known: TASK_REPORTING_VALUES,
        },
        "RFC3720",
        FirstAcceptable,
        Discovery,
    ),
    // RFC 7144 §2.1.
    operational("iSCSIProtocolLevel", number(0, 31), "0", Min, Never),
    // RFC 7143 §13.26: markers are gone. IFMarker/OFMarker SHOULD get Reject
    // but MAY get No; "No" keeps RFC 3720 peers (which treat it as the
    // default) happy. The interval keys MUST get Reject.
    obsolete("IFMarker", value::NO),
    obsolete("OFMarker", value::NO),
    obsolete("IFMarkInt", value::REJECT),
    obsolete("OFMarkInt", value::REJECT),
];

/// Looks a key up by its exact (case-sensitive) name.
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|def| def.name == name)
}

/// Whether the value of `key` must be kept out of logs and errors.
pub fn is_sensitive(key: &str) -> bool {
    lookup(key).is_some_and(|def| def.sensitive)
}

/// Whether `key` follows the RFC 7143 §6.1 key-name syntax: a letter, then
/// letters, digits and `. - + @ _` (and `#` for `X#` public extension keys).
/// The length is checked separately.
///
/// RFC 7143 asks for a leading capital letter, but RFC 7144's own
/// `iSCSIProtocolLevel` starts in lower case, so any letter is accepted.
pub fn is_valid_key_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || b".-+@_#".contains(&b))
}

/// The length limit for the value of `key`: `(limit, per_list_element)`.
/// Unknown keys get the RFC 7143 default of 255 bytes per comma separated
/// element, since we cannot know whether they are lists.
pub fn value_length_limit(key: &str) -> (usize, bool) {
    lookup(key).map_or((MAX_VALUE_LEN, true), |def| def.value_type.length_limit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_with_its_own_type() {
        for def in KEYS {
            if let Some(default) = def.default {
                assert!(
                    def.parse_value(default).is_ok(),
                    "default of {} does not parse",
                    def.name
                );
            }
        }
    }

    #[test]
    fn names_are_unique_and_valid() {
        for (i, def) in KEYS.iter().enumerate() {
            assert!(is_valid_key_name(def.name), "{}", def.name);
            assert!(def.name.len() <= MAX_KEY_LEN);
            assert!(KEYS[i + 1..].iter().all(|other| other.name != def.name));
        }
    }

    #[test]
    fn lookup_finds_rfc_keys() {
        let mbl = lookup("MaxBurstLength").expect("MaxBurstLength");
        assert_eq!(mbl.result, ResultFunction::Min);
        assert_eq!(mbl.default, Some("262144"));
        assert_eq!(
            mbl.value_type,
            ValueType::Number {
                min: 512,
                max: MAX_24_BIT
            }
        );
        assert_eq!(lookup("InitialR2T").map(|d| d.result), Some(Or));
        assert_eq!(lookup("ImmediateData").map(|d| d.result), Some(And));
        assert_eq!(lookup("DefaultTime2Wait").map(|d| d.result), Some(Max));
        assert_eq!(
            lookup("MaxRecvDataSegmentLength").map(|d| d.result),
            Some(ResultFunction::Declarative)
        );
        assert_eq!(
            lookup("HeaderDigest").map(|d| d.scope),
            Some(Scope::Connection)
        );
        assert!(lookup("maxburstlength").is_none());
        assert!(lookup("X-com.example.Foo").is_none());
        assert!(lookup("X#NodeArchitecture").is_none());
    }

    #[test]
    fn key_name_syntax() {
        assert!(is_valid_key_name("MaxBurstLength"));
        assert!(is_valid_key_name("X-com.example.key_1+x@y"));
        assert!(is_valid_key_name("X#NodeArchitecture"));
        assert!(!is_valid_key_name(""));
        assert!(is_valid_key_name("iSCSIProtocolLevel"));
        assert!(!is_valid_key_name("1Digit"));
        assert!(!is_valid_key_name("-Dash"));
        assert!(!is_valid_key_name("Has Space"));
        assert!(!is_valid_key_name("Bad/Slash"));
        assert!(!is_valid_key_name("Ünicode"));
    }

    #[test]
    fn typed_checks() {
        let def = lookup("ErrorRecoveryLevel").expect("ERL");
        assert_eq!(def.parse_value("2"), Ok(Value::Number(2)));
        assert_eq!(def.parse_value("3"), Err(SyntaxError::OutOfRange));
        assert_eq!(def.parse_value("Reject"), Ok(Value::Reject));
        assert_eq!(def.parse_value("None"), Err(SyntaxError::NotAllowed));
        let st = lookup("SessionType").expect("SessionType");
        assert!(st.parse_value("Discovery").is_ok());
        assert_eq!(st.parse_value("Bogus"), Err(SyntaxError::NotAllowed));
        let chap_a = lookup("CHAP_A").expect("CHAP_A");
        assert!(chap_a.parse_value("5,7").is_ok());
        assert!(chap_a.parse_value("MD5").is_err());
        let chap_c = lookup("CHAP_C").expect("CHAP_C");
        let too_big = value::format_binary(&[0u8; MAX_CHAP_BINARY_LEN + 1]);
        assert_eq!(chap_c.parse_value(&too_big), Err(SyntaxError::OutOfRange));
    }

    #[test]
    fn sensitivity_and_limits() {
        assert!(is_sensitive("CHAP_R"));
        assert!(is_sensitive("CHAP_C"));
        assert!(!is_sensitive("CHAP_N"));
        assert_eq!(value_length_limit("TargetAlias"), (255, false));
        assert_eq!(value_length_limit("InitiatorName"), (223, false));
        assert_eq!(value_length_limit("HeaderDigest"), (255, true));
        assert_eq!(value_length_limit("CHAP_R"), (2050, false));
        assert_eq!(value_length_limit("X-unknown"), (255, true));
    }
}
