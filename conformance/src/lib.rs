//! A conformance suite for iSCSI targets: `riscsi conformance URL [URL2]`
//! as a library that any program can embed.
//!
//! Four families of tests, each naming the RFC 7143, SPC or SBC section it
//! checks:
//!
//! - `login`: every RFC 7143 §13 key at its bounds and out of range, CHAP
//!   (MD5, SHA-1, SHA-256, mutual, wrong secrets, challenge reuse),
//!   discovery sessions, TSIH and ISID rules, session reinstatement.
//! - `ff` (full feature phase): the CmdSN window, immediate delivery,
//!   DataSN and buffer offsets, R2T sequencing under every InitialR2T and
//!   ImmediateData combination, residuals, task management, NOP, text,
//!   logout.
//! - `scsi`: the SPC and SBC commands a disk LU serves, with the sense
//!   data their invalid forms must produce.
//! - `multipath` (needs a second URL to the same LU): identity, data and
//!   reservations across two I_T nexuses, and failures on one path that
//!   must not disturb the other.
//!
//! Tests that cannot run on a target (an optional feature it does not
//! offer) are skipped with the reason, never passed. Tests that write to
//! the LU or reset it are `destructive` and run only when
//! [`SuiteConfig::dataloss`] is set.
//!
//! ```no_run
//! use iscsi_conformance::{Endpoint, SuiteConfig, registry, report, runner};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let url: iscsi_session::IscsiUrl = "iscsi://127.0.0.1/iqn.2026-11.test:disk/1".parse()?;
//! let config = SuiteConfig::new(Endpoint::from_url(&url)?, "iqn.2026-11.test:me");
//! let tests = registry::select(registry::all(), &["login.chap".to_owned()]);
//! let records = runner::run(config, &tests, |r| println!("{}", report::table::line(r))).await;
//! print!("{}", report::table::summary(&records));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod context;
pub mod endpoint;
pub mod error;
pub mod expected;
pub mod outcome;
pub mod probe;
pub mod registry;
pub mod report;
pub mod runner;
pub mod suite;

pub use context::Ctx;
pub use endpoint::{Endpoint, EndpointError, SuiteConfig};
pub use error::ProbeError;
pub use expected::{Expectations, Mismatch};
pub use outcome::{Outcome, TestResult, Verdict};
pub use registry::TestCase;
pub use runner::Record;
