//! The Cinder `connection_info` JSON a fixture hands to an initiator, in both forms
//! of docs/connection-info.md.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::chap::Chap;
use crate::error::{FixtureError, Result};
use crate::net::portal_string;

/// Which shape of `connection_info` to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionInfoForm {
    /// `target_portals` / `target_iqns` / `target_luns` lists, plus the singular keys
    /// of the main path (what Cinder sends for a multipath-capable backend).
    Lists,
    /// Only `target_portal` / `target_iqn` / `target_lun`: the initiator has to run
    /// SendTargets discovery to find other paths.
    Singular,
}

/// One path to a volume: portal, target and LUN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IscsiPath {
    /// Portal address.
    pub portal: SocketAddr,
    /// Target IQN behind that portal.
    pub iqn: String,
    /// LUN number.
    pub lun: u64,
}

/// Everything a `connection_info` answer says, as data tests can edit (route a path
/// through a proxy, add a path to another fixture) before rendering it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The main path (`target_portal` / `target_iqn` / `target_lun`).
    pub main: IscsiPath,
    /// The other paths, in list order after the main one.
    pub others: Vec<IscsiPath>,
    /// Session CHAP (`auth_*` keys), applied on every portal.
    pub session_chap: Option<Chap>,
    /// Discovery CHAP (`discovery_auth_*` keys).
    pub discovery_chap: Option<Chap>,
}

/// Files written by [`ConnectionInfo::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfoFiles {
    /// The lists form.
    pub lists: PathBuf,
    /// The singular form.
    pub singular: PathBuf,
}

impl ConnectionInfo {
    /// A volume reachable on `main` only, without CHAP.
    pub fn new(main: IscsiPath) -> Self {
        ConnectionInfo {
            main,
            others: Vec::new(),
            session_chap: None,
            discovery_chap: None,
        }
    }

    /// Every path, main first.
    pub fn paths(&self) -> impl Iterator<Item = &IscsiPath> {
        std::iter::once(&self.main).chain(&self.others)
    }

    /// The same volume with each portal replaced by `route(portal)`, e.g. the
    /// address of a [`FaultProxy`](crate::FaultProxy) in front of it.
    pub fn map_portals(mut self, mut route: impl FnMut(SocketAddr) -> SocketAddr) -> Self {
        self.main.portal = route(self.main.portal);
        for path in &mut self.others {
            path.portal = route(path.portal);
        }
        self
    }

    /// The whole answer, `{"driver_volume_type": "iscsi", "data": {...}}`.
    pub fn to_json(&self, form: ConnectionInfoForm) -> Value {
        json!({ "driver_volume_type": "iscsi", "data": self.data(form) })
    }

    /// The bare `data` object.
    pub fn data(&self, form: ConnectionInfoForm) -> Value {
        let mut data = Map::new();
        data.insert(
            "target_portal".into(),
            json!(portal_string(self.main.portal)),
        );
        data.insert("target_iqn".into(), json!(self.main.iqn));
        data.insert("target_lun".into(), json!(self.main.lun));
        data.insert("target_discovered".into(), json!(false));
        if form == ConnectionInfoForm::Lists {
            let paths: Vec<&IscsiPath> = self.paths().collect();
            let portals: Vec<String> = paths.iter().map(|p| portal_string(p.portal)).collect();
            let iqns: Vec<&str> = paths.iter().map(|p| p.iqn.as_str()).collect();
            let luns: Vec<u64> = paths.iter().map(|p| p.lun).collect();
            data.insert("target_portals".into(), json!(portals));
            data.insert("target_iqns".into(), json!(iqns));
            data.insert("target_luns".into(), json!(luns));
        }
        if let Some(chap) = &self.session_chap {
            data.insert("auth_method".into(), json!("CHAP"));
            data.insert("auth_username".into(), json!(chap.user()));
            data.insert("auth_password".into(), json!(chap.secret()));
        }
        if let Some(chap) = &self.discovery_chap {
            data.insert("discovery_auth_method".into(), json!("CHAP"));
            data.insert("discovery_auth_username".into(), json!(chap.user()));
            data.insert("discovery_auth_password".into(), json!(chap.secret()));
        }
        data.insert("access_mode".into(), json!("rw"));
        data.insert("encrypted".into(), json!(false));
        Value::Object(data)
    }

    /// Writes both forms, pretty-printed, as `connection_info_lists.json` and
    /// `connection_info_singular.json` in `dir`.
    pub fn write(&self, dir: &Path) -> Result<ConnectionInfoFiles> {
        let files = ConnectionInfoFiles {
            lists: dir.join("connection_info_lists.json"),
            singular: dir.join("connection_info_singular.json"),
        };
        for (path, form) in [
            (&files.lists, ConnectionInfoForm::Lists),
            (&files.singular, ConnectionInfoForm::Singular),
        ] {
            let text = serde_json::to_string_pretty(&self.to_json(form))
                .map_err(|e| FixtureError::io("cannot render connection_info", e.into()))?;
            write_private(path, text.as_bytes())?;
        }
        Ok(files)
    }
}

/// Writes `bytes` to `path`, mode 0600: the tool warns about passwords in a
/// file other users can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, bytes)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o600)))
        .map_err(|e| FixtureError::io(format!("cannot write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_path_info() -> ConnectionInfo {
        let mut info = ConnectionInfo::new(IscsiPath {
            portal: "127.0.0.2:3260".parse().unwrap(),
            iqn: "iqn.2026-11.io.riscsi:a".into(),
            lun: 1,
        });
        info.others.push(IscsiPath {
            portal: "[::1]:3260".parse().unwrap(),
            iqn: "iqn.2026-11.io.riscsi:a".into(),
            lun: 1,
        });
        info
    }

    #[test]
    fn lists_form_has_parallel_lists_and_main_keys() {
        let json = two_path_info().to_json(ConnectionInfoForm::Lists);
        assert_eq!(json["driver_volume_type"], "iscsi");
        let data = &json["data"];
        assert_eq!(data["target_portal"], "127.0.0.2:3260");
        assert_eq!(data["target_iqn"], "iqn.2026-11.io.riscsi:a");
        assert_eq!(data["target_lun"], 1);
        assert_eq!(
            data["target_portals"],
            json!(["127.0.0.2:3260", "[::1]:3260"])
        );
        assert_eq!(data["target_iqns"].as_array().unwrap().len(), 2);
        assert_eq!(data["target_luns"], json!([1, 1]));
        assert!(data.get("auth_method").is_none());
        assert!(data.get("discovery_auth_method").is_none());
    }

    #[test]
    fn singular_form_has_no_lists() {
        let json = two_path_info().to_json(ConnectionInfoForm::Singular);
        let data = json["data"].as_object().unwrap();
        assert_eq!(data["target_portal"], "127.0.0.2:3260");
        for key in ["target_portals", "target_iqns", "target_luns"] {
            assert!(!data.contains_key(key), "{key} present");
        }
    }

    #[test]
    fn chap_keys_appear_when_configured() {
        let mut info = two_path_info();
        info.session_chap = Some(Chap::new("u", "secret-one"));
        info.discovery_chap = Some(Chap::new("d", "secret-two"));
        for form in [ConnectionInfoForm::Lists, ConnectionInfoForm::Singular] {
            let data = info.data(form);
            assert_eq!(data["auth_method"], "CHAP");
            assert_eq!(data["auth_username"], "u");
            assert_eq!(data["auth_password"], "secret-one");
            assert_eq!(data["discovery_auth_method"], "CHAP");
            assert_eq!(data["discovery_auth_username"], "d");
            assert_eq!(data["discovery_auth_password"], "secret-two");
        }
        assert!(!format!("{info:?}").contains("secret-one"));
    }

    #[test]
    fn map_portals_reroutes_every_path() {
        let proxy: SocketAddr = "127.9.9.9:4000".parse().unwrap();
        let info = two_path_info().map_portals(|_| proxy);
        assert!(info.paths().all(|p| p.portal == proxy));
    }

    #[test]
    fn written_files_parse_back() {
        let dir = crate::temp::temp_dir("ci-unit").unwrap();
        let files = two_path_info().write(dir.path()).unwrap();
        let lists: Value =
            serde_json::from_str(&fs::read_to_string(&files.lists).unwrap()).unwrap();
        let singular: Value =
            serde_json::from_str(&fs::read_to_string(&files.singular).unwrap()).unwrap();
        assert_eq!(lists, two_path_info().to_json(ConnectionInfoForm::Lists));
        assert_eq!(
            singular,
            two_path_info().to_json(ConnectionInfoForm::Singular)
        );
    }
}
