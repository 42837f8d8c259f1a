//! Support for integration tests against real peers: private tgtd and istgt
//! fixtures, a fault-injecting TCP proxy, a scripted PDU-by-PDU target, a pcap
//! writer for the tshark oracle, helpers to drive libiscsi's tools, a running
//! `riscsi attach` ([`Attach`]), a raw NBD client ([`nbd_client`]) and a
//! network namespace whose links can be cut or impaired ([`Netns`]).
//!
//! ```no_run
//! use riscsi_tests::prelude::*;
//!
//! let tgt = Tgt::builder()
//!     .portal("127.0.0.1")
//!     .portal("::1")
//!     .lun(LunSpec::new(64 << 20).block_size(4096).pattern(7))
//!     .chap("user", "secret-1234")
//!     .start()?;
//! let info = tgt.connection_info(ConnectionInfoForm::Lists);
//! # Ok::<(), riscsi_tests::FixtureError>(())
//! ```

mod attach;
mod builder;
mod chap;
mod command;
mod connection_info;
mod daemon;
mod error;
mod export;
pub mod fault_matrix;
pub mod guest;
mod istgt;
pub mod libiscsi;
mod lun;
pub mod nbd_async;
pub mod nbd_client;
mod net;
pub mod netns;
pub mod pattern;
pub mod pcap;
mod pdeathsig;
mod proc_net;
mod proxy;
pub mod scripted;
pub mod soak;
mod spawn;
mod temp;
mod tgt;
mod tools;
pub mod transport_ab;
pub mod tshark;
pub mod unh_iol;
pub mod verifier;
pub mod volume;

pub use attach::{ATTACH_INITIATOR, Attach, riscsi_binary};
pub use builder::{DEFAULT_LUN_SIZE, DEFAULT_STARTUP_TIMEOUT, FixtureBuilder, TargetSpec};
pub use chap::{Chap, ChapConfig};
pub use command::{ToolCommand, ToolOutput};
pub use connection_info::{ConnectionInfo, ConnectionInfoFiles, ConnectionInfoForm, IscsiPath};
pub use error::{FixtureError, Result};
pub use export::{Export, ExportedTarget, Fixture};
pub use istgt::{Istgt, IstgtBuilder};
pub use lun::{ExportedLun, LunSpec};
pub use net::{free_port, free_port_on_all, portal_string, random_u64, unique_loopback_v4};
pub use netns::{Impairment, ImpairmentStats, Link, Netns};
pub use proc_net::listening_addrs;
pub use proxy::{FaultProxy, ProxyControl, ProxyMode, ProxyStats};
pub use spawn::spawn_tied;
pub use temp::{NAME_PREFIX, SHM_DIR, temp_dir};
pub use tgt::{Tgt, TgtBuilder};
pub use tools::require_tool;

/// Everything a test usually needs, in one import.
pub mod prelude {
    pub use crate::{
        ConnectionInfoForm, FaultProxy, Fixture, FixtureError, Istgt, LunSpec, TargetSpec, Tgt,
    };
}
