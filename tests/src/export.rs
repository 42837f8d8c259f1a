//! What a running target fixture exports, and the accessors every fixture shares.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use crate::chap::ChapConfig;
use crate::connection_info::{ConnectionInfo, ConnectionInfoFiles, ConnectionInfoForm, IscsiPath};
use crate::error::Result;
use crate::lun::ExportedLun;
use crate::net::portal_string;

/// A target (IQN) and its LUNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedTarget {
    /// Target IQN.
    pub iqn: String,
    /// Its LUNs, in the order they were specified.
    pub luns: Vec<ExportedLun>,
}

impl ExportedTarget {
    /// The LUN numbered `number`.
    pub fn lun(&self, number: u64) -> Option<&ExportedLun> {
        self.luns.iter().find(|l| l.number == number)
    }
}

/// The portals, targets and CHAP of a running fixture.
///
/// Always holds at least one portal and one target with at least one LUN (the
/// builders guarantee it), which the accessors of [`Fixture`] rely on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    portals: Vec<SocketAddr>,
    targets: Vec<ExportedTarget>,
    chap: ChapConfig,
}

impl Export {
    /// Assembles an export; `None` unless there is a portal and every target has a
    /// LUN.
    pub(crate) fn new(
        portals: Vec<SocketAddr>,
        targets: Vec<ExportedTarget>,
        chap: ChapConfig,
    ) -> Option<Self> {
        let complete = !portals.is_empty()
            && !targets.is_empty()
            && targets.iter().all(|t| !t.luns.is_empty());
        complete.then_some(Export {
            portals,
            targets,
            chap,
        })
    }
}

/// Builds a libiscsi URL: `iscsi://[user%secret@]host:port/iqn/lun[?target_user=..]`.
fn libiscsi_url(portal: SocketAddr, iqn: &str, lun: u64, chap: &ChapConfig) -> String {
    let credentials = chap
        .session
        .as_ref()
        .map(|c| format!("{}%{}@", c.user(), c.secret()))
        .unwrap_or_default();
    let mutual = chap
        .mutual
        .as_ref()
        .map(|c| format!("?target_user={}&target_password={}", c.user(), c.secret()))
        .unwrap_or_default();
    format!(
        "iscsi://{credentials}{}/{iqn}/{lun}{mutual}",
        portal_string(portal)
    )
}

/// Accessors shared by [`Tgt`](crate::Tgt) and [`Istgt`](crate::Istgt); the defaults
/// work from [`export`](Fixture::export). "The target" means the first one, "the
/// LUN" its first LUN.
pub trait Fixture {
    /// What the fixture exports.
    fn export(&self) -> &Export;

    /// Portal addresses, in builder order.
    fn portals(&self) -> &[SocketAddr] {
        &self.export().portals
    }

    /// Portals formatted `host:port` (IPv6 `[addr]:port`).
    fn portal_strings(&self) -> Vec<String> {
        self.portals().iter().copied().map(portal_string).collect()
    }

    /// Every target, in builder order.
    fn targets(&self) -> &[ExportedTarget] {
        &self.export().targets
    }

    /// The first target.
    fn target(&self) -> &ExportedTarget {
        &self.export().targets[0]
    }

    /// IQN of the first target.
    fn iqn(&self) -> &str {
        &self.target().iqn
    }

    /// IQNs of every target.
    fn iqns(&self) -> Vec<&str> {
        self.targets().iter().map(|t| t.iqn.as_str()).collect()
    }

    /// LUN numbers of the first target.
    fn luns(&self) -> Vec<u64> {
        self.target().luns.iter().map(|l| l.number).collect()
    }

    /// The first LUN of the first target.
    fn first_lun(&self) -> &ExportedLun {
        &self.target().luns[0]
    }

    /// LUN `number` of the first target.
    fn lun(&self, number: u64) -> Option<&ExportedLun> {
        self.target().lun(number)
    }

    /// Backing file of LUN `number` of the first target.
    fn lun_path(&self, number: u64) -> Option<&Path> {
        self.lun(number).map(|l| l.path.as_path())
    }

    /// The CHAP configuration.
    fn chap(&self) -> &ChapConfig {
        &self.export().chap
    }

    /// libiscsi URL of LUN `lun` of the first target through `portal`, with the
    /// session CHAP (and mutual CHAP as `target_user`/`target_password`) in it.
    fn libiscsi_url(&self, portal: SocketAddr, lun: u64) -> String {
        libiscsi_url(portal, self.iqn(), lun, self.chap())
    }

    /// libiscsi URL of LUN `lun` of target `iqn` through `portal`, with CHAP.
    fn libiscsi_target_url(&self, portal: SocketAddr, iqn: &str, lun: u64) -> String {
        libiscsi_url(portal, iqn, lun, self.chap())
    }

    /// libiscsi portal URL for SendTargets discovery (`iscsi-ls`) through `portal`,
    /// with the discovery CHAP in it.
    fn discovery_url(&self, portal: SocketAddr) -> String {
        let chap = self.chap();
        let credentials = chap
            .discovery
            .as_ref()
            .map(|c| format!("{}%{}@", c.user(), c.secret()))
            .unwrap_or_default();
        let mutual = chap
            .discovery_mutual
            .as_ref()
            .map(|c| format!("?target_user={}&target_password={}", c.user(), c.secret()))
            .unwrap_or_default();
        format!("iscsi://{credentials}{}{mutual}", portal_string(portal))
    }

    /// The volume = first LUN of the first target, on every portal (main path =
    /// first portal), with session and discovery CHAP; edit it before rendering to
    /// route through proxies or mix fixtures.
    fn connection_info_spec(&self) -> ConnectionInfo {
        let target = self.target();
        let lun = self.first_lun().number;
        let path = |portal: &SocketAddr| IscsiPath {
            portal: *portal,
            iqn: target.iqn.clone(),
            lun,
        };
        // Export::new guarantees at least one portal.
        let (main, others) = self.portals().split_at(1);
        let mut info = ConnectionInfo::new(path(&main[0]));
        info.others = others.iter().map(path).collect();
        info.session_chap = self.chap().session.clone();
        info.discovery_chap = self.chap().discovery.clone();
        info
    }

    /// Cinder `connection_info` JSON of [`connection_info_spec`](Self::connection_info_spec).
    fn connection_info(&self, form: ConnectionInfoForm) -> Value {
        self.connection_info_spec().to_json(form)
    }

    /// Writes both forms of [`connection_info`](Self::connection_info) into `dir`.
    fn write_connection_info(&self, dir: &Path) -> Result<ConnectionInfoFiles> {
        self.connection_info_spec().write(dir)
    }
}

impl Fixture for Export {
    fn export(&self) -> &Export {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chap::Chap;
    use std::path::PathBuf;

    fn lun(number: u64) -> ExportedLun {
        ExportedLun {
            number,
            path: PathBuf::from(format!("/dev/shm/x{number}")),
            size: 1 << 20,
            block_size: 512,
            pattern_seed: None,
            scsi_sn: "SN".into(),
            scsi_id: None,
        }
    }

    fn export(chap: ChapConfig) -> Export {
        Export::new(
            vec![
                "127.0.0.2:3260".parse().unwrap(),
                "[::1]:3260".parse().unwrap(),
            ],
            vec![
                ExportedTarget {
                    iqn: "iqn.a:one".into(),
                    luns: vec![lun(1), lun(2)],
                },
                ExportedTarget {
                    iqn: "iqn.a:two".into(),
                    luns: vec![lun(1)],
                },
            ],
            chap,
        )
        .unwrap()
    }

    #[test]
    fn incomplete_exports_are_refused() {
        assert!(Export::new(vec![], vec![], ChapConfig::default()).is_none());
        let empty_target = ExportedTarget {
            iqn: "iqn.a:x".into(),
            luns: vec![],
        };
        assert!(
            Export::new(
                vec!["127.0.0.1:1".parse().unwrap()],
                vec![empty_target],
                ChapConfig::default()
            )
            .is_none()
        );
    }

    #[test]
    fn accessors_describe_the_first_target() {
        let e = export(ChapConfig::default());
        assert_eq!(e.iqn(), "iqn.a:one");
        assert_eq!(e.iqns(), ["iqn.a:one", "iqn.a:two"]);
        assert_eq!(e.luns(), [1, 2]);
        assert_eq!(e.lun_path(2), Some(Path::new("/dev/shm/x2")));
        assert_eq!(e.lun(3), None);
        assert_eq!(e.portal_strings(), ["127.0.0.2:3260", "[::1]:3260"]);
    }

    #[test]
    fn urls_carry_chap() {
        let plain = export(ChapConfig::default());
        let portal = plain.portals()[1];
        assert_eq!(
            plain.libiscsi_url(portal, 2),
            "iscsi://[::1]:3260/iqn.a:one/2"
        );
        assert_eq!(plain.discovery_url(portal), "iscsi://[::1]:3260");
        let chap = export(ChapConfig {
            session: Some(Chap::new("u", "s")),
            mutual: Some(Chap::new("t", "m")),
            discovery: Some(Chap::new("du", "ds")),
            discovery_mutual: Some(Chap::new("dt", "dm")),
        });
        assert_eq!(
            chap.libiscsi_target_url(portal, "iqn.a:two", 1),
            "iscsi://u%s@[::1]:3260/iqn.a:two/1?target_user=t&target_password=m"
        );
        assert_eq!(
            chap.discovery_url(portal),
            "iscsi://du%ds@[::1]:3260?target_user=dt&target_password=dm"
        );
    }

    #[test]
    fn connection_info_covers_every_portal() {
        let e = export(ChapConfig {
            session: Some(Chap::new("u", "s")),
            ..Default::default()
        });
        let info = e.connection_info_spec();
        let paths: Vec<_> = info.paths().collect();
        assert_eq!(paths.len(), 2);
        assert!(paths.iter().all(|p| p.iqn == "iqn.a:one" && p.lun == 1));
        assert_eq!(info.main.portal, e.portals()[0]);
        let json = e.connection_info(ConnectionInfoForm::Lists);
        assert_eq!(json["data"]["auth_username"], "u");
    }
}
