//! Harnesses shared by the fuzz targets and by `examples/make_seeds.rs`,
//! which writes the committed seeds through the very code the targets run
//! (so a seed's task tags, sequence numbers and digests are the ones the
//! connection under test will expect).
//!
//! Each module is one target's input layout and its invariants; the files
//! in `fuzz_targets/` only hand libFuzzer's bytes to them.

#![forbid(unsafe_code)]

pub mod chunks;
pub mod connection_info;
pub mod login;
pub mod nbd;
pub mod session;
pub mod target;
