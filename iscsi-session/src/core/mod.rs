//! The sans-IO core: everything about one iSCSI path that is not I/O. Bytes
//! and the current time go in, PDUs to send, events and deadlines come out;
//! nothing here blocks, reads a clock, spawns or touches a socket, so it runs
//! under any runtime, or none (see [`Connection`]).
//!
//! [`Connection`]: connection::Connection

pub mod backoff;
pub mod chap;
pub mod command;
pub mod completion;
pub mod config;
pub mod connection;
pub mod error;
pub(crate) mod login;
pub mod lu_change;
pub mod portal;
pub mod retry;
pub mod secret;
mod text;
pub mod url;
