//! Which paths carry I/O: the failback rules decide whether the main path
//! may, the policy picks one path per command among those that do. Pure
//! logic over a view of the paths, so every rule is tested without a
//! network; the volume replans whenever a path's health changes.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::failback::Failback;
use crate::policy::Policy;

/// Index of the main path in every path list.
pub(crate) const MAIN: usize = 0;

/// What the planner knows of one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathView {
    /// Logged in, the LU verified, not failed by I/O.
    pub usable: bool,
    /// Since when it has been usable without a break.
    pub usable_since: Option<Instant>,
}

/// A change of the path failover sends I/O to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Off the main path.
    Failover { from: Option<usize>, to: usize },
    /// Back to the main path.
    Failback { from: Option<usize> },
    /// From one secondary to another, or from none to the first path.
    Moved { from: Option<usize>, to: usize },
}

/// The failback bookkeeping, and the path failover uses.
#[derive(Debug)]
pub(crate) struct Planner {
    failback: Failback,
    policy: Policy,
    /// The path failover sends I/O to, kept while it lives.
    current: Option<usize>,
    /// Manual failback: I/O left the main path and waits to be sent back.
    left_main: bool,
    /// Followover: the main path stopped carrying I/O for a SCSI-level
    /// reason while its session stayed up.
    main_demoted: bool,
}

/// The paths carrying I/O, in preference order (failover uses the first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub active: Vec<usize>,
}

impl Planner {
    pub fn new(policy: Policy, failback: Failback) -> Self {
        Planner {
            failback,
            policy,
            current: None,
            left_main: false,
            main_demoted: false,
        }
    }

    /// The main path stopped carrying I/O while its session stayed up.
    pub fn main_demoted(&mut self) {
        self.main_demoted = true;
    }

    /// The main path's session logged in again: followover fails back now.
    pub fn main_came_back(&mut self) {
        self.main_demoted = false;
    }

    /// An operator's failback: the main path may carry I/O again.
    pub fn failback_now(&mut self) {
        self.left_main = false;
        self.main_demoted = false;
    }

    fn main_eligible(&self, main: &PathView, now: Instant) -> bool {
        if !main.usable {
            return false;
        }
        match self.failback {
            Failback::Immediate => true,
            Failback::Manual => !self.left_main,
            Failback::Followover => !self.main_demoted,
            Failback::After(delay) => main.usable_since.is_some_and(|t| now >= t + delay),
        }
    }

    /// When a plan must be made again although no path changed: the end of a
    /// failback delay.
    pub fn next_deadline(&self, paths: &[PathView]) -> Option<Instant> {
        let main = paths.get(MAIN)?;
        match self.failback {
            Failback::After(delay) if main.usable => main.usable_since.map(|t| t + delay),
            _ => None,
        }
    }

    /// The paths that carry I/O now, and the switch failover made, if any.
    pub fn plan(&mut self, paths: &[PathView], now: Instant) -> (Plan, Option<Switch>) {
        let main_ok = paths
            .get(MAIN)
            .is_some_and(|main| self.main_eligible(main, now));
        let secondaries = (MAIN + 1..paths.len()).filter(|&i| paths[i].usable);
        let mut active: Vec<usize> = main_ok.then_some(MAIN).into_iter().collect();
        active.extend(secondaries);
        if active.is_empty() && paths.get(MAIN).is_some_and(|m| m.usable) {
            // The main path is all there is: it carries I/O whatever the
            // failback mode says, and I/O is back on it.
            active.push(MAIN);
        }
        let switch = match self.policy {
            Policy::Failover => self.choose_one(&mut active, main_ok),
            _ => None,
        };
        if active.first() == Some(&MAIN) {
            self.left_main = false;
        }
        (Plan { active }, switch)
    }

    /// Failover's one path: the main path when eligible, else the current
    /// one while it lives, else the first live secondary.
    fn choose_one(&mut self, active: &mut Vec<usize>, main_ok: bool) -> Option<Switch> {
        let chosen = if main_ok {
            Some(MAIN)
        } else if let Some(current) = self.current.filter(|c| active.contains(c)) {
            Some(current)
        } else {
            active.first().copied()
        };
        if let Some(chosen) = chosen {
            // The chosen path first; the rest are standby in order.
            active.retain(|&i| i != chosen);
            active.insert(0, chosen);
        }
        let from = self.current;
        if chosen == from {
            return None;
        }
        self.current = chosen;
        let to = chosen?;
        Some(if to == MAIN && from.is_some() {
            Switch::Failback { from }
        } else if to == MAIN {
            Switch::Moved { from, to }
        } else if from == Some(MAIN) {
            self.left_main = true;
            Switch::Failover { from, to }
        } else {
            Switch::Moved { from, to }
        })
    }
}

/// What the picker knows of one active path at the moment of a command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub in_flight: u64,
    pub in_flight_bytes: u64,
    /// Recent mean service time, nanoseconds (0 before any completion).
    pub latency_ns: u64,
}

/// Picks the path for one command among the active ones.
pub(crate) fn pick(
    policy: Policy,
    active: &[usize],
    rotor: &AtomicUsize,
    load: impl Fn(usize) -> Load,
    bytes: u64,
) -> Option<usize> {
    match (policy, active) {
        (_, []) => None,
        (Policy::Failover, [first, ..]) => Some(*first),
        (Policy::RoundRobin, _) => {
            let n = rotor.fetch_add(1, Ordering::Relaxed);
            Some(active[n % active.len()])
        }
        (Policy::QueueLength, _) => active.iter().copied().min_by_key(|&i| load(i).in_flight),
        (Policy::ServiceTime, _) => active.iter().copied().min_by_key(|&i| {
            let l = load(i);
            (l.in_flight_bytes.saturating_add(bytes), l.latency_ns)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn up(since: Instant) -> PathView {
        PathView {
            usable: true,
            usable_since: Some(since),
        }
    }

    const DOWN: PathView = PathView {
        usable: false,
        usable_since: None,
    };

    #[test]
    fn failover_prefers_main_then_sticks_to_a_secondary() {
        let t = Instant::now();
        let mut p = Planner::new(Policy::Failover, Failback::Immediate);
        let (plan, switch) = p.plan(&[up(t), up(t), up(t)], t);
        assert_eq!(plan.active, [0, 1, 2]);
        assert_eq!(switch, Some(Switch::Moved { from: None, to: 0 }));
        let (plan, switch) = p.plan(&[DOWN, up(t), up(t)], t);
        assert_eq!(plan.active[0], 1);
        assert_eq!(
            switch,
            Some(Switch::Failover {
                from: Some(0),
                to: 1
            })
        );
        // Path 1 dies: 2 takes over; path 1 back: I/O stays on 2.
        p.plan(&[DOWN, DOWN, up(t)], t);
        let (plan, switch) = p.plan(&[DOWN, up(t), up(t)], t);
        assert_eq!((plan.active[0], switch), (2, None));
        // Main back: immediate failback.
        let (plan, switch) = p.plan(&[up(t), up(t), up(t)], t);
        assert_eq!(plan.active[0], 0);
        assert_eq!(switch, Some(Switch::Failback { from: Some(2) }));
    }

    #[test]
    fn manual_failback_waits_for_the_operator_unless_main_is_alone() {
        let t = Instant::now();
        let mut p = Planner::new(Policy::Failover, Failback::Manual);
        p.plan(&[up(t), up(t)], t);
        p.plan(&[DOWN, up(t)], t);
        let (plan, _) = p.plan(&[up(t), up(t)], t);
        assert_eq!(plan.active[0], 1, "main recovered but stays unused");
        p.failback_now();
        let (plan, switch) = p.plan(&[up(t), up(t)], t);
        assert_eq!(plan.active[0], 0);
        assert_eq!(switch, Some(Switch::Failback { from: Some(1) }));
        // Main alone: it carries I/O whatever the mode.
        p.plan(&[DOWN, up(t)], t);
        let (plan, _) = p.plan(&[up(t), DOWN], t);
        assert_eq!(plan.active, [0]);
        let (plan, _) = p.plan(&[up(t), up(t)], t);
        assert_eq!(
            plan.active[0], 0,
            "I/O went back to main, nothing to wait for"
        );
    }

    #[test]
    fn delayed_failback_after_stable_health() {
        let t = Instant::now();
        let delay = Duration::from_secs(5);
        let mut p = Planner::new(Policy::Failover, Failback::After(delay));
        let paths = [up(t), up(t - delay)];
        let (plan, _) = p.plan(&paths, t);
        assert_eq!(plan.active[0], 1, "main healthy for 0 s of 5");
        assert_eq!(p.next_deadline(&paths), Some(t + delay));
        let (plan, switch) = p.plan(&paths, t + delay);
        assert_eq!(plan.active[0], 0);
        assert_eq!(switch, Some(Switch::Failback { from: Some(1) }));
    }

    #[test]
    fn followover_ignores_a_demotion_until_main_comes_back() {
        let t = Instant::now();
        let mut p = Planner::new(Policy::Failover, Failback::Followover);
        p.plan(&[up(t), up(t)], t);
        p.main_demoted();
        let (plan, _) = p.plan(&[up(t), up(t)], t);
        assert_eq!(
            plan.active[0], 1,
            "demoted by the target: stay on the secondary"
        );
        p.main_came_back();
        let (plan, _) = p.plan(&[up(t), up(t)], t);
        assert_eq!(plan.active[0], 0);
    }

    #[test]
    fn spreading_policies_use_every_eligible_path() {
        let t = Instant::now();
        let mut p = Planner::new(Policy::RoundRobin, Failback::After(Duration::from_secs(60)));
        let (plan, switch) = p.plan(&[up(t), up(t), DOWN, up(t)], t);
        assert_eq!(plan.active, [1, 3], "main waits out its failback delay");
        assert_eq!(switch, None);
        let rotor = AtomicUsize::new(0);
        let load = |_| Load {
            in_flight: 0,
            in_flight_bytes: 0,
            latency_ns: 0,
        };
        let picks: Vec<_> = (0..4)
            .map(|_| pick(Policy::RoundRobin, &plan.active, &rotor, load, 0).unwrap())
            .collect();
        assert_eq!(picks, [1, 3, 1, 3]);
    }

    #[test]
    fn queue_length_and_service_time_pick_the_least_loaded() {
        let rotor = AtomicUsize::new(0);
        let loads = [
            Load {
                in_flight: 5,
                in_flight_bytes: 4096,
                latency_ns: 100,
            },
            Load {
                in_flight: 2,
                in_flight_bytes: 1 << 20,
                latency_ns: 100,
            },
            Load {
                in_flight: 3,
                in_flight_bytes: 4096,
                latency_ns: 50,
            },
        ];
        let load = |i: usize| loads[i];
        assert_eq!(
            pick(Policy::QueueLength, &[0, 1, 2], &rotor, load, 0),
            Some(1)
        );
        assert_eq!(
            pick(Policy::ServiceTime, &[0, 1, 2], &rotor, load, 4096),
            Some(2)
        );
        assert_eq!(pick(Policy::Failover, &[2, 0], &rotor, load, 0), Some(2));
        assert_eq!(pick(Policy::RoundRobin, &[], &rotor, load, 0), None);
    }
}
