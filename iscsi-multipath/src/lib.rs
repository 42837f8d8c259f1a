//! One volume over several iSCSI paths: the path set built from Cinder's
//! `connection_info` (the `target_portals`/`target_iqns`/`target_luns` lists) or
//! from SendTargets discovery on the main portal, the LU identity check that keeps
//! a wrong LU out, path selection policies, failover of a failed command to another
//! path, a path checker that reconnects failed paths, failback to the main portal
//! once its network recovers, and queueing while no path is alive. It exposes the
//! same block API as a single session.
//!
//! What exists so far is the front door: [`ConnectionInfo`] (the storage
//! service's answer, validated), [`PathSet`] (the paths to log in to, main
//! first) and [`ConnectorProperties`] (what the host tells the storage service).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection_info;
pub mod connector;
pub mod discovery_merge;
pub mod path;
pub mod path_plan;
pub mod path_set;

pub use connection_info::{AccessMode, ConnectionInfo, ConnectionInfoError, MAX_LUN};
pub use connector::ConnectorProperties;
pub use discovery_merge::{
    DiscoveryMerge, DiscoveryOutcome, IgnoreReason, IgnoredPortal, merge_discovery,
};
pub use path::{PathSpec, same_iqn, same_portal};
pub use path_plan::PathPlan;
pub use path_set::{
    DEFAULT_DISCOVERY_TIMEOUT, PathOrigin, PathSet, SessionTemplate, build_path_set,
    build_path_set_with,
};
