//! One iSCSI path end to end: TCP, login (security and operational negotiation,
//! CHAP), SendTargets discovery, pipelined SCSI commands, NOP keepalive, task
//! management, logout and reconnect with session reinstatement.
//!
//! The core is a sans-IO state machine fed with bytes and the current time; a thin
//! tokio driver owns the socket and timers and exposes an async `Session` handle.
//! Commands are plain data (CDB, direction, buffers) so that the multipath layer can
//! replay one on another path unchanged.
#![forbid(unsafe_code)]
