//! An NBD server (the NetworkBlockDevice protocol, fixed newstyle) for any
//! [`iscsi_session::BlockDevice`]: one session's LUN, or a multipath volume,
//! so that a host, a VM or any NBD client sees one block device.
//!
//! - [`request`] and [`reply`]: transmission messages on the wire;
//! - [`handshake`]: option haggling (EXPORT_NAME, GO, INFO, LIST, ABORT,
//!   STRUCTURED_REPLY; STARTTLS and unknown options refused);
//! - [`handler`]: one request checked and mapped to SCSI;
//! - [`connection`]: the transmission phase of one client;
//! - [`server`]: listeners, clients, shutdown; which connections are
//!   taken (a cap on clients and on handshakes) is `admission`'s.
//!
//! The requests of a connection run concurrently inside that connection's
//! task: on a current-thread runtime a request never changes thread
//! between the socket and the iSCSI session.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admission;
mod batched;
pub mod connection;
pub mod export;
pub mod handler;
pub mod handshake;
pub mod proto;
pub mod reply;
pub mod request;
pub mod server;

pub use export::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_HANDSHAKES, Export, ExportConfig,
    MAX_BLOCK,
};
pub use server::{
    ListenError, Listener, NbdServer, PeerRefused, bind_unix_private, check_unix_peer,
};
