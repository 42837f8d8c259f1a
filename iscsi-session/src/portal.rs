//! A target portal address: `host:port`, `[IPv6]:port`, or a host alone (3260).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The iSCSI well-known port.
pub const DEFAULT_PORT: u16 = 3260;

/// Where a target listens. The host stays a string so that DNS names survive
/// until connect time; IPv6 hosts are kept without brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Portal {
    pub host: String,
    pub port: u16,
}

/// A portal string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid portal {input:?}: {reason}")]
pub struct PortalParseError {
    pub input: String,
    pub reason: &'static str,
}

impl Portal {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Portal { host: host.into(), port }
    }

    /// The socket address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for Portal {
    fn from(a: SocketAddr) -> Self {
        Portal { host: a.ip().to_string(), port: a.port() }
    }
}

impl fmt::Display for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Portal {
    type Err = PortalParseError;

    /// Accepts `host`, `host:port`, `[v6]`, `[v6]:port` and a bare IPv6 literal;
    /// a `,tpgt` suffix (as SendTargets and iscsiadm print) is dropped.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| PortalParseError { input: input.to_owned(), reason };
        let s = input.trim();
        let s = match s.rfind(',') {
            Some(i) if !s[i + 1..].is_empty() && s[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                &s[..i]
            }
            _ => s,
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        let parse_port = |p: &str| p.parse::<u16>().map_err(|_| err("bad port"));
        if let Some(rest) = s.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| err("missing ']'"))?;
            let host = &rest[..end];
            host.parse::<std::net::Ipv6Addr>().map_err(|_| err("bad IPv6 address"))?;
            let after = &rest[end + 1..];
            let port = match after {
                "" => DEFAULT_PORT,
                p => parse_port(p.strip_prefix(':').ok_or_else(|| err("junk after ']'"))?)?,
            };
            return Ok(Portal::new(host, port));
        }
        if s.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(Portal::new(s, DEFAULT_PORT));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p)?),
            None => (s, DEFAULT_PORT),
        };
        if host.is_empty()
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(err("bad host name"));
        }
        Ok(Portal::new(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let p = |s: &str| s.parse::<Portal>().unwrap();
        assert_eq!(p("10.0.0.1:3261"), Portal::new("10.0.0.1", 3261));
        assert_eq!(p("10.0.0.1"), Portal::new("10.0.0.1", 3260));
        assert_eq!(p("[::1]:3262"), Portal::new("::1", 3262));
        assert_eq!(p("[fe80::1]"), Portal::new("fe80::1", 3260));
        assert_eq!(p("fe80::1"), Portal::new("fe80::1", 3260));
        assert_eq!(p("10.0.0.1:3260,1"), Portal::new("10.0.0.1", 3260));
        assert_eq!(p("[::1]:3260,12"), Portal::new("::1", 3260));
        assert_eq!(p("storage.example:3260"), Portal::new("storage.example", 3260));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", ":3260", "host:99999", "[::1", "[nope]:1", "a b:1", "[::1]x"] {
            assert!(bad.parse::<Portal>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_brackets_ipv6() {
        assert_eq!(Portal::new("::1", 3260).to_string(), "[::1]:3260");
        assert_eq!(Portal::new("127.0.0.2", 3261).to_string(), "127.0.0.2:3261");
        assert_eq!(Portal::new("::1", 5).socket_addr(), Some("[::1]:5".parse().unwrap()));
    }
}
