//! The builder shared by the target fixtures: portals, targets, LUNs and CHAP.
//!
//! One builder type for every daemon: `FixtureBuilder<Tgt>` and
//! `FixtureBuilder<Istgt>` differ only in their `start()`.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::chap::{Chap, ChapConfig};
use crate::error::{FixtureError, Result};
use crate::lun::LunSpec;
use crate::net::unique_loopback_v4;
use crate::netns::Netns;

/// Size of the LUN a target gets when none is specified.
pub const DEFAULT_LUN_SIZE: u64 = 16 << 20;

/// How long a daemon may take to listen on all its portals.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// IQN prefix of generated target names.
const IQN_PREFIX: &str = "iqn.2026-11.io.riscsi.test";

/// A portal address; the port is chosen at start unless given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PortalSpec {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl PortalSpec {
    /// Accepts `127.0.0.2`, `::1`, `[::1]`, `127.0.0.2:3260`, `[::1]:3260`.
    fn parse(text: &str) -> Option<PortalSpec> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Some(PortalSpec {
                ip: addr.ip(),
                port: Some(addr.port()),
            });
        }
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        bare.parse().ok().map(|ip| PortalSpec { ip, port: None })
    }

    /// The address with `port` filled in where none was given.
    pub fn with_default_port(self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(port))
    }
}

/// An extra target for [`FixtureBuilder::target`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSpec {
    iqn: Option<String>,
    luns: Vec<LunSpec>,
}

impl TargetSpec {
    /// A target with a generated IQN and no LUN yet (it gets a default one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the target IQN.
    pub fn iqn(mut self, iqn: impl Into<String>) -> Self {
        self.iqn = Some(iqn.into());
        self
    }

    /// Adds a LUN.
    pub fn lun(mut self, lun: LunSpec) -> Self {
        self.luns.push(lun);
        self
    }
}

/// A target fully decided: IQN and LUNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedTarget {
    pub iqn: String,
    pub luns: Vec<LunSpec>,
}

/// A validated builder, ready for a daemon to start.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedSpec {
    pub portals: Vec<PortalSpec>,
    pub targets: Vec<ResolvedTarget>,
    pub chap: ChapConfig,
    pub startup_timeout: Duration,
    /// istgt's `UseDigest` value; `None` keeps the daemon's default setting.
    pub use_digest: Option<String>,
    /// The network namespace the daemon runs in (tgtd's `netns`).
    pub netns: Option<Netns>,
}

impl ResolvedSpec {
    /// Portal addresses with `port` for the portals without an explicit one.
    pub fn portal_addrs(&self, port: u16) -> Vec<SocketAddr> {
        self.portals
            .iter()
            .map(|p| p.with_default_port(port))
            .collect()
    }

    /// The IPs that still need a port.
    pub fn ips_needing_port(&self) -> Vec<IpAddr> {
        self.portals
            .iter()
            .filter(|p| p.port.is_none())
            .map(|p| p.ip)
            .collect()
    }
}

/// Builds a target fixture:
/// `Tgt::builder().portal("127.0.0.1").portal("::1").lun(LunSpec::new(64 << 20)).chap("u", "secret").start()?`.
///
/// Defaults: one portal on a fresh 127.x.y.z address, one target with a generated
/// IQN and one 16 MiB LUN, no CHAP.
pub struct FixtureBuilder<F> {
    portals: Vec<PortalSpec>,
    targets: Vec<TargetSpec>,
    chap: ChapConfig,
    problems: Vec<String>,
    startup_timeout: Duration,
    /// Set by a daemon's own builder method (istgt's `use_digest`).
    pub(crate) use_digest: Option<String>,
    /// Set by tgtd's `netns`.
    pub(crate) netns: Option<Netns>,
    fixture: PhantomData<fn() -> F>,
}

impl<F> fmt::Debug for FixtureBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixtureBuilder")
            .field("portals", &self.portals)
            .field("targets", &self.targets)
            .field("chap", &self.chap)
            .field("problems", &self.problems)
            .finish()
    }
}

impl<F> Default for FixtureBuilder<F> {
    fn default() -> Self {
        FixtureBuilder {
            portals: Vec::new(),
            targets: vec![TargetSpec::new()],
            chap: ChapConfig::default(),
            problems: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            use_digest: None,
            netns: None,
            fixture: PhantomData,
        }
    }
}

impl<F> FixtureBuilder<F> {
    /// Adds a portal: `"127.0.0.2"`, `"::1"` (port chosen free at start) or
    /// `"127.0.0.2:3260"`, `"[::1]:3260"` (that port; no retry if it is taken).
    pub fn portal(mut self, address: &str) -> Self {
        match PortalSpec::parse(address) {
            Some(portal) => self.portals.push(portal),
            None => self
                .problems
                .push(format!("portal {address:?} is not an IP address")),
        }
        self
    }

    /// Adds a portal on `ip`, port chosen at start.
    pub fn portal_ip(mut self, ip: IpAddr) -> Self {
        self.portals.push(PortalSpec { ip, port: None });
        self
    }

    /// Sets the IQN of the first target.
    pub fn iqn(mut self, iqn: impl Into<String>) -> Self {
        self.targets[0].iqn = Some(iqn.into());
        self
    }

    /// Adds a LUN to the first target.
    pub fn lun(mut self, lun: LunSpec) -> Self {
        self.targets[0].luns.push(lun);
        self
    }

    /// Adds another target with its own LUNs.
    pub fn target(mut self, target: TargetSpec) -> Self {
        self.targets.push(target);
        self
    }

    /// Requires one-way session CHAP (the initiator authenticates).
    pub fn chap(mut self, user: &str, secret: &str) -> Self {
        self.chap.session = Some(Chap::new(user, secret));
        self
    }

    /// Requires mutual session CHAP (the target authenticates back with these).
    pub fn mutual_chap(mut self, user: &str, secret: &str) -> Self {
        self.chap.mutual = Some(Chap::new(user, secret));
        self
    }

    /// Requires CHAP on SendTargets discovery sessions.
    pub fn discovery_chap(mut self, user: &str, secret: &str) -> Self {
        self.chap.discovery = Some(Chap::new(user, secret));
        self
    }

    /// Requires mutual CHAP on discovery sessions.
    pub fn discovery_mutual_chap(mut self, user: &str, secret: &str) -> Self {
        self.chap.discovery_mutual = Some(Chap::new(user, secret));
        self
    }

    /// Records a problem that [`FixtureBuilder::resolve`] reports (for the
    /// daemons' own builder methods).
    pub(crate) fn problem(mut self, problem: String) -> Self {
        self.problems.push(problem);
        self
    }

    /// How long the daemon may take to come up (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Validates everything and fills in the defaults; `daemon` names generated IQNs.
    pub(crate) fn resolve(self, daemon: &str) -> Result<ResolvedSpec> {
        if let Some(problem) = self.problems.first() {
            return Err(FixtureError::InvalidConfig(problem.clone()));
        }
        self.chap.validate()?;
        let portals = if self.portals.is_empty() {
            vec![PortalSpec {
                ip: IpAddr::V4(unique_loopback_v4()),
                port: None,
            }]
        } else {
            self.portals
        };
        for (i, a) in portals.iter().enumerate() {
            if portals[..i]
                .iter()
                .any(|b| b.ip == a.ip && b.port == a.port)
            {
                return Err(FixtureError::InvalidConfig(format!(
                    "portal {} given twice (use different addresses, e.g. 127.0.0.2)",
                    a.ip
                )));
            }
        }
        let mut targets = Vec::with_capacity(self.targets.len());
        for spec in self.targets {
            let iqn = spec.iqn.unwrap_or_else(|| generated_iqn(daemon));
            validate_iqn(&iqn)?;
            if targets.iter().any(|t: &ResolvedTarget| t.iqn == iqn) {
                return Err(FixtureError::InvalidConfig(format!(
                    "IQN {iqn} given twice"
                )));
            }
            let luns = if spec.luns.is_empty() {
                vec![LunSpec::new(DEFAULT_LUN_SIZE)]
            } else {
                spec.luns
            };
            for lun in &luns {
                lun.validate()?;
            }
            targets.push(ResolvedTarget { iqn, luns });
        }
        Ok(ResolvedSpec {
            portals,
            targets,
            chap: self.chap,
            startup_timeout: self.startup_timeout,
            use_digest: self.use_digest,
            netns: self.netns,
        })
    }
}

/// A target name unique across processes (pid) and within one (counter).
fn generated_iqn(daemon: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{IQN_PREFIX}:{daemon}-{}-{n}", std::process::id())
}

/// IQNs end up in URLs, tgtadm arguments and quoted config values.
fn validate_iqn(iqn: &str) -> Result<()> {
    let ok = !iqn.is_empty()
        && iqn.len() <= 223
        && iqn
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FixtureError::InvalidConfig(format!(
            "IQN {iqn:?} must be 1-223 characters of [a-z0-9.:-] (RFC 3722 normal form)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy;

    fn builder() -> FixtureBuilder<Dummy> {
        FixtureBuilder::default()
    }

    #[test]
    fn portal_forms_parse() {
        let spec = builder()
            .portal("127.0.0.2")
            .portal("::1")
            .portal("[::2]")
            .portal("127.0.0.3:3260")
            .portal("[::1]:3261")
            .resolve("t")
            .unwrap();
        let addrs = spec.portal_addrs(4000);
        let expected: Vec<SocketAddr> = [
            "127.0.0.2:4000",
            "[::1]:4000",
            "[::2]:4000",
            "127.0.0.3:3260",
            "[::1]:3261",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(addrs, expected);
        assert_eq!(spec.ips_needing_port().len(), 3);
    }

    #[test]
    fn bad_portal_is_reported_at_resolve() {
        let err = builder().portal("not-an-ip").resolve("t").unwrap_err();
        assert!(err.to_string().contains("not-an-ip"), "{err}");
        assert!(
            builder()
                .portal("127.0.0.2")
                .portal("127.0.0.2")
                .resolve("t")
                .is_err()
        );
    }

    #[test]
    fn defaults_fill_in() {
        let spec = builder().resolve("tgt").unwrap();
        assert_eq!(spec.portals.len(), 1);
        assert!(spec.portals[0].ip.is_loopback());
        assert_eq!(spec.targets.len(), 1);
        assert!(
            spec.targets[0]
                .iqn
                .starts_with("iqn.2026-11.io.riscsi.test:tgt-")
        );
        assert_eq!(spec.targets[0].luns, [LunSpec::new(DEFAULT_LUN_SIZE)]);
    }

    #[test]
    fn generated_iqns_differ() {
        let spec = builder().target(TargetSpec::new()).resolve("x").unwrap();
        assert_ne!(spec.targets[0].iqn, spec.targets[1].iqn);
        validate_iqn(&spec.targets[1].iqn).unwrap();
    }

    #[test]
    fn invalid_iqn_and_duplicates_refused() {
        assert!(builder().iqn("iqn.bad name").resolve("x").is_err());
        assert!(builder().iqn("iqn.Upper:x").resolve("x").is_err());
        assert!(
            builder()
                .iqn("iqn.a:x")
                .target(TargetSpec::new().iqn("iqn.a:x"))
                .resolve("x")
                .is_err()
        );
    }

    #[test]
    fn chap_rules_are_enforced() {
        assert!(builder().mutual_chap("t", "secret").resolve("x").is_err());
        let spec = builder()
            .chap("u", "secret1")
            .mutual_chap("t", "secret2")
            .discovery_chap("d", "secret3")
            .discovery_mutual_chap("dt", "secret4")
            .resolve("x")
            .unwrap();
        assert_eq!(spec.chap.secrets().len(), 4);
    }
}
