//! `Netns`: a network namespace of its own for a target, reached from the
//! host over one veth pair per portal, so a test can cut a path the way a
//! cable pull does and impair it the way a bad link does.
//!
//! Link `i` is `10.R.S.4i/30`: the host end has `.4i+1`, the namespace end
//! `.4i+2` (the portal). `R.S` is drawn at random per namespace, and the
//! interface names are derived from it (`rsRRSSh0`, `rsRRSSt0`): creating the
//! first veth fails if another fixture holds the same block, so two fixtures
//! never share addresses even when they run at the same time.
//!
//! Facts this relies on (measured on this machine: Linux 6.18, iproute2 6.1):
//! - Taking the HOST end down administratively removes its connected route,
//!   and the portal's traffic then follows the default route out of eth0
//!   (here a gateway that accepts any TCP connection). A cut therefore takes
//!   the NAMESPACE end down: the host end loses its carrier (`NO-CARRIER`),
//!   keeps its route, and silently drops what it sends, as a NIC does when
//!   its cable is pulled: no RST, no FIN; connects time out, or fail with
//!   "no route to host" once ARP for the portal has given up (about 3 s).
//! - The kernel has no `sch_netem` (CONFIG_NET_SCH_NETEM is off; the qdiscs
//!   built in are fifo, htb, tbf, ingress and clsact), so delay and loss are
//!   done by netfilter: an NFQUEUE rule in the namespace
//!   and a verdict thread of ours (`netns/nfqueue.rs`); see [`Impairment`].
//!
//! Cleanup: `Drop` deletes the veths and the namespace (deleting either end
//! of a veth deletes both). A namespace left by a test process that died
//! without unwinding (SIGKILL) is named after its pid and deleted by the
//! next [`Netns::create`] once that pid is gone.

mod nfqueue;

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::command::ToolCommand;
use crate::error::{FixtureError, Result};
use crate::net::random_u64;
use crate::tools::require_tool;

use nfqueue::Shaper;
pub use nfqueue::{Impairment, ImpairmentStats};

/// Prefix of every namespace this module creates (`riscsi-PID-N`).
const NAME_PREFIX: &str = "riscsi-";
/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Deadline of one `ip` or `iptables` run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Address blocks tried before giving up.
const BLOCK_ATTEMPTS: usize = 32;
/// Links one /24 holds (a /30 each).
const MAX_LINKS: usize = 64;

/// One veth pair: a path between the host and the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The host end's interface name.
    pub host_if: String,
    /// The namespace end's interface name.
    pub target_if: String,
    /// The host end's address.
    pub host_ip: Ipv4Addr,
    /// The namespace end's address (where a portal listens).
    pub target_ip: Ipv4Addr,
}

/// A network namespace with its links; a cheap handle (clones share it),
/// torn down when the last one drops.
#[derive(Clone)]
pub struct Netns {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    links: Vec<Link>,
    /// One slot per link: the impairment running on it.
    shapers: Mutex<Vec<Option<Shaper>>>,
}

impl fmt::Debug for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netns")
            .field("name", &self.inner.name)
            .field("links", &self.inner.links)
            .finish()
    }
}

impl Netns {
    /// A fresh namespace with `links` veth pairs, every link up. Fails with
    /// the reason when namespaces are unusable here (not root, no `ip`, a
    /// kernel without veth...): a test needing one never skips.
    pub fn create(links: usize) -> Result<Netns> {
        if links == 0 || links > MAX_LINKS {
            return Err(FixtureError::InvalidConfig(format!(
                "a namespace holds 1 to {MAX_LINKS} links, not {links}"
            )));
        }
        require_tool("ip")?;
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Err(FixtureError::Netns {
                name: "(none)".into(),
                problem: format!("network namespaces and veths need root; running as uid {uid}"),
            });
        }
        remove_stale();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        // From here on, Drop of `ns` deletes whatever was created.
        let mut inner = Inner {
            name,
            links: Vec::new(),
            shapers: Mutex::new(Vec::new()),
        };
        inner.ip_in(&["link", "set", "lo", "up"])?;
        let block = inner.create_first_link()?;
        for index in 1..links {
            inner.create_link(block, index)?;
        }
        inner.shapers = Mutex::new((0..links).map(|_| None).collect());
        Ok(Netns {
            inner: Arc::new(inner),
        })
    }

    /// The namespace's name (`ip netns exec NAME ...`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Every link, in creation order.
    pub fn links(&self) -> &[Link] {
        &self.inner.links
    }

    /// Link `index`; panics if there is none (a test bug).
    pub fn link(&self, index: usize) -> &Link {
        &self.inner.links[index]
    }

    /// A command running `tool` inside the namespace.
    pub fn command(&self, tool: &str) -> Result<ToolCommand> {
        command_in(self.name(), tool)
    }

    /// Cuts link `index` (`false`) or restores it (`true`). The namespace end
    /// goes down, so the host end loses its carrier: see the module docs.
    pub fn set_link(&self, index: usize, up: bool) -> Result<()> {
        let link = self.existing(index)?;
        let state = if up { "up" } else { "down" };
        self.inner
            .ip_in(&["link", "set", "dev", &link.target_if, state])
    }

    /// Starts impairing what the host sends over link `index` (the direction
    /// `tc qdisc add dev HOST_END root netem ...` would act on), or changes a
    /// running impairment.
    pub fn impair(&self, index: usize, impairment: Impairment) -> Result<()> {
        let link = self.existing(index)?.clone();
        let mut shapers = self.inner.shapers.lock().unwrap_or_else(|e| e.into_inner());
        match &shapers[index] {
            Some(shaper) => shaper.change(impairment),
            None => {
                let queue = u16::try_from(index).expect("MAX_LINKS fits a queue number");
                shapers[index] = Some(Shaper::start(self.name(), &link, queue, impairment)?);
            }
        }
        Ok(())
    }

    /// Ends the impairment of link `index` (packets held are let through);
    /// what it did.
    pub fn clear(&self, index: usize) -> Result<ImpairmentStats> {
        self.existing(index)?;
        let shaper = self.inner.shapers.lock().unwrap_or_else(|e| e.into_inner())[index].take();
        shaper.map_or(Ok(ImpairmentStats::default()), Shaper::stop)
    }

    fn existing(&self, index: usize) -> Result<&Link> {
        self.inner.links.get(index).ok_or_else(|| {
            FixtureError::InvalidConfig(format!(
                "namespace {} has no link {index}",
                self.inner.name
            ))
        })
    }
}

impl Inner {
    /// `ip -n NAME ARGS`.
    fn ip_in(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Link 0 in a free address block; returns the block's `R.S`.
    fn create_first_link(&mut self) -> Result<(u8, u8)> {
        let mut last = None;
        for _ in 0..BLOCK_ATTEMPTS {
            let draw = random_u64();
            // 10.200.0.0 - 10.254.255.255: clear of the 10.0/10.1 nets people
            // configure by hand.
            let block = (200 + (draw % 55) as u8, (draw >> 8) as u8);
            if block_in_use(block)? {
                continue;
            }
            match self.create_link(block, 0) {
                Ok(()) => return Ok(block),
                // Another fixture took this block (same interface names).
                Err(e) if e.to_string().contains("File exists") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(FixtureError::Netns {
            name: self.name.clone(),
            problem: format!(
                "no free 10.R.S.0/24 block after {BLOCK_ATTEMPTS} draws; last: {}",
                last.map_or("every draw was routed already".into(), |e| e.to_string())
            ),
        })
    }

    fn create_link(&mut self, (r, s): (u8, u8), index: usize) -> Result<()> {
        let base = (index * 4) as u8;
        let link = Link {
            host_if: format!("rs{r:02x}{s:02x}h{index}"),
            target_if: format!("rs{r:02x}{s:02x}t{index}"),
            host_ip: Ipv4Addr::new(10, r, s, base + 1),
            target_ip: Ipv4Addr::new(10, r, s, base + 2),
        };
        ip(&[
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &link.target_if,
            "netns",
            &self.name,
        ])?;
        // Recorded at once so that Drop deletes it if a later step fails.
        self.links.push(link.clone());
        ip(&[
            "addr",
            "add",
            &format!("{}/30", link.host_ip),
            "dev",
            &link.host_if,
        ])?;
        ip(&["link", "set", "dev", &link.host_if, "up"])?;
        self.ip_in(&[
            "addr",
            "add",
            &format!("{}/30", link.target_ip),
            "dev",
            &link.target_if,
        ])?;
        self.ip_in(&["link", "set", "dev", &link.target_if, "up"])
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Shapers first: each removes its rule and lets held packets go.
        let shapers = self.shapers.get_mut().unwrap_or_else(|e| e.into_inner());
        for shaper in shapers.drain(..).flatten() {
            let _ = shaper.stop();
        }
        for link in &self.links {
            let _ = ip(&["link", "del", "dev", &link.host_if]);
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// `ip netns exec NAME TOOL`: a command running `tool` in namespace `name`.
fn command_in(name: &str, tool: &str) -> Result<ToolCommand> {
    let program = require_tool(tool)?;
    Ok(ToolCommand::new("ip")?
        .args(["netns", "exec", name])
        .arg(program.display().to_string()))
}

/// `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    ToolCommand::new("ip")?
        .args(args.iter().copied())
        .run_ok(TOOL_TIMEOUT)
        .map(drop)
}

/// Whether the host already has an address or route in `10.R.S.0/24` (or a
/// route covering it other than the default one).
fn block_in_use((r, s): (u8, u8)) -> Result<bool> {
    let net = format!("10.{r}.{s}.0/24");
    for selector in ["root", "match"] {
        let out = ToolCommand::new("ip")?
            .args(["-4", "-o", "route", "show", selector, &net])
            .run_ok(TOOL_TIMEOUT)?;
        if out
            .stdout
            .lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with("default"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the namespaces of test processes that died without cleaning up
/// (the pid in `riscsi-PID-N` is gone); their veths go with them.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            // The veths first: the namespace itself may outlive its name for
            // minutes (orphaned TCP sockets of the dead daemon retransmitting
            // their FIN over a cut link), and its veths with it.
            for veth in veths_in(&name) {
                let _ = ip(&["-n", &name, "link", "del", "dev", &veth]);
            }
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// The veths in namespace `name` (`ip -o link` lines read `N: NAME@PEER: ...`).
fn veths_in(name: &str) -> Vec<String> {
    let Ok(out) = ToolCommand::new("ip").and_then(|c| {
        c.args(["-n", name, "-o", "link", "show", "type", "veth"])
            .run_ok(TOOL_TIMEOUT)
    }) else {
        return Vec::new();
    };
    out.stdout.lines().filter_map(interface_name).collect()
}

/// The interface name of an `ip -o link` line.
fn interface_name(line: &str) -> Option<String> {
    let (_, rest) = line.split_once(": ")?;
    let name = rest.split([':', '@']).next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names_parse_only_ours() {
        // The parsing in remove_stale, on names it must and must not touch.
        let pid = |name: &str| {
            name.strip_prefix(NAME_PREFIX)
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
        };
        assert_eq!(pid("riscsi-1234-0"), Some(1234));
        assert_eq!(pid("riscsi-x-0"), None);
        assert_eq!(pid("other-1234-0"), None);
    }

    #[test]
    fn interface_names_parse() {
        let line = "2: rsdaf4t0@if137: <BROADCAST,MULTICAST> mtu 1500 qdisc noop";
        assert_eq!(interface_name(line).as_deref(), Some("rsdaf4t0"));
        assert_eq!(interface_name("3: lo: <LOOPBACK>").as_deref(), Some("lo"));
        assert_eq!(interface_name("garbage"), None);
    }
}
