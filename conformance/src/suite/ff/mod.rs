//! The full feature phase family: sequencing, data transfer, task
//! management, NOP, text, logout and reject (RFC 7143 §4.2, §10, §11).

mod cmdsn;
mod data;
mod logout;
mod nop;
mod nop_in;
mod r2t;
mod reject;
mod residual;
mod text;
mod tmf;

use iscsi_proto::scsi::Cdb;

use crate::context::Ctx;
use crate::probe::{Probe, ScsiRequest};
use crate::registry::TestCase;

/// Every full feature phase test.
pub fn tests() -> Vec<TestCase> {
    let mut out = nop::tests();
    out.extend(nop_in::tests());
    out.extend(cmdsn::tests());
    out.extend(data::tests());
    out.extend(r2t::tests());
    out.extend(residual::tests());
    out.extend(tmf::tests());
    out.extend(text::tests());
    out.extend(logout::tests());
    out.extend(reject::tests());
    out
}

/// A TEST UNIT READY to the LU under test.
pub(crate) fn tur(ctx: &Ctx, probe: &Probe) -> ScsiRequest {
    ScsiRequest::none(ctx.lun(&probe.endpoint), Cdb::test_unit_ready().to_bytes())
}
