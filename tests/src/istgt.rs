//! `Istgt`: a private istgt (package `istgt`) configured by a file the fixture
//! writes, run in the foreground with `istgt -c FILE -D`.
//!
//! Facts this relies on (istgt 0.4 20111008, measured here):
//! - Its SendTargets answer lists EVERY portal of the portal group, unlike tgtd.
//! - Several instances coexist when each has its own pid file and portals; the
//!   `[UnitControl]` section gets no portal, so no control port can collide.
//! - A taken portal makes istgt exit at once ("istgt_open_portal() failed").
//! - It listens with a backlog of 2: many simultaneous connects to one portal can
//!   see SYN retries (a 1 s stall), not errors.
//! - LUNs are numbered from 0; the block size is per target (`BlockLength`), so all
//!   LUNs of one target must share it. The unit serial (VPD 0x80) can be set
//!   (`LUNn Option Serial`), the 0x83 designator cannot.
//! - CHAP: `AuthMethod CHAP` (one-way) or `CHAP Mutual` per target with an
//!   `AuthGroup` of the auth file (`Auth "user" "secret" ["muser" "msecret"]`), and
//!   `DiscoveryAuthMethod`/`DiscoveryAuthGroup` for discovery sessions.
//! - It advances ExpCmdSN on an immediate Text request, which makes libiscsi's
//!   `iscsi-ls` hang after printing the answer (see `libiscsi::discover`).
//! - It exits on SIGTERM, but SIGKILL is all teardown needs.
//! - `UseDigest Header Data` on a LogicalUnit makes it answer `Reject` to
//!   `HeaderDigest=None`/`DataDigest=None` and frame its PDUs with digests
//!   anyway; offered `None,CRC32C`, it picks CRC32C.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tempfile::{TempDir, TempPath};

use crate::builder::{FixtureBuilder, ResolvedSpec};
use crate::chap::{Chap, ChapConfig};
use crate::daemon::{Daemon, Startup};
use crate::error::{FixtureError, Result};
use crate::export::{Export, ExportedTarget, Fixture};
use crate::net::free_port_on_all;
use crate::temp::temp_dir;
use crate::tools::require_tool;

/// Builder of [`Istgt`].
pub type IstgtBuilder = FixtureBuilder<Istgt>;

/// Start attempts before giving up on port collisions.
const START_ATTEMPTS: usize = 8;

/// Log lines meaning a portal was taken.
const COLLISION_MARKERS: &[&str] = &["istgt_open_portal() failed", "listen error"];

/// Auth group numbers in the auth file.
const SESSION_AUTH_GROUP: u32 = 1;
const DISCOVERY_AUTH_GROUP: u32 = 2;

/// A running istgt exporting one or more targets; killed and cleaned up on drop.
#[derive(Debug)]
pub struct Istgt {
    export: Export,
    daemon: Daemon,
    // Dropped after the daemon (field order).
    _backing: Vec<TempPath>,
    dir: TempDir,
}

impl Istgt {
    /// A builder; see [`FixtureBuilder`].
    pub fn builder() -> IstgtBuilder {
        FixtureBuilder::default()
    }

    /// An istgt with the defaults: one portal, one target, one 16 MiB LUN.
    pub fn start() -> Result<Istgt> {
        Self::builder().start()
    }

    /// istgt's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// A private directory living as long as the fixture (config, logs, JSON).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the generated configuration file.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("istgt.conf")
    }

    /// What istgt printed so far (last few KiB).
    pub fn log(&self) -> String {
        self.daemon.log_tail()
    }
}

impl Drop for Istgt {
    fn drop(&mut self) {
        self.daemon.stop(Duration::ZERO);
    }
}

impl Fixture for Istgt {
    fn export(&self) -> &Export {
        &self.export
    }
}

impl FixtureBuilder<Istgt> {
    /// istgt's `UseDigest` for every target: `"Header Data"` requires both
    /// CRC32C digests, `"Header"` or `"Data"` one; `"Auto"` (the default)
    /// lets the initiator choose.
    pub fn use_digest(mut self, value: &str) -> Self {
        let words: Vec<&str> = value.split_whitespace().collect();
        let known = !words.is_empty()
            && words
                .iter()
                .all(|w| ["Auto", "Header", "Data", "None"].contains(w));
        if known {
            self.use_digest = Some(words.join(" "));
            self
        } else {
            self.problem(format!(
                "UseDigest {value:?}: expected Auto, Header, Data or \"Header Data\""
            ))
        }
    }

    /// Writes the configuration, starts istgt and waits for every portal; retries on
    /// port collisions. Fails with the missing binary or istgt's log.
    pub fn start(self) -> Result<Istgt> {
        let spec = self.resolve("istgt")?;
        require_tool("istgt")?;
        let dir = temp_dir("istgt")?;
        let mut backing = Vec::new();
        let mut targets = Vec::new();
        for target in &spec.targets {
            if target
                .luns
                .iter()
                .any(|l| l.block_size != target.luns[0].block_size)
            {
                return Err(FixtureError::InvalidConfig(format!(
                    "istgt sets one block size per target: the LUNs of {} differ",
                    target.iqn
                )));
            }
            if target.luns.iter().any(|l| l.scsi_id.is_some()) {
                return Err(FixtureError::InvalidConfig(
                    "istgt cannot set the VPD 0x83 identity (scsi_id); use scsi_sn".into(),
                ));
            }
            let mut luns = Vec::new();
            for (index, lun) in target.luns.iter().enumerate() {
                let (path, exported) = lun.materialize(index as u64, false)?;
                backing.push(path);
                luns.push(exported);
            }
            targets.push(ExportedTarget {
                iqn: target.iqn.clone(),
                luns,
            });
        }
        fs::write(dir.path().join("auth.conf"), auth_file(&spec.chap))
            .map_err(|e| FixtureError::io("cannot write istgt auth file", e))?;

        let mut last_collision = None;
        for attempt in 0..START_ATTEMPTS {
            let port = pick_portal_port(&spec)?;
            let portals = spec.portal_addrs(port);
            let config_path = dir.path().join("istgt.conf");
            fs::write(
                &config_path,
                config_file(
                    dir.path(),
                    &portals,
                    &targets,
                    &spec.chap,
                    spec.use_digest.as_deref().unwrap_or("Auto"),
                ),
            )
            .map_err(|e| FixtureError::io("cannot write istgt config", e))?;
            let mut command = std::process::Command::new(require_tool("istgt")?);
            command.arg("-c").arg(&config_path).arg("-D");
            let log = dir.path().join(format!("istgt-{attempt}.log"));
            let mut daemon = Daemon::spawn("istgt", command, &log)?;
            match daemon.wait_listening(&portals, spec.startup_timeout, COLLISION_MARKERS) {
                Startup::Ready => {
                    let export =
                        Export::new(portals, targets, spec.chap.clone()).ok_or_else(|| {
                            FixtureError::InvalidConfig("a fixture needs a portal and a LUN".into())
                        })?;
                    return Ok(Istgt {
                        export,
                        daemon,
                        _backing: backing,
                        dir,
                    });
                }
                Startup::Collision(error) => {
                    daemon.stop(Duration::ZERO);
                    last_collision = Some(error);
                }
                Startup::Failed(error) => return Err(error),
            }
        }
        Err(FixtureError::StartRetriesExhausted {
            daemon: "istgt",
            attempts: START_ATTEMPTS,
            last: Box::new(last_collision.unwrap_or_else(|| {
                FixtureError::InvalidConfig("no start attempt was made".into())
            })),
        })
    }
}

fn pick_portal_port(spec: &ResolvedSpec) -> Result<u16> {
    let ips = spec.ips_needing_port();
    if ips.is_empty() {
        return Ok(0);
    }
    free_port_on_all(&ips).map_err(|e| FixtureError::io("cannot find a free portal port", e))
}

/// `AuthMethod` value for one-way / mutual / no CHAP.
fn auth_method(one_way: &Option<Chap>, mutual: &Option<Chap>) -> &'static str {
    match (one_way, mutual) {
        (Some(_), Some(_)) => "CHAP Mutual",
        (Some(_), None) => "CHAP",
        _ => "None",
    }
}

fn auth_line(out: &mut String, one_way: &Chap, mutual: &Option<Chap>) {
    let _ = write!(
        out,
        "  Auth \"{}\" \"{}\"",
        one_way.user(),
        one_way.secret()
    );
    if let Some(mutual) = mutual {
        let _ = write!(out, " \"{}\" \"{}\"", mutual.user(), mutual.secret());
    }
    out.push('\n');
}

/// The auth file: group 1 for sessions, group 2 for discovery.
pub(crate) fn auth_file(chap: &ChapConfig) -> String {
    let mut out = String::from("# written by riscsi-tests\n");
    if let Some(session) = &chap.session {
        let _ = writeln!(out, "[AuthGroup{SESSION_AUTH_GROUP}]");
        auth_line(&mut out, session, &chap.mutual);
    }
    if let Some(discovery) = &chap.discovery {
        let _ = writeln!(out, "[AuthGroup{DISCOVERY_AUTH_GROUP}]");
        auth_line(&mut out, discovery, &chap.discovery_mutual);
    }
    out
}

/// The istgt configuration for these portals and targets.
pub(crate) fn config_file(
    dir: &Path,
    portals: &[SocketAddr],
    targets: &[ExportedTarget],
    chap: &ChapConfig,
    use_digest: &str,
) -> String {
    let dir = dir.display();
    let mut out = String::new();
    let _ = writeln!(out, "# written by riscsi-tests");
    let _ = writeln!(out, "[Global]");
    let _ = writeln!(out, "  NodeBase \"iqn.2026-11.io.riscsi.test\"");
    let _ = writeln!(out, "  PidFile {dir}/istgt.pid");
    let _ = writeln!(out, "  AuthFile {dir}/auth.conf");
    let _ = writeln!(out, "  MediaDirectory {dir}");
    let _ = writeln!(out, "  LogFacility \"local7\"");
    let _ = writeln!(out, "  Timeout 30");
    let _ = writeln!(out, "  NopInInterval 20");
    let _ = writeln!(
        out,
        "  DiscoveryAuthMethod {}",
        auth_method(&chap.discovery, &chap.discovery_mutual)
    );
    if chap.discovery.is_some() {
        let _ = writeln!(out, "  DiscoveryAuthGroup AuthGroup{DISCOVERY_AUTH_GROUP}");
    }
    out.push_str(concat!(
        "  MaxSessions 32\n",
        "  MaxConnections 8\n",
        "  MaxR2T 32\n",
        "  MaxOutstandingR2T 16\n",
        "  DefaultTime2Wait 2\n",
        "  DefaultTime2Retain 60\n",
        "  FirstBurstLength 262144\n",
        "  MaxBurstLength 1048576\n",
        "  MaxRecvDataSegmentLength 262144\n",
        "  InitialR2T Yes\n",
        "  ImmediateData Yes\n",
        "  DataPDUInOrder Yes\n",
        "  DataSequenceInOrder Yes\n",
        "  ErrorRecoveryLevel 0\n",
        "\n",
        // No Portal line: the unit controller does not listen, so instances cannot
        // collide on its port.
        "[UnitControl]\n",
        "  AuthMethod CHAP Mutual\n",
        "  AuthGroup AuthGroup10000\n",
        "\n",
        "[PortalGroup1]\n",
    ));
    for (index, portal) in portals.iter().enumerate() {
        let _ = writeln!(out, "  Portal P{} {portal}", index + 1);
    }
    out.push_str("\n[InitiatorGroup1]\n  InitiatorName \"ALL\"\n  Netmask ALL\n");
    for (index, target) in targets.iter().enumerate() {
        let _ = writeln!(out, "\n[LogicalUnit{}]", index + 1);
        let _ = writeln!(out, "  TargetName {}", target.iqn);
        let _ = writeln!(out, "  Mapping PortalGroup1 InitiatorGroup1");
        let _ = writeln!(
            out,
            "  AuthMethod {}",
            auth_method(&chap.session, &chap.mutual)
        );
        if chap.session.is_some() {
            let _ = writeln!(out, "  AuthGroup AuthGroup{SESSION_AUTH_GROUP}");
        }
        let _ = writeln!(out, "  UseDigest {use_digest}");
        let _ = writeln!(out, "  UnitType Disk");
        let _ = writeln!(out, "  QueueDepth 32");
        let _ = writeln!(out, "  BlockLength {}", target.luns[0].block_size);
        for lun in &target.luns {
            let _ = writeln!(
                out,
                "  LUN{} Storage {} Auto",
                lun.number,
                lun.path.display()
            );
            let _ = writeln!(out, "  LUN{} Option Serial \"{}\"", lun.number, lun.scsi_sn);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lun::ExportedLun;
    use std::path::PathBuf;

    fn target(iqn: &str, block_size: u32) -> ExportedTarget {
        ExportedTarget {
            iqn: iqn.into(),
            luns: vec![ExportedLun {
                number: 0,
                path: PathBuf::from("/dev/shm/riscsi-lun-x"),
                size: 1 << 20,
                block_size,
                pattern_seed: None,
                scsi_sn: "SNX".into(),
                scsi_id: None,
            }],
        }
    }

    #[test]
    fn config_lists_every_portal_and_target() {
        let portals: Vec<SocketAddr> = vec![
            "127.0.0.7:4000".parse().unwrap(),
            "[::1]:4000".parse().unwrap(),
        ];
        let text = config_file(
            Path::new("/tmp/d"),
            &portals,
            &[target("iqn.a:one", 4096), target("iqn.a:two", 512)],
            &ChapConfig::default(),
            "Auto",
        );
        assert!(text.contains("  Portal P1 127.0.0.7:4000\n"), "{text}");
        assert!(text.contains("  Portal P2 [::1]:4000\n"), "{text}");
        assert!(
            text.contains("[LogicalUnit2]\n  TargetName iqn.a:two\n"),
            "{text}"
        );
        assert!(text.contains("  BlockLength 4096\n"), "{text}");
        assert!(
            text.contains("  LUN0 Storage /dev/shm/riscsi-lun-x Auto\n"),
            "{text}"
        );
        assert!(text.contains("  LUN0 Option Serial \"SNX\"\n"), "{text}");
        assert!(text.contains("  PidFile /tmp/d/istgt.pid\n"), "{text}");
        assert!(text.contains("  DiscoveryAuthMethod None\n"), "{text}");
        assert!(text.contains("  AuthMethod None\n"), "{text}");
        assert!(text.contains("  UseDigest Auto\n"), "{text}");
        assert!(!text.contains("AuthGroup AuthGroup1\n"), "{text}");
    }

    #[test]
    fn chap_selects_methods_and_groups() {
        let chap = ChapConfig {
            session: Some(Chap::new("u", "s1")),
            mutual: Some(Chap::new("t", "s2")),
            discovery: Some(Chap::new("d", "s3")),
            discovery_mutual: None,
        };
        let text = config_file(
            Path::new("/x"),
            &[],
            &[target("iqn.a:one", 512)],
            &chap,
            "Header Data",
        );
        assert!(text.contains("  UseDigest Header Data\n"), "{text}");
        assert!(text.contains("  DiscoveryAuthMethod CHAP\n"), "{text}");
        assert!(text.contains("  DiscoveryAuthGroup AuthGroup2\n"), "{text}");
        assert!(
            text.contains("  AuthMethod CHAP Mutual\n  AuthGroup AuthGroup1\n"),
            "{text}"
        );
        let auth = auth_file(&chap);
        assert!(
            auth.contains("[AuthGroup1]\n  Auth \"u\" \"s1\" \"t\" \"s2\"\n"),
            "{auth}"
        );
        assert!(
            auth.contains("[AuthGroup2]\n  Auth \"d\" \"s3\"\n"),
            "{auth}"
        );
    }

    #[test]
    fn use_digest_values_are_checked() {
        let spec = Istgt::builder()
            .use_digest("Header  Data")
            .resolve("istgt")
            .unwrap();
        assert_eq!(spec.use_digest.as_deref(), Some("Header Data"));
        let err = Istgt::builder()
            .use_digest("CRC32C")
            .resolve("istgt")
            .unwrap_err();
        assert!(err.to_string().contains("CRC32C"), "{err}");
    }
}
