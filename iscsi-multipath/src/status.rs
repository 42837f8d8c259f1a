//! A volume's status: what an operator's `multipath -ll` shows, as data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Main or secondary path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathRole {
    /// The path `target_portal` names: preferred, and failed back to.
    Main,
    /// Any other path.
    Secondary,
}

/// Where a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathState {
    /// Carrying I/O.
    Active,
    /// Healthy, not carrying I/O now (the failover policy's other paths, or
    /// the main path waiting out its failback delay).
    Standby,
    /// Not usable: I/O failed on it (the checker retries), or its logins
    /// stopped on a permanent failure.
    Failed,
    /// Logging in (again), or checking the LU before joining.
    Reconnecting,
    /// It leads to another LU: never used.
    Refused,
}

/// One path's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStatus {
    /// `host:port` (`[v6]:port`).
    pub portal: String,
    /// Target IQN.
    pub iqn: String,
    /// LUN.
    pub lun: u16,
    /// Main or secondary.
    pub role: PathRole,
    /// Where it is.
    pub state: PathState,
    /// How long it has been in `state`, in milliseconds.
    pub state_ms: u64,
    /// Commands in flight on it.
    pub in_flight: u64,
    /// Commands it completed.
    pub completed: u64,
    /// Bytes those commands moved.
    pub bytes: u64,
    /// Commands that failed on it (path errors and final ones).
    pub errors: u64,
    /// Commands re-issued elsewhere after a path error on it.
    pub failed_over: u64,
    /// The last reason it was not usable.
    pub last_error: Option<String>,
}

/// A volume's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeStatus {
    /// The volume's name (main path's target and LUN).
    pub name: String,
    /// The LU identity every path matched, once known.
    pub identity: Option<String>,
    /// Capacity in bytes.
    pub size_bytes: u64,
    /// Logical block size.
    pub block_size: u32,
    /// Path selection policy.
    pub policy: String,
    /// Failback mode.
    pub failback: String,
    /// `no_path_retry`.
    pub no_path_retry: String,
    /// How the path set was built.
    pub origin: String,
    /// Milliseconds since the last path went down, while none is usable.
    pub no_path_ms: Option<u64>,
    /// Every path, main first.
    pub paths: Vec<PathStatus>,
}

impl VolumeStatus {
    /// Paths in `state`.
    pub fn count(&self, state: PathState) -> usize {
        self.paths.iter().filter(|p| p.state == state).count()
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
