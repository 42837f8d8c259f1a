//! Why a `connection_info` document was refused: one line per problem, naming
//! the key (and list index) at fault. No variant holds a password: a secret's
//! problems are described by its type or absence, never by its value.

use iscsi_session::PortalParseError;

use super::MAX_LUN;

/// A `connection_info` that riscsi cannot attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionInfoError {
    /// The text does not parse as JSON.
    #[error("connection_info is not JSON: {reason} at line {line} column {column}")]
    NotJson {
        /// serde_json's description, without its position.
        reason: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The document (or its `data`) is JSON but not an object.
    #[error("connection_info must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON kind found instead, e.g. "an array".
        found: &'static str,
    },
    /// A key holds the wrong JSON kind.
    #[error("{key} must be {expected}, found {found}")]
    WrongType {
        /// The key, with `[index]` for a list entry.
        key: String,
        /// What the contract wants, e.g. "a string".
        expected: &'static str,
        /// What was there, e.g. "a number".
        found: &'static str,
    },
    /// `driver_volume_type` names another transport.
    #[error("driver_volume_type is {found:?}: riscsi attaches only \"iscsi\" volumes")]
    WrongVolumeType {
        /// The value given (shortened when long).
        found: String,
    },
    /// `encrypted: true`.
    #[error(
        "the volume is encrypted (encrypted: true) and riscsi does not decrypt: attach it through a host-side encryptor instead"
    )]
    Encrypted,
    /// Neither the lists nor the singular keys name a target.
    #[error(
        "connection_info names no target: it needs target_portals and target_iqns, or target_portal and target_iqn"
    )]
    NoTarget,
    /// A key that the others make necessary is absent (or null).
    #[error("{missing} is missing ({because})")]
    MissingKey {
        /// The key that is needed.
        missing: &'static str,
        /// Why it is needed, e.g. "target_portals is given".
        because: &'static str,
    },
    /// Two parallel lists differ in length; riscsi never truncates one.
    #[error(
        "{first} has {first_len} entries but {second} has {second_len}: the lists are parallel, one path per index"
    )]
    ListLengths {
        /// The reference list (`target_portals`).
        first: &'static str,
        /// Its length.
        first_len: usize,
        /// The list that disagrees.
        second: &'static str,
        /// Its length.
        second_len: usize,
    },
    /// A list that must name at least one path is empty.
    #[error("{list} is empty: no path to log in to")]
    EmptyList {
        /// The list key.
        list: &'static str,
    },
    /// A string that must not be empty (an IQN) is.
    #[error("{key} is empty")]
    Empty {
        /// The key, with `[index]` for a list entry.
        key: String,
    },
    /// A portal that does not parse as `host:port` or `[v6]:port`.
    #[error("{key}: {source}")]
    BadPortal {
        /// The key, with `[index]` for a list entry.
        key: String,
        /// The parser's complaint, which names the portal text.
        source: PortalParseError,
    },
    /// A LUN that is negative, fractional or not a number at all.
    #[error("{key} is {value}: {reason}")]
    BadLun {
        /// The key, with `[index]` for a list entry.
        key: String,
        /// The value as given (JSON text, shortened when long).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A LUN beyond what flat addressing can encode.
    #[error("{key} is {value}: a LUN must be in 0..={MAX_LUN} (SAM peripheral/flat addressing)")]
    LunOutOfRange {
        /// The key, with `[index]` for a list entry.
        key: String,
        /// The value as given (JSON text, shortened when long).
        value: String,
    },
    /// An authentication method other than CHAP or none.
    #[error("{key} is {method:?}: riscsi supports CHAP or no authentication")]
    UnsupportedAuthMethod {
        /// `auth_method` or `discovery_auth_method`.
        key: &'static str,
        /// The method given (shortened when long).
        method: String,
    },
    /// CHAP is asked for but its user name or password is absent or empty.
    #[error("{method_key} is CHAP but {missing} is missing or empty")]
    MissingCredential {
        /// `auth_method` or `discovery_auth_method`.
        method_key: &'static str,
        /// The absent key, e.g. `auth_password`.
        missing: &'static str,
    },
    /// `access_mode` other than `rw` or `ro`.
    #[error("access_mode is {found:?}: it must be \"rw\" or \"ro\"")]
    BadAccessMode {
        /// The value given (shortened when long).
        found: String,
    },
}

impl ConnectionInfoError {
    /// A syntax error, with serde_json's position kept apart from its text.
    pub(super) fn not_json(e: &serde_json::Error) -> Self {
        let text = e.to_string();
        // serde_json appends " at line L column C"; the position is kept in
        // fields of its own, so that the message does not say it twice.
        let reason = match text.rfind(" at line ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        };
        ConnectionInfoError::NotJson {
            reason,
            line: e.line(),
            column: e.column(),
        }
    }
}
