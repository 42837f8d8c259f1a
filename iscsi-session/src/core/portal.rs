//! A target portal address: `host:port`, `[IPv6]:port`, or a host alone (3260).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use iscsi_proto::text::TargetAddress;

/// The iSCSI well-known port.
pub const DEFAULT_PORT: u16 = 3260;

/// Where a target listens. The host stays a string so that DNS names survive
/// until connect time; IPv6 hosts are kept without brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Portal {
    /// DNS name or IP literal; an IPv6 address without brackets.
    pub host: String,
    /// TCP port, [`DEFAULT_PORT`] unless the target says otherwise.
    pub port: u16,
}

/// A portal string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid portal {input:?}: {reason}")]
pub struct PortalParseError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Portal {
    /// A portal from a host (no brackets around IPv6) and a port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Portal {
            host: host.into(),
            port,
        }
    }

    /// The socket address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for Portal {
    fn from(a: SocketAddr) -> Self {
        Portal {
            host: a.ip().to_string(),
            port: a.port(),
        }
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
    /// a `,tpgt` suffix (as SendTargets and iscsiadm print) is dropped. The
    /// syntax is the TargetAddress one, parsed by iscsi-proto.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let address = TargetAddress::parse(input.trim()).map_err(|e| PortalParseError {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Portal::from(address))
    }
}

impl From<TargetAddress> for Portal {
    fn from(a: TargetAddress) -> Self {
        Portal {
            host: a.host,
            port: a.port,
        }
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
        assert_eq!(
            p("storage.example:3260"),
            Portal::new("storage.example", 3260)
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            ":3260",
            "host:99999",
            "[::1",
            "[nope]:1",
            "a b:1",
            "[::1]x",
        ] {
            assert!(bad.parse::<Portal>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_brackets_ipv6() {
        assert_eq!(Portal::new("::1", 3260).to_string(), "[::1]:3260");
        assert_eq!(Portal::new("127.0.0.2", 3261).to_string(), "127.0.0.2:3261");
        assert_eq!(
            Portal::new("::1", 5).socket_addr(),
            Some("[::1]:5".parse().unwrap())
        );
    }
}
