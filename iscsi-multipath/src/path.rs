//! One path to the volume: a target through a portal, and its LUN.

use std::fmt;

use iscsi_session::{ChapConfig, Portal, SessionConfig};

/// A target IQN reached through a portal, and the LUN of the volume there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathSpec {
    /// Where to connect (`,tpgt` already dropped).
    pub portal: Portal,
    /// The target's IQN on this portal.
    pub iqn: String,
    /// The volume's LUN behind this target (at most [`crate::MAX_LUN`]).
    pub lun: u16,
}

impl PathSpec {
    /// A path from its three parts.
    pub fn new(portal: Portal, iqn: impl Into<String>, lun: u16) -> Self {
        PathSpec {
            portal,
            iqn: iqn.into(),
            lun,
        }
    }

    /// The session configuration for this path, with iscsi-session's
    /// defaults for everything else (the caller adjusts them afterwards).
    pub fn session_config(&self, initiator_name: &str, chap: Option<&ChapConfig>) -> SessionConfig {
        let mut config = SessionConfig::new(self.portal.clone(), self.iqn.clone(), initiator_name);
        config.chap = chap.cloned();
        config
    }

    /// Same portal and same target (the LUN is not compared).
    pub fn same_nexus(&self, other: &PathSpec) -> bool {
        same_portal(&self.portal, &other.portal) && same_iqn(&self.iqn, &other.iqn)
    }
}

impl fmt::Display for PathSpec {
    /// `iqn at portal LUN n`, IPv6 portals in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} LUN {}", self.iqn, self.portal, self.lun)
    }
}

/// Whether two portals are the same place: IP literals compared as
/// addresses (so `[::1]` equals `[0:0::1]`, and an IPv4-mapped IPv6 address
/// its IPv4 one), names compared case-insensitively, ports exactly.
pub fn same_portal(a: &Portal, b: &Portal) -> bool {
    if a.port != b.port {
        return false;
    }
    match (a.socket_addr(), b.socket_addr()) {
        (Some(x), Some(y)) => x.ip().to_canonical() == y.ip().to_canonical(),
        _ => a.host.eq_ignore_ascii_case(&b.host),
    }
}

/// Whether two iSCSI names are the same: RFC 7143 §4.2.7.2 names are
/// case-insensitive (stringprep maps them to lower case).
pub fn same_iqn(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_session::ChapCredentials;

    fn portal(s: &str) -> Portal {
        s.parse().unwrap()
    }

    #[test]
    fn portals_compare_as_addresses() {
        assert!(same_portal(
            &portal("127.0.0.1:3260"),
            &portal("127.0.0.1:3260,1")
        ));
        assert!(same_portal(&portal("127.0.0.1"), &portal("127.0.0.1:3260")));
        assert!(same_portal(
            &portal("[::1]:3260"),
            &portal("[0:0::1]:3260,2")
        ));
        assert!(same_portal(
            &portal("[::ffff:10.0.0.1]:3260"),
            &portal("10.0.0.1:3260")
        ));
        assert!(same_portal(
            &portal("Storage.Example:3260"),
            &portal("storage.example")
        ));
        assert!(!same_portal(
            &portal("127.0.0.1:3260"),
            &portal("127.0.0.1:3261")
        ));
        assert!(!same_portal(&portal("[::1]:3260"), &portal("[::2]:3260")));
        assert!(!same_portal(
            &portal("10.0.0.1:3260"),
            &portal("10.0.0.2:3260")
        ));
    }

    #[test]
    fn iqns_compare_case_insensitively() {
        assert!(same_iqn(
            "iqn.2014-2.org.Example:Vol1",
            "iqn.2014-2.org.example:vol1"
        ));
        assert!(!same_iqn("iqn.a:1", "iqn.a:2"));
        let a = PathSpec::new(portal("[fe80::1]:3260"), "iqn.a:1", 0);
        let b = PathSpec::new(portal("[FE80::1]:3260,7"), "IQN.A:1", 5);
        assert!(a.same_nexus(&b));
    }

    #[test]
    fn displays_ipv6_in_brackets() {
        let p = PathSpec::new(portal("[2001:db8::7]:3261"), "iqn.x:y", 12);
        assert_eq!(p.to_string(), "iqn.x:y at [2001:db8::7]:3261 LUN 12");
    }

    #[test]
    fn session_config_carries_the_path_and_chap() {
        let p = PathSpec::new(portal("[::1]:3262"), "iqn.x:y", 3);
        let chap = ChapConfig::one_way(ChapCredentials::new("user", "secret-password"));
        let c = p.session_config("iqn.i:me", Some(&chap));
        assert_eq!(c.portal, Portal::new("::1", 3262));
        assert_eq!(c.target_name.as_deref(), Some("iqn.x:y"));
        assert_eq!(c.initiator_name, "iqn.i:me");
        assert_eq!(c.chap, Some(chap));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(p.session_config("iqn.i:me", None).chap, None);
    }
}
