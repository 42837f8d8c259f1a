//! Which TCP addresses a given process is listening on, from `/proc`.
//!
//! A daemon is ready when every portal it was given is a listening socket *it owns*.
//! Connecting to the portal would not tell: when tgtd fails to bind a portal it keeps
//! running, and the address may then belong to somebody else's listener.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP state code of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: u8 = 0x0A;

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketRow {
    pub local: SocketAddr,
    pub state: u8,
    pub inode: u64,
}

/// Addresses on which process `pid` has a listening TCP socket.
pub fn listening_addrs(pid: u32) -> io::Result<HashSet<SocketAddr>> {
    let inodes = socket_inodes(pid)?;
    let mut listening = HashSet::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        // A kernel without IPv6 has no tcp6 file; that is not an error.
        let text = match fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        listening.extend(
            parse_table(&text, v6)
                .into_iter()
                .filter(|row| row.state == TCP_LISTEN && inodes.contains(&row.inode))
                .map(|row| row.local),
        );
    }
    Ok(listening)
}

/// Inodes of the sockets among the file descriptors of `pid`.
fn socket_inodes(pid: u32) -> io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        // Descriptors close while we iterate; skip those that vanished.
        let Ok(target) = fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// Parses the text of `/proc/net/tcp` (`v6 == false`) or `/proc/net/tcp6`; rows that
/// do not parse are skipped.
pub(crate) fn parse_table(text: &str, v6: bool) -> Vec<SocketRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| parse_row(line, v6))
        .collect()
}

fn parse_row(line: &str, v6: bool) -> Option<SocketRow> {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (addr_hex, port_hex) = fields.get(1)?.split_once(':')?;
    let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
    let inode = fields.get(9)?.parse().ok()?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = if v6 {
        IpAddr::V6(parse_v6(addr_hex)?)
    } else {
        IpAddr::V4(parse_v4(addr_hex)?)
    };
    Some(SocketRow {
        local: SocketAddr::new(ip, port),
        state,
        inode,
    })
}

/// The kernel prints the address as one 32-bit word in host (little-endian) order.
fn parse_v4(hex: &str) -> Option<Ipv4Addr> {
    if hex.len() != 8 {
        return None;
    }
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(word.to_le_bytes()))
}

/// Four 32-bit words, each in host (little-endian) order.
fn parse_v6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, chunk) in octets.chunks_exact_mut(4).enumerate() {
        let word = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Some(Ipv6Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0200007F:9C40 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 20 4 30 10 -1
   2: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_ipv4_rows() {
        let rows = parse_table(TCP, false);
        assert_eq!(rows.len(), 2, "the garbage row is skipped");
        assert_eq!(rows[0].local, "127.0.0.1:3306".parse().unwrap());
        assert_eq!(rows[0].state, TCP_LISTEN);
        assert_eq!(rows[0].inode, 31337);
        assert_eq!(rows[1].local, "127.0.0.2:40000".parse().unwrap());
        assert_eq!(rows[1].state, 1);
    }

    #[test]
    fn parses_ipv6_rows() {
        let rows = parse_table(TCP6, true);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "[::1]:3306".parse().unwrap());
        assert_eq!(rows[0].inode, 777);
    }

    #[test]
    fn rejects_malformed_addresses() {
        assert_eq!(parse_v4("0100007"), None);
        assert_eq!(parse_v4("0100007G"), None);
        assert_eq!(parse_v6("00"), None);
        assert_eq!(parse_v6("é0000000000000000000000000000001"), None);
    }

    #[test]
    fn sees_our_own_listener_and_not_after_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(listening_addrs(std::process::id()).unwrap().contains(&addr));
        drop(listener);
        assert!(!listening_addrs(std::process::id()).unwrap().contains(&addr));
    }

    #[test]
    fn sees_ipv6_listener() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            panic!("IPv6 loopback unavailable: the fixtures need [::1]");
        };
        let addr = listener.local_addr().unwrap();
        assert!(listening_addrs(std::process::id()).unwrap().contains(&addr));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(line in ".{0,200}") {
            let _ = parse_table(&format!("header\n{line}"), false);
            let _ = parse_table(&format!("header\n{line}"), true);
        }
    }
}
