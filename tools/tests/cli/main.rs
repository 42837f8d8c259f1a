//! The `riscsi` binary end to end against real targets (tgtd, and istgt where
//! it differs): every subcommand run as a user would run it, its output
//! checked against what the fixture exports and its data against the backing
//! files. One test binary, one module per subject; every case runs in
//! parallel with its own daemon.

mod attach;
mod bench;
mod chap;
mod connector;
mod copy_from_volume;
mod copy_to_volume;
mod digests;
mod discover;
mod errors;
mod guest;
mod inquiry;
mod multipath;
mod reconnect;
mod security;
mod support;
