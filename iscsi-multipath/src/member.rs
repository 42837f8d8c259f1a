//! One path of a volume: its session, its health as the volume sees it,
//! and its counters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::LuIdentity;
use iscsi_session::Session;
use tokio::time::Instant;

use crate::path::PathSpec;

/// A path's health, as the volume sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// The session is not logged in (first login, or a reconnect).
    Down,
    /// Logged in; TEST UNIT READY and the LU identity check under way.
    Checking,
    /// Carries I/O when the policy picks it.
    Up,
    /// Logged in, but I/O failed on it with a path error; the checker's
    /// TEST UNIT READY reinstates it.
    Faulty,
    /// Logins stopped on a permanent failure (credentials, ACL).
    GaveUp,
    /// It leads to another LU than the volume's: never used.
    Refused,
    /// Failed by the operator: unused until reinstated, whatever the checker sees.
    Disabled,
}

impl Health {
    /// For one-line errors.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Down => "down",
            Health::Checking => "checking",
            Health::Up => "up",
            Health::Faulty => "failed",
            Health::GaveUp => "gave up",
            Health::Refused => "refused",
            Health::Disabled => "failed by the operator",
        }
    }
}

#[derive(Debug)]
pub(crate) struct HealthInfo {
    pub health: Health,
    pub since: Instant,
    pub usable_since: Option<Instant>,
    pub last_error: Option<String>,
    /// The session's login count at which the path may be checked again
    /// (after the target asked for a logout, the old connection is not it).
    pub awaiting_login: Option<u64>,
    pub identity: Option<LuIdentity>,
    /// The session's login count when the identity was last checked: every
    /// new login is checked again (a portal may now lead elsewhere).
    pub verified_login: Option<u64>,
}

/// Counters, updated lock-free on the data path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub in_flight: AtomicU64,
    pub in_flight_bytes: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub bytes: AtomicU64,
    /// Commands that failed here with a path error and went elsewhere.
    pub failed_over: AtomicU64,
    /// Exponentially weighted mean service time, nanoseconds.
    pub latency_ns: AtomicU64,
}

/// Counts a command in flight for as long as it lives, however its future
/// ends (a caller that drops it included).
pub(crate) struct InFlight<'a> {
    counters: &'a Counters,
    bytes: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.leave(self.bytes);
    }
}

impl Counters {
    pub fn begin(&self, bytes: u64) -> InFlight<'_> {
        self.enter(bytes);
        InFlight {
            counters: self,
            bytes,
        }
    }

    /// A command of `bytes` is on this path now; [`Counters::leave`] when it
    /// is not (for a command no guard can follow: one in a batch).
    pub fn enter(&self, bytes: u64) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn leave(&self, bytes: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.in_flight_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn completed(&self, bytes: u64, took: Duration) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        // EWMA with weight 1/8; races between completions only blur it.
        let sample = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        let old = self.latency_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.latency_ns.store(new, Ordering::Relaxed);
    }
}

/// One path of a volume.
#[derive(Debug)]
pub(crate) struct Member {
    pub index: usize,
    pub spec: PathSpec,
    pub lun: Lun,
    pub session: Session,
    pub health: Mutex<HealthInfo>,
    pub counters: Counters,
    /// The state last shown in a status, and since when.
    shown: Mutex<Option<(crate::status::PathState, Instant)>>,
}

impl Member {
    pub fn new(index: usize, spec: PathSpec, lun: Lun, session: Session) -> Self {
        Member {
            index,
            spec,
            lun,
            session,
            health: Mutex::new(HealthInfo {
                health: Health::Down,
                since: Instant::now(),
                usable_since: None,
                last_error: None,
                awaiting_login: None,
                identity: None,
                verified_login: None,
            }),
            counters: Counters::default(),
            shown: Mutex::new(None),
        }
    }

    /// Since when the path has been in `state` as a status shows it (now,
    /// when it was in another one).
    pub fn shown_since(&self, state: crate::status::PathState, now: Instant) -> Instant {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        match *shown {
            Some((s, since)) if s == state => since,
            _ => {
                *shown = Some((state, now));
                now
            }
        }
    }

    pub fn is_main(&self) -> bool {
        self.index == crate::selection::MAIN
    }

    /// The health now (a copy).
    pub fn health(&self) -> Health {
        self.lock().health.clone()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, HealthInfo> {
        // A panic while holding it cannot leave the health inconsistent (each
        // update is one assignment), so a poisoned lock is still usable.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves to `health`; false when it was there already, or when the
    /// path is refused or disabled by the operator (those stay until
    /// [`Member::set_sticky`] or [`Member::clear_disabled`]).
    pub fn set_health(&self, health: Health, error: Option<String>) -> bool {
        let mut h = self.lock();
        if matches!(h.health, Health::Refused | Health::Disabled) {
            return false;
        }
        Self::apply(&mut h, health, error)
    }

    /// Enters Refused or Disabled, whatever the path was.
    pub fn set_sticky(&self, health: Health, error: String) -> bool {
        let mut h = self.lock();
        Self::apply(&mut h, health, Some(error))
    }

    /// Leaves Disabled for Down (the checker then verifies the path).
    pub fn clear_disabled(&self) -> bool {
        let mut h = self.lock();
        if h.health != Health::Disabled {
            return false;
        }
        h.verified_login = None;
        Self::apply(&mut h, Health::Down, None)
    }

    fn apply(h: &mut HealthInfo, health: Health, error: Option<String>) -> bool {
        if error.is_some() {
            h.last_error = error;
        }
        if h.health == health {
            return false;
        }
        let now = Instant::now();
        h.usable_since = (health == Health::Up).then(|| h.usable_since.unwrap_or(now));
        h.health = health;
        h.since = now;
        true
    }
}
