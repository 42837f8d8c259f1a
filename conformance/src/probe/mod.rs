//! The probe: a raw iSCSI connection for tests that need wire-level control
//! a normal session hides (arbitrary PDUs, chosen login keys, deliberate
//! mistakes), built on iscsi-proto's codec over a tokio TcpStream.

pub mod chap;
pub mod connection;
pub mod login;
pub mod negotiated;
pub mod requests;
pub mod scsi;
pub mod text;

pub use connection::{Probe, random_isid};
pub use login::{Auth, LoginEnd, LoginReport, LoginSpec};
pub use negotiated::Negotiated;
pub use scsi::{Pending, ScsiOutcome, ScsiRequest};
