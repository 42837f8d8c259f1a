//! Support for integration tests against real peers.
