//! The SCSI family: the SPC and SBC commands of a disk LU, their valid
//! forms and the sense their invalid forms must produce.

mod alloc;
pub(crate) mod inquiry;
mod lba;
mod misc;
mod provisioning;
pub(crate) mod reservations;

use bytes::Bytes;
use iscsi_proto::scsi::{SenseKey, StandardInquiry};

use crate::context::Ctx;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::{Probe, ScsiOutcome, ScsiRequest, scsi::sense_name};
use crate::registry::TestCase;

/// Every SCSI test.
pub fn tests() -> Vec<TestCase> {
    let mut out = inquiry::tests();
    out.extend(misc::tests());
    out.extend(lba::tests());
    out.extend(alloc::tests());
    out.extend(provisioning::tests());
    out.extend(reservations::tests());
    out
}

/// A session on the LU under test with its geometry.
pub(crate) struct Lu {
    pub probe: Probe,
    pub blocks: u64,
    pub block_size: u32,
}

pub(crate) async fn lu(ctx: &Ctx) -> Result<Lu, ProbeError> {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (blocks, block_size) = ctx.capacity(&mut probe).await?;
    Ok(Lu {
        probe,
        blocks,
        block_size,
    })
}

impl Lu {
    /// Runs a CDB reading up to `read_len` bytes.
    pub async fn read(
        &mut self,
        ctx: &Ctx,
        cdb: &[u8],
        read_len: u32,
    ) -> Result<ScsiOutcome, ProbeError> {
        let lun = ctx.lun(&self.probe.endpoint);
        self.probe
            .execute(ScsiRequest::read(
                lun,
                Bytes::copy_from_slice(cdb),
                read_len,
            ))
            .await
    }

    /// Runs a CDB without data.
    pub async fn none(&mut self, ctx: &Ctx, cdb: &[u8]) -> Result<ScsiOutcome, ProbeError> {
        let lun = ctx.lun(&self.probe.endpoint);
        self.probe
            .execute(ScsiRequest::none(lun, Bytes::copy_from_slice(cdb)))
            .await
    }

    /// Runs a CDB writing `data`.
    pub async fn write(
        &mut self,
        ctx: &Ctx,
        cdb: &[u8],
        data: Bytes,
    ) -> Result<ScsiOutcome, ProbeError> {
        let lun = ctx.lun(&self.probe.endpoint);
        self.probe
            .execute(ScsiRequest::write(lun, Bytes::copy_from_slice(cdb), data))
            .await
    }

    /// The standard INQUIRY data.
    pub async fn inquiry(&mut self, ctx: &Ctx) -> Result<StandardInquiry, ProbeError> {
        let out = self.read(ctx, &[0x12, 0, 0, 0, 96, 0], 96).await?;
        StandardInquiry::parse(&out.data).map_err(|e| ProbeError::Precondition {
            portal: self.probe.portal().to_owned(),
            what: "INQUIRY".into(),
            reason: format!("{} ({e})", out.describe()),
        })
    }

    pub async fn close(self, ctx: &Ctx) {
        ctx.close(self.probe).await;
    }
}

/// CHECK CONDITION with exactly this sense, else a failure naming both.
pub(crate) fn expect_sense(out: &ScsiOutcome, key: SenseKey, asc: u8, ascq: u8) -> TestResult {
    if out.is_check(key, asc, ascq) {
        pass()
    } else {
        fail(format!(
            "expected {}, got {}",
            sense_name(key, asc, ascq),
            out.describe()
        ))
    }
}

/// GOOD, else a failure naming what came.
pub(crate) fn expect_good(out: &ScsiOutcome, what: &str) -> TestResult {
    if out.is_good() {
        pass()
    } else {
        fail(format!("{what}: {}", out.describe()))
    }
}

/// An optional command the LU does not implement.
pub(crate) fn unsupported(out: &ScsiOutcome) -> bool {
    out.is_check(SenseKey::IllegalRequest, 0x20, 0x00)
}

pub(crate) fn not_supported(name: &str) -> TestResult {
    skip(format!(
        "{name} is not supported (INVALID COMMAND OPERATION CODE)"
    ))
}
