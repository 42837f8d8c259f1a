//! iSCSI (RFC 7143) protocol elements, sans-IO: bytes in, typed values out.
//!
//! Nothing here touches a socket or reads a clock. The session layer feeds bytes
//! and the current time in; this crate gives back typed PDUs, negotiated
//! parameters and SCSI results.
//!
//! - [`pdu`]: every PDU type as a typed struct with encode and decode.
//! - [`codec`]: the streaming decoder and encoder, with digests and size limits.
//! - [`digest`]: CRC32C header and data digests.
//! - [`text`]: key=value text, the RFC 7143 §13 key table and negotiation.
//! - [`serial`]: RFC 1982 serial number arithmetic for CmdSN/StatSN/DataSN.
//! - [`scsi`]: CDB builders, response parsers, sense data and failure classification.
#![forbid(unsafe_code)]

pub mod codec;
pub mod digest;
pub mod pdu;
pub mod scsi;
pub mod serial;
pub mod text;
