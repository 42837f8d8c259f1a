//! From a SendTargets answer on the main portal to the list of paths: pure,
//! so that every rule is tested without a network.
//!
//! Arrays answer in two ways. Most report the volume's one target through
//! every portal: those portals are kept with the main IQN. Some export one
//! target per portal (the OpenStack spec's `...:vol1-1` / `...:vol1-2`): a
//! portal that reports exactly one other target, and not the main one, keeps
//! that target with the main LUN; the LU identity check at login decides
//! whether it really leads to the same LU. A portal that reports several
//! other targets belongs to a shared array exporting many volumes, and
//! guessing among them is not attempted.

use std::fmt;

use iscsi_session::{DiscoveredPath, Portal};

use crate::path::{PathSpec, same_iqn, same_portal};

/// What discovery contributed, for the caller's log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryOutcome {
    /// Discovery named other portals: this many paths in all, main included.
    Found(usize),
    /// Discovery named no portal besides the main one (tgtd answers with
    /// itself): the main path alone.
    OnlyItself,
    /// Discovery failed or timed out; the given path alone is used.
    Failed(String),
}

/// Why a discovered portal is not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// It reports this many targets, none of them the main one.
    SeveralTargets(usize),
    /// `0.0.0.0` or `::`: an address to listen on, not to connect to.
    Unspecified,
}

/// A discovered portal left out of the path set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredPortal {
    /// The portal.
    pub portal: Portal,
    /// Why.
    pub reason: IgnoreReason,
}

/// The paths discovery leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryMerge {
    /// The main path first, then one path per other usable portal, in the
    /// order discovery named them.
    pub paths: Vec<PathSpec>,
    /// What discovery contributed.
    pub outcome: DiscoveryOutcome,
    /// Portals discovery named that are not used.
    pub ignored: Vec<IgnoredPortal>,
}

impl DiscoveryMerge {
    /// The fallback when discovery failed: the given path alone.
    pub fn failed(main: &PathSpec, reason: impl Into<String>) -> Self {
        DiscoveryMerge {
            paths: vec![main.clone()],
            outcome: DiscoveryOutcome::Failed(reason.into()),
            ignored: Vec::new(),
        }
    }
}

/// Merges a SendTargets answer from `main.portal` into the path list.
///
/// Records are grouped by portal (`,tpgt` is already gone from
/// [`DiscoveredPath::portal`]); the main portal's records are covered by the
/// main path itself. Each other portal yields at most one path: with the main
/// IQN when it reports it, else with its one other IQN, else none.
pub fn merge_discovery(main: &PathSpec, discovered: &[DiscoveredPath]) -> DiscoveryMerge {
    // Portals in the order of first mention, each with the IQNs it reports.
    let mut portals: Vec<(&Portal, Vec<&str>)> = Vec::new();
    for record in discovered {
        if same_portal(&record.portal, &main.portal) {
            continue;
        }
        match portals
            .iter_mut()
            .find(|(p, _)| same_portal(p, &record.portal))
        {
            Some((_, iqns)) => {
                if !iqns.iter().any(|i| same_iqn(i, &record.target)) {
                    iqns.push(&record.target);
                }
            }
            None => portals.push((&record.portal, vec![&record.target])),
        }
    }

    let mut paths = vec![main.clone()];
    let mut ignored = Vec::new();
    for (portal, iqns) in portals {
        let ignore = |reason| IgnoredPortal {
            portal: portal.clone(),
            reason,
        };
        if portal
            .socket_addr()
            .is_some_and(|a| a.ip().is_unspecified())
        {
            ignored.push(ignore(IgnoreReason::Unspecified));
        } else if iqns.iter().any(|i| same_iqn(i, &main.iqn)) {
            paths.push(PathSpec::new(portal.clone(), main.iqn.clone(), main.lun));
        } else if let [only] = iqns.as_slice() {
            paths.push(PathSpec::new(portal.clone(), *only, main.lun));
        } else {
            ignored.push(ignore(IgnoreReason::SeveralTargets(iqns.len())));
        }
    }

    let outcome = match paths.len() {
        1 => DiscoveryOutcome::OnlyItself,
        n => DiscoveryOutcome::Found(n),
    };
    DiscoveryMerge {
        paths,
        outcome,
        ignored,
    }
}

impl fmt::Display for IgnoredPortal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            IgnoreReason::SeveralTargets(n) => {
                write!(f, "{} (it reports {n} other targets)", self.portal)
            }
            IgnoreReason::Unspecified => write!(f, "{} (a wildcard address)", self.portal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(s: &str) -> Portal {
        s.parse().unwrap()
    }

    fn found(target: &str, at: &str, tpgt: u16) -> DiscoveredPath {
        DiscoveredPath {
            target: target.into(),
            portal: portal(at),
            tpgt: Some(tpgt),
        }
    }

    fn main_path() -> PathSpec {
        PathSpec::new(portal("10.0.0.1:3260"), "iqn.2014-2.org.example:vol1", 7)
    }

    const VOL1: &str = "iqn.2014-2.org.example:vol1";

    #[test]
    fn same_iqn_on_every_portal_gives_one_path_each() {
        let answer = [
            found(VOL1, "10.0.0.1:3260", 1),
            found(VOL1, "10.0.0.2:3260", 1),
            found(VOL1, "[fd00::3]:3260", 2),
        ];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(
            m.paths,
            vec![
                main_path(),
                PathSpec::new(portal("10.0.0.2:3260"), VOL1, 7),
                PathSpec::new(Portal::new("fd00::3", 3260), VOL1, 7),
            ]
        );
        assert_eq!(m.outcome, DiscoveryOutcome::Found(3));
        assert!(m.ignored.is_empty());
    }

    #[test]
    fn main_first_even_when_named_last_and_portals_deduplicated() {
        let answer = [
            found(VOL1, "10.0.0.2:3260", 1),
            found(VOL1, "10.0.0.2:3260", 2),
            found("IQN.2014-2.ORG.EXAMPLE:VOL1", "10.0.0.2:3260", 3),
            found(VOL1, "10.0.0.1:3260", 1),
        ];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(m.paths[0], main_path());
        assert_eq!(m.paths.len(), 2);
        assert_eq!(m.paths[1].portal, portal("10.0.0.2:3260"));
    }

    #[test]
    fn only_itself_as_tgtd_answers() {
        let answer = [found(VOL1, "10.0.0.1:3260", 1)];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(m.paths, vec![main_path()]);
        assert_eq!(m.outcome, DiscoveryOutcome::OnlyItself);
        // An answer naming nothing at all, or another target on the main
        // portal only, leaves the main path alone too.
        assert_eq!(
            merge_discovery(&main_path(), &[]).outcome,
            DiscoveryOutcome::OnlyItself
        );
        let other_here = [found("iqn.other:x", "10.0.0.1:3260", 1)];
        assert_eq!(
            merge_discovery(&main_path(), &other_here).paths,
            vec![main_path()]
        );
    }

    #[test]
    fn record_without_address_is_the_main_portal() {
        // discover() reports a target without TargetAddress at the portal
        // it asked, with no tpgt.
        let answer = [DiscoveredPath {
            target: VOL1.into(),
            portal: main_path().portal,
            tpgt: None,
        }];
        assert_eq!(
            merge_discovery(&main_path(), &answer).outcome,
            DiscoveryOutcome::OnlyItself
        );
    }

    #[test]
    fn one_target_per_portal_keeps_its_own_iqn_with_the_main_lun() {
        // The OpenStack spec's array: vol1-1 on the main portal, vol1-2 on the other.
        let main = PathSpec::new(portal("10.0.0.1:3260"), "iqn.2014-2.org.example:vol1-1", 1);
        let answer = [
            found("iqn.2014-2.org.example:vol1-1", "10.0.0.1:3260", 1),
            found("iqn.2014-2.org.example:vol1-2", "10.0.0.2:3260", 2),
        ];
        let m = merge_discovery(&main, &answer);
        assert_eq!(
            m.paths,
            vec![
                main.clone(),
                PathSpec::new(portal("10.0.0.2:3260"), "iqn.2014-2.org.example:vol1-2", 1),
            ]
        );
        assert_eq!(m.outcome, DiscoveryOutcome::Found(2));
    }

    #[test]
    fn portal_with_main_iqn_among_others_uses_the_main_iqn() {
        let answer = [
            found("iqn.other:a", "10.0.0.2:3260", 1),
            found(VOL1, "10.0.0.2:3260", 1),
            found("iqn.other:b", "10.0.0.2:3260", 1),
        ];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(m.paths[1], PathSpec::new(portal("10.0.0.2:3260"), VOL1, 7));
    }

    #[test]
    fn shared_array_portal_with_several_other_iqns_is_not_used() {
        let answer = [
            found(VOL1, "10.0.0.1:3260", 1),
            found("iqn.other:a", "10.0.0.3:3260", 1),
            found("iqn.other:b", "10.0.0.3:3260", 1),
            found("iqn.other:a", "10.0.0.3:3260", 2),
        ];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(m.paths, vec![main_path()]);
        assert_eq!(m.outcome, DiscoveryOutcome::OnlyItself);
        assert_eq!(
            m.ignored,
            vec![IgnoredPortal {
                portal: portal("10.0.0.3:3260"),
                reason: IgnoreReason::SeveralTargets(2),
            }]
        );
        assert_eq!(
            m.ignored[0].to_string(),
            "10.0.0.3:3260 (it reports 2 other targets)"
        );
    }

    #[test]
    fn wildcard_portals_are_not_used() {
        let answer = [found(VOL1, "0.0.0.0:3260", 1), found(VOL1, "[::]:3260", 1)];
        let m = merge_discovery(&main_path(), &answer);
        assert_eq!(m.paths, vec![main_path()]);
        assert_eq!(m.ignored.len(), 2);
        assert!(
            m.ignored
                .iter()
                .all(|i| i.reason == IgnoreReason::Unspecified)
        );
        assert_eq!(m.ignored[1].to_string(), "[::]:3260 (a wildcard address)");
    }

    #[test]
    fn ipv6_main_portal_is_recognised_in_any_spelling() {
        let main = PathSpec::new(portal("[fd00::1]:3260"), VOL1, 0);
        let answer = [
            found(VOL1, "[fd00:0:0::1]:3260", 1),
            found(VOL1, "[fd00::2]:3260", 1),
        ];
        let m = merge_discovery(&main, &answer);
        assert_eq!(m.paths.len(), 2);
        assert_eq!(m.paths[1].portal.to_string(), "[fd00::2]:3260");
    }

    #[test]
    fn failed_falls_back_to_the_given_path() {
        let m = DiscoveryMerge::failed(&main_path(), "connection refused");
        assert_eq!(m.paths, vec![main_path()]);
        assert_eq!(
            m.outcome,
            DiscoveryOutcome::Failed("connection refused".into())
        );
    }
}
