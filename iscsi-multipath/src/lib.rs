//! One volume over several iSCSI paths: the path set built from Cinder's
//! `connection_info` (the `target_portals`/`target_iqns`/`target_luns` lists) or
//! from SendTargets discovery on the main portal, the LU identity check that keeps
//! a wrong LU out, path selection policies, failover of a failed command to another
//! path, a path checker that reconnects failed paths, failback to the main portal
//! once its network recovers, and queueing while no path is alive. It exposes the
//! same block API as a single session.
//!
//! - [`ConnectionInfo`]: the storage service's answer, validated;
//!   [`ConnectorProperties`]: what the host tells the storage service.
//! - [`PathSet`]: the paths to log in to, main first ([`build_path_set`]).
//! - [`MultipathVolume`]: every path logged in, one block device
//!   ([`iscsi_session::BlockDevice`]) on top, with the [`Policy`],
//!   [`Failback`] and [`NoPathRetry`] of [`VolumeOptions`], and a
//!   [`VolumeStatus`] per path.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checker;
pub mod connection_info;
pub mod connector;
pub mod discovery_merge;
mod dispatch;
pub mod error;
pub mod failback;
mod member;
pub mod options;
pub mod path;
pub mod path_plan;
pub mod path_set;
pub mod policy;
mod selection;
pub mod status;
mod volume;

pub use connection_info::{AccessMode, ConnectionInfo, ConnectionInfoError, MAX_LUN};
pub use connector::ConnectorProperties;
pub use discovery_merge::{
    DiscoveryMerge, DiscoveryOutcome, IgnoreReason, IgnoredPortal, merge_discovery,
};
pub use error::VolumeError;
pub use failback::{Failback, ModeParseError, NoPathRetry};
pub use options::VolumeOptions;
pub use path::{PathSpec, same_iqn, same_portal};
pub use path_plan::PathPlan;
pub use path_set::{
    DEFAULT_DISCOVERY_TIMEOUT, PathOrigin, PathSet, SessionTemplate, build_path_set,
    build_path_set_with,
};
pub use policy::{Policy, PolicyParseError};
pub use status::{PathRole, PathState, PathStatus, VolumeStatus};
pub use volume::MultipathVolume;
