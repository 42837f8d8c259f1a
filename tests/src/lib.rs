//! Support for integration tests against real peers.

pub mod pcap;
pub mod scripted;
