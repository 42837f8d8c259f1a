//! The tests, one module per family and one file per group.

pub mod ff;
pub mod login;
pub mod multipath;
pub mod scsi;
mod support;

use crate::context::Ctx;
use crate::probe::{Probe, ScsiRequest};

/// A TEST UNIT READY to the LU behind `probe`.
pub(crate) fn ff_tur(ctx: &Ctx, probe: &Probe) -> ScsiRequest {
    ff::tur(ctx, probe)
}
