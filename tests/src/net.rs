//! Loopback addresses and free ports for fixtures running in parallel.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pattern::splitmix64;

/// Ports handed to daemons come from here: below Linux's default ephemeral range
/// (32768-60999), so the client sockets of parallel tests rarely sit on them.
const DAEMON_PORTS: std::ops::Range<u16> = 20000..32000;

/// How many random ports to try before giving up.
const PORT_ATTEMPTS: usize = 200;

/// A fresh pseudo-random number: pid, clock and a counter mixed, so that parallel
/// test processes draw different sequences without a shared registry.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    splitmix64(nanos ^ (u64::from(std::process::id()) << 40) ^ splitmix64(count))
}

/// A random number in `range` (which must not be empty).
pub(crate) fn random_in(range: std::ops::Range<u32>) -> u32 {
    let span = u64::from(range.end - range.start);
    range.start + (random_u64() % span) as u32
}

/// A port on which nothing listens right now at `ip`, chosen by the kernel.
///
/// The port is free when this returns, not reserved: a daemon given it may still
/// lose a race, so fixtures retry their start on a bind failure.
pub fn free_port(ip: IpAddr) -> io::Result<u16> {
    Ok(TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

/// A port that can be bound on every one of `ips` right now (one port for all the
/// portals of a target, as a real array would have), outside the ephemeral range.
pub fn free_port_on_all(ips: &[IpAddr]) -> io::Result<u16> {
    for _ in 0..PORT_ATTEMPTS {
        let port = random_in(u32::from(DAEMON_PORTS.start)..u32::from(DAEMON_PORTS.end)) as u16;
        let bindable = ips
            .iter()
            .all(|ip| TcpListener::bind(SocketAddr::new(*ip, port)).is_ok());
        if bindable {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no port in {DAEMON_PORTS:?} free on all of {ips:?} after {PORT_ATTEMPTS} tries"),
    ))
}

/// A loopback address 127.x.y.z not handed out before by this process, so each
/// portal or proxy can have an address of its own (any 127/8 address works on Linux
/// without setup). `x` is derived from the process id, which keeps parallel test
/// processes mostly apart; ports keep them fully apart.
pub fn unique_loopback_v4() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Skip 127.0.0.0/16-ish neighbourhoods people use by hand (127.0.0.1 ...).
    let x = 2 + (std::process::id() % 250) as u8;
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % (254 * 254);
    let y = 1 + (n / 254) as u8;
    let z = 1 + (n % 254) as u8;
    Ipv4Addr::new(127, x, y, z)
}

/// Formats a portal the way iSCSI and Cinder write it: `host:port`, IPv6 as
/// `[addr]:port`.
pub fn portal_string(addr: SocketAddr) -> String {
    // SocketAddr's Display is exactly that format (no scope ids on loopback).
    addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv6Addr;

    #[test]
    fn free_port_is_bindable() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = free_port(ip).unwrap();
        TcpListener::bind(SocketAddr::new(ip, port)).unwrap();
    }

    #[test]
    fn common_port_is_bindable_everywhere() {
        let ips = [
            IpAddr::V4(unique_loopback_v4()),
            IpAddr::V4(unique_loopback_v4()),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let port = free_port_on_all(&ips).unwrap();
        assert!(DAEMON_PORTS.contains(&port));
        let _held: Vec<_> = ips
            .iter()
            .map(|ip| TcpListener::bind(SocketAddr::new(*ip, port)).unwrap())
            .collect();
    }

    #[test]
    fn busy_port_is_never_chosen() {
        let ip = IpAddr::V4(unique_loopback_v4());
        // Occupy a good share of the range on this address, then ask often.
        let held: Vec<_> = (DAEMON_PORTS.start..DAEMON_PORTS.start + 500)
            .filter_map(|p| TcpListener::bind(SocketAddr::new(ip, p)).ok())
            .collect();
        let busy: HashSet<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        for _ in 0..200 {
            assert!(!busy.contains(&free_port_on_all(&[ip]).unwrap()));
        }
    }

    #[test]
    fn loopback_addresses_are_unique_and_usable() {
        let addrs: Vec<_> = (0..300).map(|_| unique_loopback_v4()).collect();
        let distinct: HashSet<_> = addrs.iter().collect();
        assert_eq!(distinct.len(), addrs.len());
        assert!(addrs.iter().all(|a| a.is_loopback() && a.octets()[3] != 0));
        TcpListener::bind(SocketAddr::new(IpAddr::V4(addrs[0]), 0)).unwrap();
    }

    #[test]
    fn portal_strings_bracket_ipv6() {
        assert_eq!(
            portal_string("127.0.0.2:3260".parse().unwrap()),
            "127.0.0.2:3260"
        );
        assert_eq!(portal_string("[::1]:3260".parse().unwrap()), "[::1]:3260");
    }
}
