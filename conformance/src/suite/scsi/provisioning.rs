//! COMPARE AND WRITE (SBC-3 §5.2) and logical block provisioning: UNMAP
//! (SBC-3 §5.28) with the Logical Block Provisioning VPD page (§6.5.13)
//! and READ CAPACITY (16)'s LBPME/LBPRZ (§5.16.2). A target without the
//! command, or an LU that is not thin provisioned, is skipped with that
//! reason.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use iscsi_proto::scsi::{Cdb, ReadCapacity16, SenseKey, UnmapDescriptor, UnmapParameterList};

use crate::context::{Ctx, pattern};
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::registry::TestCase;
use crate::suite::scsi::{Lu, expect_sense, lu, not_supported, unsupported};

/// Blocks no other test writes (tests run side by side).
const COMPARE_LBA: u64 = 4096;
const UNMAP_LBA: u64 = 4104;

const COMPARE_AND_WRITE: u8 = 0x89;
const LBP_VPD: u8 = 0xb2;

/// The tests of this file.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "scsi.compare_and_write.match",
            "SBC-3 §5.2",
            "COMPARE AND WRITE of one block whose verify data match the medium: GOOD, the write data are stored",
            |c| compare_and_write(c, false),
        )
        .destructive(),
        TestCase::new(
            "scsi.compare_and_write.miscompare",
            "SBC-3 §5.2",
            "COMPARE AND WRITE whose verify data differ: MISCOMPARE 1Dh/00h, the block is left unchanged",
            |c| compare_and_write(c, true),
        )
        .destructive(),
        TestCase::new(
            "scsi.unmap.lbp_vpd",
            "SBC-3 §6.5.13, §5.16.2",
            "a thin-provisioned LU (LBPME=1) has the Logical Block Provisioning VPD page, offering UNMAP or WRITE SAME unmapping, with READ CAPACITY (16)'s LBPRZ",
            lbp_vpd,
        ),
        TestCase::new(
            "scsi.unmap.block",
            "SBC-3 §5.28, §4.7.4.5",
            "UNMAP of one written block: GOOD, and it then reads as zeros when LBPRZ=1",
            unmap_block,
        )
        .destructive(),
        TestCase::new(
            "scsi.unmap.past_end",
            "SBC-3 §5.28",
            "UNMAP of a block past the last LBA: ILLEGAL REQUEST 21h/00h",
            unmap_past_end,
        )
        .destructive(),
    ]
}

fn write16(lba: u64) -> Bytes {
    Cdb::write16(lba, 1, false).to_bytes()
}

fn read16(lba: u64) -> Bytes {
    Cdb::read16(lba, 1, false).to_bytes()
}

async fn store(
    ctx: &Ctx,
    lu: &mut Lu,
    lba: u64,
    data: Bytes,
) -> Result<Result<(), String>, ProbeError> {
    let out = lu.write(ctx, &write16(lba), data).await?;
    Ok(if out.is_good() {
        Ok(())
    } else {
        Err(format!("WRITE (16) of LBA {lba}: {}", out.describe()))
    })
}

async fn fetch(ctx: &Ctx, lu: &mut Lu, lba: u64) -> Result<Result<Bytes, String>, ProbeError> {
    let bs = lu.block_size;
    let out = lu.read(ctx, &read16(lba), bs).await?;
    Ok(if out.is_good() && out.data.len() == bs as usize {
        Ok(out.data)
    } else {
        Err(format!("READ (16) of LBA {lba}: {}", out.describe()))
    })
}

fn compare_and_write_cdb(lba: u64, blocks: u8) -> Vec<u8> {
    let mut cdb = BytesMut::with_capacity(16);
    cdb.put_u8(COMPARE_AND_WRITE);
    cdb.put_u8(0);
    cdb.put_u64(lba);
    cdb.put_bytes(0, 3);
    cdb.put_u8(blocks);
    cdb.put_u8(0);
    cdb.put_u8(0);
    cdb.to_vec()
}

async fn compare_and_write(ctx: Arc<Ctx>, differ: bool) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let result = compare_and_write_on(&ctx, &mut lu, differ).await;
    lu.close(&ctx).await;
    result
}

async fn compare_and_write_on(ctx: &Ctx, lu: &mut Lu, differ: bool) -> TestResult {
    let bs = lu.block_size as usize;
    let before = pattern(bs);
    if let Err(why) = store(ctx, lu, COMPARE_LBA, before.clone()).await? {
        return fail(why);
    }
    let mut verify = before.to_vec();
    if differ {
        verify[bs / 2] ^= 0x5a;
    }
    let after = pattern(bs);
    let mut data = BytesMut::with_capacity(2 * bs);
    data.extend_from_slice(&verify);
    data.extend_from_slice(&after);
    let out = lu
        .write(ctx, &compare_and_write_cdb(COMPARE_LBA, 1), data.freeze())
        .await?;
    if unsupported(&out) {
        return not_supported("COMPARE AND WRITE");
    }
    let stored = match fetch(ctx, lu, COMPARE_LBA).await? {
        Ok(d) => d,
        Err(why) => return fail(why),
    };
    if differ {
        let verdict = expect_sense(&out, SenseKey::Miscompare, 0x1d, 0x00)?;
        if verdict != crate::outcome::Outcome::Pass {
            return Ok(verdict);
        }
        ensure!(
            stored == before,
            "a miscompared COMPARE AND WRITE changed the block{}",
            if stored == after {
                " to its write data"
            } else {
                ""
            }
        );
    } else {
        ensure!(
            out.is_good(),
            "COMPARE AND WRITE with the medium's own data: {}",
            out.describe()
        );
        ensure!(
            stored == after,
            "after a GOOD COMPARE AND WRITE the block does not hold its write data{}",
            if stored == before { " (unchanged)" } else { "" }
        );
    }
    pass()
}

/// What the LU says of its provisioning.
struct Provisioning {
    lbpme: bool,
    lbprz: bool,
    /// The Logical Block Provisioning VPD page, when it answered.
    vpd: Option<Bytes>,
}

async fn provisioning(ctx: &Ctx, lu: &mut Lu) -> Result<Result<Provisioning, String>, ProbeError> {
    let rc = lu
        .read(ctx, &Cdb::read_capacity16(32).to_bytes(), 32)
        .await?;
    let parsed = if rc.is_good() {
        ReadCapacity16::parse(&rc.data).ok()
    } else {
        None
    };
    let Some(parsed) = parsed else {
        return Ok(Err(format!("READ CAPACITY (16): {}", rc.describe())));
    };
    let page = lu
        .read(ctx, &Cdb::inquiry_vpd(LBP_VPD, 64).to_bytes(), 64)
        .await?;
    let vpd = (page.is_good() && page.data.len() >= 8 && page.data[1] == LBP_VPD)
        .then(|| page.data.clone());
    Ok(Ok(Provisioning {
        lbpme: parsed.lbpme,
        lbprz: parsed.lbprz,
        vpd,
    }))
}

const NOT_THIN: &str =
    "the LU is fully provisioned (LBPME=0 in READ CAPACITY (16)): it offers no unmapping";

async fn lbp_vpd(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let p = provisioning(&ctx, &mut lu).await?;
    lu.close(&ctx).await;
    let p = match p {
        Ok(p) => p,
        Err(why) => return fail(why),
    };
    if !p.lbpme {
        return skip(NOT_THIN);
    }
    let Some(vpd) = p.vpd else {
        return fail("LBPME=1, but INQUIRY of VPD page B2h (Logical Block Provisioning) fails");
    };
    // Byte 5: LBPU (bit 7), LBPWS (6), LBPWS10 (5), LBPRZ (2).
    ensure!(
        vpd[5] & 0xe0 != 0,
        "LBPME=1, but the VPD page offers neither UNMAP (LBPU) nor WRITE SAME unmapping (LBPWS, LBPWS10)"
    );
    let vpd_lbprz = vpd[5] & 0x04 != 0;
    ensure!(
        vpd_lbprz == p.lbprz,
        "LBPRZ is {} in READ CAPACITY (16) but {} in the VPD page",
        u8::from(p.lbprz),
        u8::from(vpd_lbprz)
    );
    pass()
}

/// Skips unless UNMAP is offered: LBPME=1 and LBPU in the VPD page.
async fn unmap_offered(
    ctx: &Ctx,
    lu: &mut Lu,
) -> Result<Result<Provisioning, TestResult>, ProbeError> {
    Ok(match provisioning(ctx, lu).await? {
        Err(why) => Err(fail(why)),
        Ok(p) if !p.lbpme => Err(skip(NOT_THIN)),
        Ok(p) if p.vpd.as_ref().is_none_or(|v| v[5] & 0x80 == 0) => Err(skip(
            "the LU is thin provisioned but does not offer UNMAP (LBPU=0 or no VPD page B2h)",
        )),
        Ok(p) => Ok(p),
    })
}

fn unmap_request(lba: u64) -> Result<UnmapParameterList, String> {
    UnmapParameterList::new(&[UnmapDescriptor { lba, blocks: 1 }], 1).map_err(|e| e.to_string())
}

async fn unmap_block(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let result = unmap_block_on(&ctx, &mut lu).await;
    lu.close(&ctx).await;
    result
}

async fn unmap_block_on(ctx: &Ctx, lu: &mut Lu) -> TestResult {
    let p = match unmap_offered(ctx, lu).await? {
        Ok(p) => p,
        Err(verdict) => return verdict,
    };
    let written = pattern(lu.block_size as usize);
    if let Err(why) = store(ctx, lu, UNMAP_LBA, written).await? {
        return fail(why);
    }
    let list = match unmap_request(UNMAP_LBA) {
        Ok(l) => l,
        Err(why) => return fail(why),
    };
    let out = lu
        .write(ctx, &list.cdb().to_bytes(), list.bytes().clone())
        .await?;
    if unsupported(&out) {
        return fail("LBPU=1, but UNMAP is answered INVALID COMMAND OPERATION CODE");
    }
    ensure!(
        out.is_good(),
        "UNMAP of LBA {UNMAP_LBA}: {}",
        out.describe()
    );
    let data = match fetch(ctx, lu, UNMAP_LBA).await? {
        Ok(d) => d,
        Err(why) => return fail(format!("after UNMAP, {why}")),
    };
    if p.lbprz {
        ensure!(
            data.iter().all(|b| *b == 0),
            "LBPRZ=1, but the unmapped block does not read as zeros"
        );
    }
    pass()
}

async fn unmap_past_end(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let result = async {
        if let Err(verdict) = unmap_offered(&ctx, &mut lu).await? {
            return verdict;
        }
        let list = match unmap_request(lu.blocks) {
            Ok(l) => l,
            Err(why) => return fail(why),
        };
        let out = lu
            .write(&ctx, &list.cdb().to_bytes(), list.bytes().clone())
            .await?;
        expect_sense(&out, SenseKey::IllegalRequest, 0x21, 0x00)
    }
    .await;
    lu.close(&ctx).await;
    result
}
