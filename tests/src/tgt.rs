//! `Tgt`: a private tgtd (package `tgt`) with its own control port, portals, targets,
//! file-backed LUNs in /dev/shm and CHAP accounts.
//!
//! Facts this relies on (measured with tgt 1.0.85, see docs/peers.md):
//! - Several tgtd coexist when each has its own control port (`-C N`, a unix socket
//!   `/var/run/tgtd/socket.N` guarded by `socket.N.lock`). A taken control port
//!   makes tgtd exit with "another tgtd is using ..."; a taken portal does NOT stop
//!   it: it logs "failed to create/bind to portal" and keeps running, which is why
//!   readiness is checked on the daemon's own listening sockets.
//! - LUN 0 of every target is tgtd's controller LUN, so fixture LUNs start at 1.
//! - Without `--scsi_sn`/`--scsi_id`, every tgtd reports the same identity for the
//!   same tid/LUN (`beaf11`, `IET 00010001`): the fixture therefore sets a unique
//!   pair on every LUN unless the test gives one.
//! - Discovery-session CHAP IS supported: an account bound without `--tid` applies
//!   to SendTargets sessions (`--outgoing` for mutual), and discovery then refuses
//!   initiators without the right credentials.
//! - tgtd ignores SIGTERM while it has targets; `--op delete --mode system` only
//!   succeeds once no target is left. Teardown deletes the targets (`--force`),
//!   then the system, then SIGKILLs whatever is left.
//! - In a network namespace of its own ([`FixtureBuilder::netns`]), tgtd is started
//!   with `ip netns exec`, which execs it (the pid we hold is tgtd's, and its
//!   `/proc/PID/net` shows the namespace's sockets); tgtadm runs there too.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tempfile::{TempDir, TempPath};

use crate::builder::{FixtureBuilder, ResolvedSpec};
use crate::chap::{Chap, ChapConfig};
use crate::command::{ToolCommand, ToolOutput};
use crate::daemon::{Daemon, Startup};
use crate::error::{FixtureError, Result};
use crate::export::{Export, ExportedTarget, Fixture};
use crate::net::{free_port_on_all, random_in};
use crate::netns::Netns;
use crate::temp::temp_dir;
use crate::tools::require_tool;

/// Builder of [`Tgt`].
pub type TgtBuilder = FixtureBuilder<Tgt>;

/// The iSCSI port (RFC 7143), for portals in a namespace of their own.
const ISCSI_PORT: u16 = 3260;

/// Where tgtd keeps its control sockets.
const CONTROL_DIR: &str = "/var/run/tgtd";

/// Control port numbers we draw from (tgtd accepts at most 32767).
const CONTROL_PORTS: std::ops::Range<u32> = 1000..32000;

/// Start attempts before giving up on port collisions.
const START_ATTEMPTS: usize = 8;

/// Deadline of one tgtadm call.
const TGTADM_TIMEOUT: Duration = Duration::from_secs(10);

/// How long tgtd gets to exit after `delete --mode system` before SIGKILL.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Log lines meaning another process holds our portal port or control port.
const COLLISION_MARKERS: &[&str] = &["failed to create/bind to portal", CONTROL_TAKEN];
const CONTROL_TAKEN: &str = "another tgtd is using";

/// A running tgtd exporting one or more targets; torn down on drop.
#[derive(Debug)]
pub struct Tgt {
    export: Export,
    control_port: u32,
    daemon: Daemon,
    /// What it was built from, to configure a restarted daemon alike.
    spec: ResolvedSpec,
    restarts: u32,
    // Dropped after the daemon is gone (see Drop).
    _backing: Vec<TempPath>,
    dir: TempDir,
}

impl Tgt {
    /// A builder; see [`FixtureBuilder`].
    pub fn builder() -> TgtBuilder {
        FixtureBuilder::default()
    }

    /// A tgtd with the defaults: one portal, one target, one 16 MiB LUN.
    pub fn start() -> Result<Tgt> {
        Self::builder().start()
    }

    /// tgtd's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The `-C` control port of this tgtd.
    pub fn control_port(&self) -> u32 {
        self.control_port
    }

    /// A private directory living as long as the fixture (logs, JSON files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What tgtd printed so far (last few KiB).
    pub fn log(&self) -> String {
        self.daemon.log_tail()
    }

    /// Makes the first target require CRC32C header and/or data digests:
    /// tgtd answers `None` to any digest offer unless the target is set so.
    pub fn require_crc32c(&self, header: bool, data: bool) -> Result<()> {
        for (key, on) in [("HeaderDigest", header), ("DataDigest", data)] {
            if on {
                self.tgtadm(&[
                    "--op", "update", "--mode", "target", "--tid", "1", "-n", key, "-v", "CRC32C",
                ])?;
            }
        }
        Ok(())
    }

    /// Runs `tgtadm -C <control> --lld iscsi ARGS` against this tgtd (e.g. to take
    /// a LUN offline in a test); fails on a non-zero exit.
    pub fn tgtadm(&self, args: &[&str]) -> Result<ToolOutput> {
        self.tgtadm_command(args)?.run_ok(TGTADM_TIMEOUT)
    }

    fn tgtadm_command(&self, args: &[&str]) -> Result<ToolCommand> {
        let mut command = tool_in(self.spec.netns.as_ref(), "tgtadm")?
            .args(["-C".to_owned(), self.control_port.to_string()])
            .args(["--lld", "iscsi"])
            .args(args.iter().copied());
        for secret in self.export.chap().secrets() {
            command = command.redact(secret);
        }
        Ok(command)
    }

    /// Creates targets, LUNs, ACLs and accounts on the freshly started daemon.
    fn configure(&self, spec: &ResolvedSpec) -> Result<()> {
        for (index, target) in self.export.targets().iter().enumerate() {
            let tid = (index + 1).to_string();
            self.tgtadm(&[
                "--op",
                "new",
                "--mode",
                "target",
                "--tid",
                &tid,
                "-T",
                &target.iqn,
            ])?;
            for lun in &target.luns {
                let number = lun.number.to_string();
                let path = lun.path.to_string_lossy();
                let block_size = lun.block_size.to_string();
                self.tgtadm(&[
                    "--op",
                    "new",
                    "--mode",
                    "logicalunit",
                    "--tid",
                    &tid,
                    "--lun",
                    &number,
                    "-b",
                    &path,
                    "--blocksize",
                    &block_size,
                ])?;
                let mut params = format!("scsi_sn={}", lun.scsi_sn);
                if let Some(id) = &lun.scsi_id {
                    params.push_str(&format!(",scsi_id={id}"));
                }
                self.tgtadm(&[
                    "--op",
                    "update",
                    "--mode",
                    "logicalunit",
                    "--tid",
                    &tid,
                    "--lun",
                    &number,
                    "--params",
                    &params,
                ])?;
            }
            self.tgtadm(&[
                "--op", "bind", "--mode", "target", "--tid", &tid, "-I", "ALL",
            ])?;
        }
        self.configure_accounts(spec)
    }

    fn configure_accounts(&self, spec: &ResolvedSpec) -> Result<()> {
        // tgtd accounts are global and keyed by user name: create each once.
        let mut created: HashSet<&str> = HashSet::new();
        let tids: Vec<String> = (1..=self.export.targets().len())
            .map(|t| t.to_string())
            .collect();
        for (account, outgoing, per_target) in account_bindings(&spec.chap)? {
            if created.insert(account.user()) {
                self.tgtadm(&[
                    "--op",
                    "new",
                    "--mode",
                    "account",
                    "--user",
                    account.user(),
                    "--password",
                    account.secret(),
                ])?;
            }
            let mut bind = vec![
                "--op",
                "bind",
                "--mode",
                "account",
                "--user",
                account.user(),
            ];
            if outgoing {
                bind.push("--outgoing");
            }
            if per_target {
                for tid in &tids {
                    let mut args = bind.clone();
                    args.extend(["--tid", tid.as_str()]);
                    self.tgtadm(&args)?;
                }
            } else {
                // No --tid: the account guards discovery sessions.
                self.tgtadm(&bind)?;
            }
        }
        Ok(())
    }

    /// Kills tgtd with SIGKILL, as a crash would; the backing files stay.
    pub fn kill(&mut self) {
        self.daemon.stop(Duration::ZERO);
        remove_control_files(self.control_port);
    }

    /// Starts tgtd again (killing it first if it runs) on the same portals,
    /// with the same targets, LUNs (backing files and identities) and
    /// accounts: an array coming back after a crash.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let portals = self.export.portals().to_vec();
        let mut last = None;
        // A port of the dead daemon can take a moment to be free again.
        for _ in 0..START_ATTEMPTS * 4 {
            self.restarts += 1;
            let control_port = pick_control_port();
            let log = self
                .dir
                .path()
                .join(format!("tgtd-restart-{}.log", self.restarts));
            let command = tgtd_command(self.spec.netns.as_ref(), control_port, &portals)?;
            let mut daemon = Daemon::spawn("tgtd", command, &log)?;
            match daemon.wait_listening(&portals, self.spec.startup_timeout, COLLISION_MARKERS) {
                Startup::Ready => {
                    self.daemon = daemon;
                    self.control_port = control_port;
                    let spec = self.spec.clone();
                    return self.configure(&spec);
                }
                Startup::Collision(e) | Startup::Failed(e) => {
                    daemon.stop(Duration::ZERO);
                    remove_control_files(control_port);
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(FixtureError::StartRetriesExhausted {
            daemon: "tgtd",
            attempts: START_ATTEMPTS * 4,
            last: Box::new(last.unwrap_or_else(|| {
                FixtureError::InvalidConfig("no restart attempt was made".into())
            })),
        })
    }

    /// Best-effort orderly shutdown, then SIGKILL; never fails, never hangs long.
    fn teardown(&mut self) {
        if self.daemon.try_exit().is_none() {
            for tid in 1..=self.export.targets().len() {
                let tid = tid.to_string();
                let _ = self.tgtadm(&[
                    "--op", "delete", "--mode", "target", "--tid", &tid, "--force",
                ]);
            }
            let _ = self.tgtadm(&["--op", "delete", "--mode", "system"]);
        }
        self.daemon.stop(EXIT_GRACE);
        remove_control_files(self.control_port);
    }
}

impl Drop for Tgt {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl Fixture for Tgt {
    fn export(&self) -> &Export {
        &self.export
    }
}

impl FixtureBuilder<Tgt> {
    /// Runs tgtd (and tgtadm) in `netns`, whose links the portals should
    /// listen on (`.portal_ip(ns.link(0).target_ip.into())`); a portal
    /// without a port gets 3260, the namespace being ours alone.
    pub fn netns(mut self, netns: &Netns) -> Self {
        self.netns = Some(netns.clone());
        self
    }

    /// Starts tgtd and configures it; retries on port collisions. Fails with the
    /// missing binary, the failed command and its stderr, or tgtd's log.
    pub fn start(self) -> Result<Tgt> {
        let spec = self.resolve("tgt")?;
        account_bindings(&spec.chap)?;
        require_tool("tgtd")?;
        require_tool("tgtadm")?;
        let dir = temp_dir("tgt")?;
        let mut backing = Vec::new();
        let mut targets = Vec::new();
        for target in &spec.targets {
            let mut luns = Vec::new();
            for (index, lun) in target.luns.iter().enumerate() {
                let (path, exported) = lun.materialize(index as u64 + 1, true)?;
                backing.push(path);
                luns.push(exported);
            }
            targets.push(ExportedTarget {
                iqn: target.iqn.clone(),
                luns,
            });
        }

        let mut last_collision = None;
        for attempt in 0..START_ATTEMPTS {
            let control_port = pick_control_port();
            let port = pick_portal_port(&spec)?;
            let portals = spec.portal_addrs(port);
            let log = dir.path().join(format!("tgtd-{attempt}.log"));
            let command = tgtd_command(spec.netns.as_ref(), control_port, &portals)?;
            let mut daemon = Daemon::spawn("tgtd", command, &log)?;
            match daemon.wait_listening(&portals, spec.startup_timeout, COLLISION_MARKERS) {
                Startup::Ready => {
                    let export =
                        Export::new(portals, targets, spec.chap.clone()).ok_or_else(|| {
                            FixtureError::InvalidConfig("a fixture needs a portal and a LUN".into())
                        })?;
                    let tgt = Tgt {
                        export,
                        control_port,
                        daemon,
                        spec: spec.clone(),
                        restarts: 0,
                        _backing: backing,
                        dir,
                    };
                    // On failure `tgt` drops here and tears everything down.
                    tgt.configure(&spec)?;
                    return Ok(tgt);
                }
                Startup::Collision(error) => {
                    let control_taken = daemon.log_tail().contains(CONTROL_TAKEN);
                    daemon.stop(Duration::ZERO);
                    if !control_taken {
                        remove_control_files(control_port);
                    }
                    last_collision = Some(error);
                }
                Startup::Failed(error) => {
                    daemon.stop(Duration::ZERO);
                    remove_control_files(control_port);
                    return Err(error);
                }
            }
        }
        Err(FixtureError::StartRetriesExhausted {
            daemon: "tgtd",
            attempts: START_ATTEMPTS,
            last: Box::new(last_collision.unwrap_or_else(|| {
                FixtureError::InvalidConfig("no start attempt was made".into())
            })),
        })
    }
}

/// The accounts to create and how to bind each: `(account, outgoing, per target)`;
/// per target = session CHAP, else discovery CHAP (bound without `--tid`).
fn account_bindings(chap: &ChapConfig) -> Result<Vec<(&Chap, bool, bool)>> {
    let all = [
        (&chap.session, false, true),
        (&chap.mutual, true, true),
        (&chap.discovery, false, false),
        (&chap.discovery_mutual, true, false),
    ];
    let bindings: Vec<(&Chap, bool, bool)> = all
        .into_iter()
        .filter_map(|(account, outgoing, per_target)| {
            account.as_ref().map(|a| (a, outgoing, per_target))
        })
        .collect();
    let mut secrets: HashMap<&str, &str> = HashMap::new();
    for (account, _, _) in &bindings {
        if *secrets.entry(account.user()).or_insert(account.secret()) != account.secret() {
            return Err(FixtureError::InvalidConfig(format!(
                "tgtd accounts are global: user {} cannot have two secrets",
                account.user()
            )));
        }
    }
    Ok(bindings)
}

/// `tool`, inside `netns` when there is one.
fn tool_in(netns: Option<&Netns>, tool: &str) -> Result<ToolCommand> {
    match netns {
        Some(ns) => ns.command(tool),
        None => ToolCommand::new(tool),
    }
}

fn tgtd_command(
    netns: Option<&Netns>,
    control_port: u32,
    portals: &[SocketAddr],
) -> Result<std::process::Command> {
    let portal_arg = portals
        .iter()
        .map(|p| format!("portal={p}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(tool_in(netns, "tgtd")?
        .args(["-f".to_owned(), "-C".to_owned(), control_port.to_string()])
        .args(["--iscsi".to_owned(), portal_arg])
        .to_command())
}

/// A control port whose lock file does not exist (a stale one is skipped too); if
/// somehow all draws are taken, the last one is tried and the retry loop copes.
fn pick_control_port() -> u32 {
    let mut port = random_in(CONTROL_PORTS);
    for _ in 0..1000 {
        if !Path::new(&format!("{CONTROL_DIR}/socket.{port}.lock")).exists() {
            break;
        }
        port = random_in(CONTROL_PORTS);
    }
    port
}

fn pick_portal_port(spec: &ResolvedSpec) -> Result<u16> {
    let ips = spec.ips_needing_port();
    if spec.netns.is_some() {
        // Nothing else listens in a namespace of our own; and the host could
        // not bind its addresses to check anyway.
        return Ok(ISCSI_PORT);
    }
    if ips.is_empty() {
        // Every portal has an explicit port; the value is unused.
        return Ok(0);
    }
    free_port_on_all(&ips).map_err(|e| FixtureError::io("cannot find a free portal port", e))
}

/// tgtd leaves its control socket and lock file behind; remove ours once it is dead.
fn remove_control_files(control_port: u32) {
    for suffix in ["", ".lock"] {
        let _ = fs::remove_file(format!("{CONTROL_DIR}/socket.{control_port}{suffix}"));
    }
}
