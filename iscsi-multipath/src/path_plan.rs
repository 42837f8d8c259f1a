//! Which paths a `connection_info` names by itself, before any network I/O.

use crate::path::PathSpec;

/// The paths a `connection_info` gives, or the one to discover from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPlan {
    /// The lists form: every path is given.
    Given {
        /// Main path first, then the others in the given order.
        paths: Vec<PathSpec>,
        /// List entries dropped as repeats of an earlier portal and target.
        duplicates: usize,
    },
    /// The singular form: the main path only; SendTargets discovery on its
    /// portal may name others.
    Discover(PathSpec),
}

impl PathPlan {
    /// The lists form from the entries in their given order and the index
    /// of the main one. The main path moves to the front. An entry that
    /// repeats an earlier portal and target is dropped: both logins would
    /// carry the same ISID, and the second would reinstate (end) the first.
    pub(crate) fn given(entries: &[PathSpec], main: usize) -> PathPlan {
        let ordered = entries.get(main).into_iter().chain(
            entries
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != main)
                .map(|(_, p)| p),
        );
        let mut paths: Vec<PathSpec> = Vec::with_capacity(entries.len());
        for path in ordered {
            if !paths.iter().any(|p| p.same_nexus(path)) {
                paths.push(path.clone());
            }
        }
        PathPlan::Given {
            duplicates: entries.len() - paths.len(),
            paths,
        }
    }

    /// The main path.
    pub fn main(&self) -> &PathSpec {
        match self {
            // `given` always has the main entry: the lists are never empty.
            PathPlan::Given { paths, .. } => &paths[0],
            PathPlan::Discover(path) => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(portal: &str, iqn: &str, lun: u16) -> PathSpec {
        PathSpec::new(portal.parse().unwrap(), iqn, lun)
    }

    #[test]
    fn main_moves_first_and_order_is_kept() {
        let entries = [
            path("10.0.0.1:3260", "iqn.t:a", 1),
            path("10.0.0.2:3260", "iqn.t:b", 2),
            path("[fd00::3]:3260", "iqn.t:c", 3),
        ];
        let plan = PathPlan::given(&entries, 1);
        assert_eq!(
            plan,
            PathPlan::Given {
                paths: vec![entries[1].clone(), entries[0].clone(), entries[2].clone()],
                duplicates: 0,
            }
        );
        assert_eq!(plan.main(), &entries[1]);
    }

    #[test]
    fn repeated_nexus_is_dropped_but_another_target_on_the_portal_is_kept() {
        let entries = [
            path("10.0.0.1:3260", "iqn.t:a", 1),
            path("10.0.0.1:3260", "IQN.T:A", 1),
            path("10.0.0.1:3260", "iqn.t:b", 1),
        ];
        let PathPlan::Given { paths, duplicates } = PathPlan::given(&entries, 0) else {
            panic!("lists form");
        };
        assert_eq!(paths, vec![entries[0].clone(), entries[2].clone()]);
        assert_eq!(duplicates, 1);
    }
}
