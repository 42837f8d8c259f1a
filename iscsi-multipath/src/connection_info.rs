//! Cinder's `connection_info`, the storage service's answer to
//! initialize_connection, validated once so that nothing later has to doubt
//! it. The contract is `docs/connection-info.md`: the whole answer
//! (`{"driver_volume_type": "iscsi", "data": {...}}`) or the bare `data`
//! object; the parallel `target_portals`/`target_iqns`/`target_luns` lists or
//! the singular `target_portal`/`target_iqn`/`target_lun`; session and
//! discovery CHAP; access mode and discard.

mod error;
mod fields;
#[cfg(test)]
mod tests;

use std::fmt;

use iscsi_session::{ChapConfig, ChapCredentials, Portal, Secret};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub use error::ConnectionInfoError;
use fields::{Fields, entry, kind, shorten};

use crate::path::{PathSpec, same_portal};
use crate::path_plan::PathPlan;

/// The highest LUN riscsi can address: SAM flat addressing encodes 14 bits,
/// as `iscsi_proto::pdu::Lun::from_number` does.
pub const MAX_LUN: u16 = 0x3fff;

/// How the volume is exported to the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessMode {
    /// Read and write (`"rw"`, the default).
    #[default]
    ReadWrite,
    /// Read only (`"ro"`): the host sees a read-only device.
    ReadOnly,
}

/// Where the paths come from.
#[derive(Clone, PartialEq, Eq)]
enum Targets {
    /// The parallel lists, in the given order; `main` indexes the main path.
    Lists { paths: Vec<PathSpec>, main: usize },
    /// The singular keys: the main path only.
    Single(PathSpec),
}

/// A validated `connection_info`. Built by [`ConnectionInfo::parse`] or
/// through serde; every rule of the contract has been checked by then.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    targets: Targets,
    target_discovered: Option<bool>,
    auth: Option<ChapCredentials>,
    discovery_auth: Option<ChapCredentials>,
    access_mode: AccessMode,
    discard: bool,
    volume_id: Option<String>,
    qos_specs: Option<Value>,
    cacheable: Option<bool>,
}

impl ConnectionInfo {
    /// Parses and validates a `connection_info` document, whole or bare.
    pub fn parse(text: &str) -> Result<Self, ConnectionInfoError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ConnectionInfoError::not_json(&e))?;
        Self::from_value(&value)
    }

    /// Validates an already parsed JSON document, whole or bare.
    pub fn from_value(value: &Value) -> Result<Self, ConnectionInfoError> {
        let data = unwrap_envelope(value)?;
        let f = Fields(data);
        // Refused before anything else: whatever else is wrong, this one
        // cannot be fixed by correcting the document.
        if f.bool("encrypted")? == Some(true) {
            return Err(ConnectionInfoError::Encrypted);
        }
        let targets = targets(&f)?;
        let auth = chap(&f, "auth_method", "auth_username", "auth_password")?;
        let discovery_auth = chap(
            &f,
            "discovery_auth_method",
            "discovery_auth_username",
            "discovery_auth_password",
        )?;
        let access_mode = match f.string("access_mode")? {
            None | Some("rw") => AccessMode::ReadWrite,
            Some("ro") => AccessMode::ReadOnly,
            Some(other) => {
                return Err(ConnectionInfoError::BadAccessMode {
                    found: shorten(other),
                });
            }
        };
        Ok(ConnectionInfo {
            targets,
            target_discovered: f.bool("target_discovered")?,
            auth,
            discovery_auth,
            access_mode,
            discard: f.bool("discard")?.unwrap_or(false),
            volume_id: f.string("volume_id")?.map(str::to_owned),
            qos_specs: f.get("qos_specs").cloned(),
            cacheable: f.bool("cacheable")?,
        })
    }

    /// The paths to use: all of them when the lists were given (main first),
    /// else the main path alone, whose portal is to be asked for the others.
    pub fn path_plan(&self) -> PathPlan {
        match &self.targets {
            Targets::Lists { paths, main } => PathPlan::given(paths, *main),
            Targets::Single(path) => PathPlan::Discover(path.clone()),
        }
    }

    /// The main path: the list entry on `target_portal` (else the first
    /// entry), or the singular keys.
    pub fn main_path(&self) -> &PathSpec {
        match &self.targets {
            Targets::Lists { paths, main } => &paths[*main],
            Targets::Single(path) => path,
        }
    }

    /// Session CHAP credentials (`auth_*`), applied on every portal.
    pub fn auth(&self) -> Option<&ChapCredentials> {
        self.auth.as_ref()
    }

    /// Session CHAP as every path's login uses it (one-way CHAP).
    pub fn session_chap(&self) -> Option<ChapConfig> {
        self.auth.clone().map(ChapConfig::one_way)
    }

    /// Discovery CHAP credentials (`discovery_auth_*`).
    pub fn discovery_auth(&self) -> Option<&ChapCredentials> {
        self.discovery_auth.as_ref()
    }

    /// Discovery CHAP as the SendTargets session's login uses it.
    pub fn discovery_chap(&self) -> Option<ChapConfig> {
        self.discovery_auth.clone().map(ChapConfig::one_way)
    }

    /// `rw` (the default) or `ro`.
    pub fn access_mode(&self) -> AccessMode {
        self.access_mode
    }

    /// Whether the volume must be exported read-only.
    pub fn read_only(&self) -> bool {
        self.access_mode == AccessMode::ReadOnly
    }

    /// Whether trim/unmap is offered to the host (`discard`, default false).
    pub fn discard(&self) -> bool {
        self.discard
    }

    /// `target_discovered` as given; informational only.
    pub fn target_discovered(&self) -> Option<bool> {
        self.target_discovered
    }

    /// Cinder's volume id, when given.
    pub fn volume_id(&self) -> Option<&str> {
        self.volume_id.as_deref()
    }

    /// `qos_specs` as given (riscsi does not enforce them).
    pub fn qos_specs(&self) -> Option<&Value> {
        self.qos_specs.as_ref()
    }

    /// `cacheable` as given.
    pub fn cacheable(&self) -> Option<bool> {
        self.cacheable
    }
}

impl<'de> Deserialize<'de> for ConnectionInfo {
    /// Any serde format holding the same document; the validation and its
    /// messages are [`ConnectionInfo::from_value`]'s.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        ConnectionInfo::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// Written by hand so that no CHAP password can reach a log line.
impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ConnectionInfo");
        match &self.targets {
            Targets::Lists { paths, main } => s.field("paths", paths).field("main", main),
            Targets::Single(path) => s.field("path", path),
        };
        s.field("auth", &self.auth.as_ref().map(RedactedChap))
            .field(
                "discovery_auth",
                &self.discovery_auth.as_ref().map(RedactedChap),
            )
            .field("access_mode", &self.access_mode)
            .field("discard", &self.discard)
            .field("target_discovered", &self.target_discovered)
            .field("volume_id", &self.volume_id)
            .field("qos_specs", &self.qos_specs)
            .field("cacheable", &self.cacheable)
            .finish()
    }
}

/// CHAP credentials in a Debug: the user name, never the password.
struct RedactedChap<'a>(&'a ChapCredentials);

impl fmt::Debug for RedactedChap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chap")
            .field("username", &self.0.username)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

/// The `data` object: inside the whole answer, or the document itself.
fn unwrap_envelope(value: &Value) -> Result<&serde_json::Map<String, Value>, ConnectionInfoError> {
    let top = value
        .as_object()
        .ok_or(ConnectionInfoError::NotAnObject { found: kind(value) })?;
    let top_fields = Fields(top);
    let volume_type = top_fields.string("driver_volume_type")?;
    if let Some(t) = volume_type
        && t != "iscsi"
    {
        return Err(ConnectionInfoError::WrongVolumeType { found: shorten(t) });
    }
    // The bare data object has neither key: these two mark the envelope.
    match top_fields.get("data") {
        Some(Value::Object(data)) => Ok(data),
        Some(other) => Err(ConnectionInfoError::WrongType {
            key: "data".into(),
            expected: "an object",
            found: kind(other),
        }),
        None if volume_type.is_some() => Err(ConnectionInfoError::MissingKey {
            missing: "data",
            because: "driver_volume_type is given",
        }),
        None => Ok(top),
    }
}

/// The paths named by the lists or by the singular keys.
fn targets(f: &Fields<'_>) -> Result<Targets, ConnectionInfoError> {
    use ConnectionInfoError as E;
    let portal = f
        .get("target_portal")
        .map(|v| fields::portal(v, "target_portal"))
        .transpose()?;
    let iqn = f
        .get("target_iqn")
        .map(|v| fields::non_empty(v, "target_iqn"))
        .transpose()?;
    let lun = f
        .get("target_lun")
        .map(|v| fields::lun(v, "target_lun"))
        .transpose()?;
    let portals = f.list("target_portals")?;
    let iqns = f.list("target_iqns")?;
    let luns = f.list("target_luns")?;

    let (portals, iqns) = match (portals, iqns) {
        (Some(p), Some(q)) => (p, q),
        (Some(_), None) => {
            return Err(E::MissingKey {
                missing: "target_iqns",
                because: "target_portals is given",
            });
        }
        (None, Some(_)) => {
            return Err(E::MissingKey {
                missing: "target_portals",
                because: "target_iqns is given",
            });
        }
        (None, None) if luns.is_some() => {
            return Err(E::MissingKey {
                missing: "target_portals",
                because: "target_luns is given",
            });
        }
        (None, None) => return single(portal, iqn, lun),
    };

    let lengths = |second, second_len| E::ListLengths {
        first: "target_portals",
        first_len: portals.len(),
        second,
        second_len,
    };
    if iqns.len() != portals.len() {
        return Err(lengths("target_iqns", iqns.len()));
    }
    if let Some(luns) = luns
        && luns.len() != portals.len()
    {
        return Err(lengths("target_luns", luns.len()));
    }
    if portals.is_empty() {
        return Err(E::EmptyList {
            list: "target_portals",
        });
    }
    // Without target_luns, target_lun applies to every portal.
    let lun_at = |i: usize| match luns {
        Some(luns) => fields::lun(&luns[i], &entry("target_luns", i)),
        None => lun.ok_or(E::MissingKey {
            missing: "target_lun",
            because: "target_portals is given without target_luns",
        }),
    };

    let mut paths = Vec::with_capacity(portals.len());
    for (i, (p, q)) in portals.iter().zip(iqns).enumerate() {
        paths.push(PathSpec {
            portal: fields::portal(p, &entry("target_portals", i))?,
            iqn: fields::non_empty(q, &entry("target_iqns", i))?.to_owned(),
            lun: lun_at(i)?,
        });
    }
    let main = portal
        .and_then(|main| paths.iter().position(|p| same_portal(&p.portal, &main)))
        .unwrap_or(0);
    Ok(Targets::Lists { paths, main })
}

/// The singular form: all three keys are needed.
fn single(
    portal: Option<Portal>,
    iqn: Option<&str>,
    lun: Option<u16>,
) -> Result<Targets, ConnectionInfoError> {
    use ConnectionInfoError as E;
    match (portal, iqn, lun) {
        (Some(portal), Some(iqn), Some(lun)) => Ok(Targets::Single(PathSpec {
            portal,
            iqn: iqn.to_owned(),
            lun,
        })),
        (None, None, _) => Err(E::NoTarget),
        (Some(_), None, _) => Err(E::MissingKey {
            missing: "target_iqn",
            because: "target_portal is given",
        }),
        (None, Some(_), _) => Err(E::MissingKey {
            missing: "target_portal",
            because: "target_iqn is given",
        }),
        (Some(_), Some(_), None) => Err(E::MissingKey {
            missing: "target_lun",
            because: "target_portal and target_iqn are given",
        }),
    }
}

/// CHAP credentials under `method_key` and its two companions. No method,
/// an empty one or "None" means no authentication; as in os-brick, a user
/// name and password without a method are not used.
fn chap(
    f: &Fields<'_>,
    method_key: &'static str,
    user_key: &'static str,
    password_key: &'static str,
) -> Result<Option<ChapCredentials>, ConnectionInfoError> {
    let method = f.string(method_key)?.map(str::trim).unwrap_or("");
    if method.is_empty() || method.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if !method.eq_ignore_ascii_case("chap") {
        return Err(ConnectionInfoError::UnsupportedAuthMethod {
            key: method_key,
            method: shorten(method),
        });
    }
    let missing = |missing| ConnectionInfoError::MissingCredential {
        method_key,
        missing,
    };
    let user = f
        .string(user_key)?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| missing(user_key))?;
    // The password goes straight into a Secret; errors about it only ever
    // mention its key and its JSON kind.
    let password = f
        .string(password_key)?
        .filter(|p| !p.is_empty())
        .ok_or_else(|| missing(password_key))?;
    Ok(Some(ChapCredentials::new(user, Secret::from(password))))
}
