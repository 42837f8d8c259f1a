//! One iSCSI path end to end: TCP, login (security and operational
//! negotiation, CHAP), SendTargets discovery, pipelined SCSI commands, NOP
//! keepalive, task management, logout and reconnect with session
//! reinstatement.
//!
//! The crate is in three parts, and the first one needs no runtime:
//!
//! - [`core`]: the sans-IO state machine. A [`Connection`] is fed bytes and
//!   the current time and yields PDUs to send, events and its next
//!   deadline, in the style of quinn-proto. Commands are plain data
//!   ([`Command`]: CDB, direction, buffers) so that a multipath layer can
//!   send one again on another path unchanged.
//! - [`runtime`] (feature `runtime`, on by default): a tokio task per
//!   session owns the socket and the timers and drives the core; [`Session`]
//!   is its cloneable handle.
//! - [`block`]: the block API ([`BlockDevice`]) written once over any
//!   [`ScsiExecutor`]: a LUN of one session ([`SessionLun`]) or a
//!   multipath volume.
//!
//! Why a module boundary rather than a crate of its own (as quinn keeps
//! quinn-proto): the core and the driver change together while the project
//! is young, and `default-features = false` already gives an embedder the
//! core without tokio.
//!
//! # Example
//!
//! One LUN through one portal: log in, read a block, write it back, log
//! out. `Session` is the tokio runtime's handle; the block calls come from
//! the [`BlockDevice`] trait, the same on a multipath volume.
//!
//! ```no_run
//! use iscsi_session::{BlockDevice, Portal, Session, SessionConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let portal: Portal = "192.0.2.10:3260".parse()?;
//!     let config = SessionConfig::new(
//!         portal,
//!         "iqn.2003-01.org.linux-iscsi.storage:vol1",
//!         "iqn.2004-10.com.example:host1",
//!     );
//!     // Returns once logged in; after that the session logs in again by
//!     // itself when the connection fails.
//!     let session = Session::connect(config).await?;
//!
//!     // TEST UNIT READY (waiting out UNIT ATTENTIONs), then the geometry.
//!     let lun = session.open_lun(1).await?;
//!     let geometry = lun.geometry();
//!     println!("{} blocks of {} bytes", geometry.blocks, geometry.block_size);
//!
//!     let block = lun.read(0, 1).await?;
//!     let data: bytes::Bytes = block.to_bytes();
//!     // FUA: on stable storage when the write returns.
//!     lun.write(0, data, true).await?;
//!     lun.flush().await?;
//!
//!     session.logout().await?;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod core;
#[cfg(feature = "runtime")]
pub mod runtime;

pub use block::{BlockDevice, BlockError, Geometry, ScsiExecutor};
#[cfg(feature = "runtime")]
pub use block::{SessionLun, SessionScsi};
pub use core::backoff::ReconnectPolicy;
pub use core::chap::ChapAlgorithm;
pub use core::command::{Command, CommandOutcome, Direction, ReadData};
pub use core::completion::{Completion, CompletionQueue, CompletionSink};
pub use core::config::{
    ChapConfig, ChapCredentials, DigestPreference, OperationalPreferences, Recovery, SessionConfig,
    Timeouts,
};
pub use core::connection::{
    ChapDiagnosis, Connection, ConnectionEvent, ConnectionState, ConnectionStats, TargetEvent,
    Unfinished,
};
pub use core::error::{Delivery, Error, PathContext, TaskFailure};
pub use core::lu_change::LuChange;
pub use core::portal::{Portal, PortalParseError};
pub use core::retry::{RetryPolicy, RetryVerdict};
pub use core::secret::Secret;
pub use core::url::{IscsiUrl, UrlError};
pub use iscsi_proto::text::OperationalParams;
#[cfg(feature = "runtime")]
pub use runtime::discovery::{DiscoveredPath, discover};
#[cfg(feature = "runtime")]
pub use runtime::{Session, SessionState, SessionStatus};
