//! How a multipath volume behaves: the dm-multipath knobs and the timings
//! of its path checker.

use std::time::Duration;

use iscsi_session::RetryPolicy;

use crate::error::VolumeError;
use crate::failback::{Failback, NoPathRetry};
use crate::policy::Policy;

/// A multipath volume's settings. The defaults are those of dm-multipath
/// with `no_path_retry 30` (seconds, here), failback `immediate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeOptions {
    /// How I/O is spread over the live paths.
    pub policy: Policy,
    /// When a recovered main path carries I/O again.
    pub failback: Failback,
    /// What I/O does while no path is usable.
    pub no_path_retry: NoPathRetry,
    /// Each login attempt of a path (TCP connect and login) gets this long.
    pub path_timeout: Duration,
    /// How long [`crate::MultipathVolume::open`] waits for a first usable
    /// path while some path has not failed yet.
    pub attach_timeout: Duration,
    /// The path checker: first retry of a failed path and the TEST UNIT
    /// READY of idle and failed paths, every this long.
    pub checker_interval: Duration,
    /// Longest wait between login attempts of a failed path.
    pub checker_max_interval: Duration,
    /// At open, how long a secondary that answered first waits for the main
    /// path, whose LU identity is the reference the others must match.
    pub main_grace: Duration,
    /// Same-path retries (UNIT ATTENTION, BUSY...) before a path is failed.
    pub retry: RetryPolicy,
    /// Path errors (other than a lost connection) one command may meet on
    /// live paths before it fails; 0 means twice the number of paths, at
    /// least 3.
    pub max_path_attempts: u32,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        VolumeOptions {
            policy: Policy::default(),
            failback: Failback::default(),
            no_path_retry: NoPathRetry::default(),
            path_timeout: Duration::from_secs(15),
            attach_timeout: Duration::from_secs(30),
            checker_interval: Duration::from_secs(2),
            checker_max_interval: Duration::from_secs(10),
            main_grace: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            max_path_attempts: 0,
        }
    }
}

impl VolumeOptions {
    /// Checks the timings.
    pub fn validate(&self) -> Result<(), VolumeError> {
        const DAY: Duration = Duration::from_secs(86_400);
        let bad = |what: &str| Err(VolumeError::Options(what.to_owned()));
        if self.path_timeout.is_zero() || self.path_timeout > DAY {
            return bad("path timeout must be between 0 and a day");
        }
        if self.checker_interval.is_zero() || self.checker_interval > self.checker_max_interval {
            return bad(
                "checker interval must be positive and at most the longest checker interval",
            );
        }
        if self.checker_max_interval > DAY || self.attach_timeout > DAY {
            return bad("checker and attach intervals must be at most a day");
        }
        Ok(())
    }

    pub(crate) fn path_attempt_budget(&self, paths: usize) -> u32 {
        match self.max_path_attempts {
            0 => (2 * paths as u32).max(3),
            n => n,
        }
    }
}
