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
//!
//! # Example
//!
//! Embedding: open a volume from the storage service's `connection_info`,
//! do block I/O through [`iscsi_session::BlockDevice`], show the paths,
//! close.
//!
//! ```no_run
//! use iscsi_multipath::{ConnectionInfo, MultipathVolume, SessionTemplate, VolumeOptions};
//! use iscsi_session::BlockDevice;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Two portals of one target; `target_portal` names the main path.
//!     let info = ConnectionInfo::parse(
//!         r#"{"driver_volume_type": "iscsi", "data": {
//!             "target_portal": "192.0.2.10:3260",
//!             "target_iqn": "iqn.2010-10.org.openstack:volume-1",
//!             "target_lun": 1,
//!             "target_portals": ["192.0.2.10:3260", "198.51.100.10:3260"],
//!             "target_iqns": ["iqn.2010-10.org.openstack:volume-1",
//!                             "iqn.2010-10.org.openstack:volume-1"],
//!             "target_luns": [1, 1],
//!             "auth_method": "CHAP",
//!             "auth_username": "host1",
//!             "auth_password": "a-long-shared-secret"
//!         }}"#,
//!     )?;
//!     let template = SessionTemplate::new("iqn.2004-10.com.example:host1");
//!     // Returns once one path is usable; the others join in the background.
//!     let volume =
//!         MultipathVolume::open_connection_info(&info, &template, VolumeOptions::default())
//!             .await?;
//!
//!     // Commands go to the paths the policy picks and fail over on path
//!     // errors; the caller sees one block device.
//!     let block = volume.read(0, 1).await?;
//!     // Any `bytes::Bytes` will do (a `Vec<u8>` converts with `.into()`):
//!     // here the block read, written back unchanged with FUA.
//!     volume.write(0, block.to_bytes(), true).await?;
//!     volume.flush().await?;
//!
//!     for path in volume.status().paths {
//!         println!("{} {} {:?} {:?}", path.portal, path.iqn, path.role, path.state);
//!     }
//!     volume.close().await;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
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
