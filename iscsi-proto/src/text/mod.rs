//! iSCSI text: the key=value format, its values, the RFC 7143 §13 key table
//! and the negotiation engine.
//!
//! Receiving: feed each Login/Text data segment with its C bit to a
//! [`TextAssembler`]; when it yields pairs, hand them to
//! [`Negotiation::receive`] (login and text negotiation) or to
//! [`parse_send_targets`] (a SendTargets answer). Sending: take the pairs
//! from [`Negotiation::take_outgoing`], [`encode_pairs`] them and cut them
//! with [`split_segments`] to the peer's MaxRecvDataSegmentLength.
//!
//! - [`pairs`]: parse and encode `key=value\0` text, with limits.
//! - [`assembler`]: reassembly of continued text, and splitting for sending.
//! - [`value`]: numbers, booleans, ranges, lists, binary, reserved answers.
//! - [`keys`]: the key table ([`lookup`]).
//! - [`policy`]: what one side supports and prefers.
//! - [`negotiation`]: the engine, for initiator and target alike.
//! - [`params`]: the typed outcome ([`OperationalParams`]).
//! - [`send_targets`]: SendTargets answers and TargetAddress values.
//! - [`error`]: the error type, [`TextError`].

pub mod assembler;
pub mod error;
pub mod keys;
pub mod negotiation;
pub mod pairs;
pub mod params;
pub mod policy;
mod rules;
pub mod send_targets;
pub mod value;

pub use assembler::{SegmentSplitter, TextAssembler, split_segments};
pub use error::{Snippet, TextError};
pub use keys::{KeyDef, ResultFunction, Role, Scope, Senders, Stage, ValueType, lookup};
pub use negotiation::{KeyStatus, Negotiation};
pub use pairs::{KeyValue, TextLimits, encode_pairs, parse_pairs};
pub use params::{Digest, OperationalParams, SessionType, TaskReporting};
pub use policy::Policy;
pub use send_targets::{TargetAddress, TargetRecord, parse_send_targets};
pub use value::Value;
