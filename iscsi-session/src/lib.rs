//! One iSCSI path end to end: TCP, login (security and operational negotiation,
//! CHAP), SendTargets discovery, pipelined SCSI commands, NOP keepalive, task
//! management, logout and reconnect with session reinstatement.
//!
//! The core is a sans-IO state machine ([`Connection`]) fed with bytes and the
//! current time; a thin tokio driver owns the socket and timers and exposes the
//! async [`Session`] handle. Commands are plain data ([`Command`]: CDB,
//! direction, buffers) so that the multipath layer can replay one on another
//! path unchanged.
#![forbid(unsafe_code)]

pub mod chap;
pub mod command;
pub mod config;
pub mod connection;
pub mod discovery;
mod driver;
pub mod error;
pub mod event;
mod login;
pub mod lun;
pub mod portal;
pub mod secret;
mod session;
mod transport;
pub mod url;

pub use command::{Command, CommandOutcome, Direction, ReadData};
pub use config::{ChapConfig, ChapCredentials, DigestPreference, SessionConfig, Timeouts};
pub use connection::{Connection, ConnectionState, ConnectionStats};
pub use discovery::{DiscoveredPath, discover};
pub use driver::{SessionState, SessionStatus};
pub use error::{CommandFailure, Error, PathContext};
pub use event::{Event, TargetEvent};
pub use iscsi_proto::text::OperationalParams;
pub use lun::{Geometry, LunHandle};
pub use portal::Portal;
pub use secret::Secret;
pub use session::Session;
pub use url::IscsiUrl;
