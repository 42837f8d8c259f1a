//! SendTargets responses (RFC 7143 §13.3 and Appendix C) and the
//! TargetAddress value syntax `domainname[:port][,portal-group-tag]`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::{Snippet, TextError};
use super::pairs::KeyValue;
use super::value;

/// The IANA-assigned iSCSI port, used when an address names none.
pub const DEFAULT_ISCSI_PORT: u16 = 3260;

/// One portal of a target: where to connect and its portal group tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetAddress {
    /// IPv4 address, DNS name, or IPv6 address without brackets.
    pub host: String,
    /// TCP port (3260 when the address names none).
    pub port: u16,
    /// Target portal group tag; always present in SendTargets answers,
    /// absent in login redirections.
    pub tpgt: Option<u16>,
}

impl TargetAddress {
    /// Parses a TargetAddress value, e.g. `10.0.0.1:3260,1`,
    /// `[fe80::1]:3260,2` or `host`.
    ///
    /// An IPv6 address without brackets (a common target quirk) is accepted
    /// when it parses as IPv6; it then cannot carry a port.
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let invalid = |reason| TextError::InvalidTargetAddress {
            address: Snippet::new(text),
            reason,
        };
        let (portal, tpgt) = match text.split_once(',') {
            Some((portal, tag)) => {
                let tag = value::parse_number(tag)
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| invalid("portal group tag is not a number in 0..=65535"))?;
                (portal, Some(tag))
            }
            None => (text, None),
        };
        let (host, port) = if let Some(bracketed) = portal.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' around IPv6 address"))?;
            if !is_ipv6(host) {
                return Err(invalid("not an IPv6 address inside brackets"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("unexpected text after ']'"))?,
                ),
            };
            (host, port)
        } else {
            match portal.matches(':').count() {
                0 => (portal, None),
                1 => {
                    let (host, port) = portal.split_once(':').unwrap_or((portal, ""));
                    (host, Some(port))
                }
                _ if is_ipv6(portal) => (portal, None),
                _ => return Err(invalid("too many ':' (IPv6 needs brackets)")),
            }
        };
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        if !host.contains(':') && !is_host_name(host) {
            return Err(invalid("host is neither an IP address nor a DNS name"));
        }
        let port = match port {
            None => DEFAULT_ISCSI_PORT,
            Some(p) => parse_port(p).ok_or_else(|| invalid("port is not a number in 1..=65535"))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tpgt,
        })
    }

    /// Whether the host is an IPv6 address (printed in brackets).
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

impl FromStr for TargetAddress {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `ip:port,tpgt` as iscsiadm prints portals, IPv6 in brackets; without
/// `,tpgt` when the tag is unknown.
impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(tpgt) = self.tpgt {
            write!(f, ",{tpgt}")?;
        }
        Ok(())
    }
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// IPv6, optionally with a `%zone` suffix.
fn is_ipv6(text: &str) -> bool {
    let (addr, zone) = match text.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (text, None),
    };
    let zone_ok = zone.is_none_or(|z| {
        !z.is_empty()
            && z.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    zone_ok && addr.parse::<Ipv6Addr>().is_ok()
}

/// IPv4 literal or DNS name (letters, digits, `.`, `-`, `_`).
fn is_host_name(text: &str) -> bool {
    text.parse::<Ipv4Addr>().is_ok()
        || (text.len() <= 253
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b)))
}

/// One target from a SendTargets answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// The target's iSCSI name.
    pub name: String,
    /// Its portals. Empty means "the portal the discovery session is
    /// connected to" (RFC 7143 Appendix C).
    pub addresses: Vec<TargetAddress>,
}

/// Parses the pairs of a SendTargets answer into targets, in order.
///
/// Each `TargetName` starts a record; the `TargetAddress` pairs after it
/// belong to it. An address before any name is an error. Other keys (e.g.
/// `TargetAlias`) are ignored.
pub fn parse_send_targets(pairs: &[KeyValue]) -> Result<Vec<TargetRecord>, TextError> {
    let mut records: Vec<TargetRecord> = Vec::new();
    for kv in pairs {
        match kv.key.as_str() {
            "TargetName" => {
                if kv.value.is_empty() {
                    return Err(TextError::InvalidValue {
                        key: kv.key.clone(),
                        value: Snippet::new(&kv.value),
                        reason: "empty target name",
                    });
                }
                records.push(TargetRecord {
                    name: kv.value.clone(),
                    addresses: Vec::new(),
                });
            }
            "TargetAddress" => {
                let address = TargetAddress::parse(&kv.value)?;
                let Some(current) = records.last_mut() else {
                    return Err(TextError::AddressWithoutTarget {
                        address: Snippet::new(&kv.value),
                    });
                };
                current.addresses.push(address);
            }
            _ => {}
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::pairs::{TextLimits, parse_pairs};
    use proptest::prelude::*;

    fn addr(host: &str, port: u16, tpgt: Option<u16>) -> TargetAddress {
        TargetAddress {
            host: host.into(),
            port,
            tpgt,
        }
    }

    #[test]
    fn address_forms() {
        assert_eq!(
            TargetAddress::parse("10.0.0.1:3260,1"),
            Ok(addr("10.0.0.1", 3260, Some(1)))
        );
        assert_eq!(
            TargetAddress::parse("[fe80::1]:3261,2"),
            Ok(addr("fe80::1", 3261, Some(2)))
        );
        assert_eq!(
            TargetAddress::parse("[1080:0:0:0:8:800:200C:417A],65"),
            Ok(addr("1080:0:0:0:8:800:200C:417A", 3260, Some(65)))
        );
        assert_eq!(
            TargetAddress::parse("computingcenter.example.com,23"),
            Ok(addr("computingcenter.example.com", 3260, Some(23)))
        );
        assert_eq!(TargetAddress::parse("host"), Ok(addr("host", 3260, None)));
        assert_eq!(
            TargetAddress::parse("fe80::1%eth0,1"),
            Ok(addr("fe80::1%eth0", 3260, Some(1)))
        );
        assert_eq!(
            TargetAddress::parse("10.0.0.1,0x10"),
            Ok(addr("10.0.0.1", 3260, Some(16)))
        );
    }

    #[test]
    fn bad_addresses() {
        for bad in [
            "",
            ",1",
            ":3260",
            "10.0.0.1:",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "10.0.0.1:port",
            "10.0.0.1:3260,",
            "10.0.0.1:3260,70000",
            "10.0.0.1:3260,1,2",
            "[fe80::1",
            "[fe80::1]3260",
            "[notv6]:3260",
            "a:b:c",
            "bad host:3260",
            "host/path",
        ] {
            assert!(TargetAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn display_like_iscsiadm() {
        assert_eq!(
            addr("10.0.0.1", 3260, Some(1)).to_string(),
            "10.0.0.1:3260,1"
        );
        assert_eq!(
            addr("fe80::1", 3260, Some(2)).to_string(),
            "[fe80::1]:3260,2"
        );
        assert_eq!(addr("host", 3261, None).to_string(), "host:3261");
    }

    #[test]
    fn tgtd_answer() {
        // Captured from tgtd 1.0.85 (data segment with its padding).
        let data = b"TargetName=iqn.2024-01.test:text\0TargetAddress=127.0.0.61:3261,1\0\0\0\0";
        let pairs = parse_pairs(data, TextLimits::DEFAULT).expect("valid");
        let targets = parse_send_targets(&pairs).expect("valid");
        assert_eq!(
            targets,
            vec![TargetRecord {
                name: "iqn.2024-01.test:text".into(),
                addresses: vec![addr("127.0.0.61", 3261, Some(1))],
            }]
        );
    }

    #[test]
    fn istgt_answer_with_two_portals() {
        // Captured from istgt (one portal group with two portals).
        let data = b"TargetName=iqn.2007-09.jp.ne.peach.istgt:disk1\0\
TargetAddress=127.0.0.62:3262,1\0TargetAddress=127.0.0.63:3262,1\0\0";
        let pairs = parse_pairs(data, TextLimits::DEFAULT).expect("valid");
        let targets = parse_send_targets(&pairs).expect("valid");
        assert_eq!(targets.len(), 1);
        assert_eq!(
            targets[0].addresses,
            vec![
                addr("127.0.0.62", 3262, Some(1)),
                addr("127.0.0.63", 3262, Some(1))
            ]
        );
    }

    #[test]
    fn several_targets_and_same_portal_case() {
        let pairs = vec![
            KeyValue::new("TargetName", "iqn.a"),
            KeyValue::new("TargetAlias", "ignored"),
            KeyValue::new("TargetName", "iqn.b"),
            KeyValue::new("TargetAddress", "[::1]:3260,3"),
        ];
        let targets = parse_send_targets(&pairs).expect("valid");
        assert_eq!(targets.len(), 2);
        assert!(targets[0].addresses.is_empty());
        assert_eq!(targets[1].addresses, vec![addr("::1", 3260, Some(3))]);
        assert_eq!(parse_send_targets(&[]), Ok(vec![]));
    }

    #[test]
    fn address_before_name_is_an_error() {
        let pairs = vec![
            KeyValue::new("TargetAddress", "10.0.0.1:3260,1"),
            KeyValue::new("TargetName", "iqn.a"),
        ];
        assert!(matches!(
            parse_send_targets(&pairs),
            Err(TextError::AddressWithoutTarget { .. })
        ));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(
            v4 in any::<[u8; 4]>(),
            v6 in any::<[u16; 8]>(),
            use_v6: bool,
            port in 1u16..,
            tpgt in proptest::option::of(any::<u16>()),
        ) {
            let host = if use_v6 {
                Ipv6Addr::from(v6).to_string()
            } else {
                Ipv4Addr::from(v4).to_string()
            };
            let a = TargetAddress { host, port, tpgt };
            prop_assert_eq!(TargetAddress::parse(&a.to_string()), Ok(a));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = TargetAddress::parse(&s);
        }
    }
}
