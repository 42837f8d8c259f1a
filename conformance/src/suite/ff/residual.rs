//! Residuals (RFC 7143 §11.4.5): when the Expected Data Transfer Length
//! differs from what the CDB moves, the target says so with the U or O bit
//! and the Residual Count, and moves no more than expected.

use std::sync::Arc;

use iscsi_proto::pdu::Residual;
use iscsi_proto::scsi::Cdb;

use crate::context::{Ctx, pattern};
use crate::ensure;
use crate::outcome::{TestResult, pass};
use crate::probe::ScsiRequest;
use crate::registry::TestCase;

const SECTION: &str = "RFC 7143 §11.4.5";

/// The residual tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "ff.residual.read_underflow",
            SECTION,
            "READ of 1 block with an EDTL of 2: underflow of one block, one block of data",
            read_underflow,
        ),
        TestCase::new(
            "ff.residual.read_overflow",
            SECTION,
            "READ of 2 blocks with an EDTL of 1: overflow of one block, no more than one block of data",
            read_overflow,
        ),
        TestCase::new(
            "ff.residual.read_zero_edtl",
            SECTION,
            "READ of 1 block with EDTL 0: overflow of one block and no data",
            read_zero_edtl,
        ),
        TestCase::new(
            "ff.residual.inquiry_underflow",
            SECTION,
            "INQUIRY with 255 bytes allocated and expected: the residual is 255 minus the data sent",
            inquiry_underflow,
        ),
        TestCase::new(
            "ff.residual.exact",
            SECTION,
            "READ with a matching EDTL reports no residual",
            exact,
        ),
        TestCase::new(
            "ff.residual.write_underflow",
            SECTION,
            "WRITE of 1 block with an EDTL of 2: underflow of one block",
            write_underflow,
        )
        .destructive(),
        TestCase::new(
            "ff.residual.write_overflow",
            SECTION,
            "WRITE of 2 blocks with an EDTL of 1: overflow of one block",
            write_overflow,
        )
        .destructive(),
    ]
}

async fn read_underflow(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::read(
            lun,
            Cdb::read16(0, 1, false).to_bytes(),
            2 * bs,
        ))
        .await?;
    ctx.close(probe).await;
    ensure!(out.is_good(), "{}", out.describe());
    ensure!(
        out.residual == Residual::Underflow(bs),
        "residual {:?}, expected Underflow({bs})",
        out.residual
    );
    ensure!(
        out.data.len() == bs as usize,
        "{} bytes of data for one {bs}-byte block",
        out.data.len()
    );
    pass()
}

async fn read_overflow(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::read(
            lun,
            Cdb::read16(0, 2, false).to_bytes(),
            bs,
        ))
        .await?;
    ctx.close(probe).await;
    ensure!(
        out.residual == Residual::Overflow(bs),
        "residual {:?}, expected Overflow({bs}) ({})",
        out.residual,
        out.describe()
    );
    ensure!(
        out.data.len() <= bs as usize,
        "{} bytes of data with an EDTL of {bs}",
        out.data.len()
    );
    pass()
}

async fn read_zero_edtl(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::none(lun, Cdb::read16(0, 1, false).to_bytes()))
        .await?;
    ctx.close(probe).await;
    ensure!(
        out.data.is_empty(),
        "{} bytes of Data-In with EDTL 0",
        out.data.len()
    );
    ensure!(
        out.residual == Residual::Overflow(bs),
        "residual {:?}, expected Overflow({bs}) ({})",
        out.residual,
        out.describe()
    );
    pass()
}

async fn inquiry_underflow(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::read(lun, Cdb::inquiry(255).to_bytes(), 255))
        .await?;
    ctx.close(probe).await;
    ensure!(out.is_good(), "{}", out.describe());
    let sent = out.data.len() as u32;
    let want = if sent == 255 {
        Residual::None
    } else {
        Residual::Underflow(255 - sent)
    };
    ensure!(
        out.residual == want,
        "{sent} bytes sent, residual {:?}, expected {want:?}",
        out.residual
    );
    pass()
}

async fn exact(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let out = probe
        .execute(ScsiRequest::read(
            lun,
            Cdb::read16(0, 2, false).to_bytes(),
            2 * bs,
        ))
        .await?;
    ctx.close(probe).await;
    ensure!(out.is_good(), "{}", out.describe());
    ensure!(
        out.residual == Residual::None,
        "residual {:?} on an exact read",
        out.residual
    );
    pass()
}

async fn write_underflow(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let mut req = ScsiRequest::write(
        lun,
        Cdb::write16(8, 1, false).to_bytes(),
        pattern(2 * bs as usize),
    );
    req.no_immediate_data = true;
    let out = probe.execute(req).await?;
    ctx.close(probe).await;
    ensure!(
        out.residual == Residual::Underflow(bs),
        "residual {:?}, expected Underflow({bs}) ({})",
        out.residual,
        out.describe()
    );
    pass()
}

async fn write_overflow(ctx: Arc<Ctx>) -> TestResult {
    let mut probe = ctx.open(&ctx.primary().clone()).await?;
    let (_, bs) = ctx.capacity(&mut probe).await?;
    let lun = ctx.lun(&probe.endpoint);
    let mut req = ScsiRequest::write(
        lun,
        Cdb::write16(8, 2, false).to_bytes(),
        pattern(bs as usize),
    );
    req.no_immediate_data = true;
    let out = probe.execute(req).await?;
    ctx.close(probe).await;
    ensure!(
        out.residual == Residual::Overflow(bs),
        "residual {:?}, expected Overflow({bs}) ({})",
        out.residual,
        out.describe()
    );
    pass()
}
