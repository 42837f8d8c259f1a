//! The non-block commands a disk LU serves (SPC-4 §6; SBC-3 §5.16, §5.17):
//! TEST UNIT READY, REQUEST SENSE, REPORT LUNS, MODE SENSE, READ CAPACITY;
//! an unknown opcode; NACA where NormACA is not offered; commands to a LUN
//! that does not exist.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::scsi::{ReadCapacity10, ReadCapacity16, ReportLuns, SenseKey};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::ScsiRequest;
use crate::registry::TestCase;
use crate::suite::scsi::inquiry::misc_free_lun;
use crate::suite::scsi::{expect_good, expect_sense, lu};

/// The tests of this file.
pub fn tests() -> Vec<TestCase> {
    let mut out = vec![
        TestCase::new(
            "scsi.tur.ready",
            "SPC-4 §6.37",
            "TEST UNIT READY: GOOD once unit attentions are cleared",
            tur,
        ),
        TestCase::new(
            "scsi.request_sense.no_sense",
            "SPC-4 §6.29",
            "REQUEST SENSE with nothing pending: GOOD, sense key NO SENSE",
            request_sense,
        ),
        TestCase::new(
            "scsi.report_luns.lists_lun",
            "SPC-4 §6.33",
            "REPORT LUNS lists the LUN under test, in a list of whole 8-byte entries",
            report_luns,
        ),
        TestCase::new(
            "scsi.report_luns.short_allocation",
            "SPC-4 §6.33",
            "REPORT LUNS with ALLOCATION LENGTH 15: ILLEGAL REQUEST 24h/00h",
            report_luns_short,
        ),
        TestCase::new(
            "scsi.report_luns.reserved_select",
            "SPC-4 §6.33",
            "REPORT LUNS with a reserved SELECT REPORT (0Fh): ILLEGAL REQUEST 24h/00h",
            report_luns_select,
        ),
        TestCase::new(
            "scsi.report_luns.truncated_length",
            "SPC-4 §6.33",
            "REPORT LUNS with 16 bytes allocated still reports the whole LUN LIST LENGTH",
            report_luns_truncated,
        ),
        TestCase::new(
            "scsi.mode_sense.all_pages6",
            "SPC-4 §6.11",
            "MODE SENSE (6) of all pages: GOOD, MODE DATA LENGTH matches the data",
            mode_sense6,
        ),
        TestCase::new(
            "scsi.mode_sense.all_pages10",
            "SPC-4 §6.12",
            "MODE SENSE (10) of all pages: GOOD, MODE DATA LENGTH matches the data",
            mode_sense10,
        ),
        TestCase::new(
            "scsi.mode_sense.caching_page",
            "SBC-3 §6.4.5",
            "MODE SENSE of the caching page (08h) returns page 08h",
            caching_page,
        ),
        TestCase::new(
            "scsi.mode_sense.control_page",
            "SPC-4 §7.5.7",
            "MODE SENSE of the control page (0Ah) returns page 0Ah",
            control_page,
        ),
        TestCase::new(
            "scsi.mode_sense.dbd",
            "SPC-4 §6.11",
            "MODE SENSE (6) with DBD=1 returns no block descriptor",
            mode_dbd,
        ),
        TestCase::new(
            "scsi.mode_sense.unsupported_page",
            "SPC-4 §6.11",
            "MODE SENSE (6) of an unsupported page (3Eh): ILLEGAL REQUEST 24h/00h",
            mode_unsupported,
        ),
        TestCase::new(
            "scsi.mode_sense.saved_values",
            "SPC-4 §6.11",
            "MODE SENSE (6) of saved values: GOOD, or ILLEGAL REQUEST 39h/00h (saving not supported)",
            mode_saved,
        ),
        TestCase::new(
            "scsi.read_capacity.10_and_16_agree",
            "SBC-3 §5.16, §5.17",
            "READ CAPACITY (10) and (16) report the same last LBA and block length",
            capacity_agree,
        ),
        TestCase::new(
            "scsi.read_capacity.block_length",
            "SBC-3 §5.17",
            "the block length is a power of two, 512..65536 (and non-zero)",
            block_length,
        ),
        TestCase::new(
            "scsi.read_capacity.pmi_lba",
            "SBC-3 §5.16",
            "READ CAPACITY (10) with PMI=0 and a non-zero LBA: ILLEGAL REQUEST 24h/00h",
            pmi_lba,
        ),
        TestCase::new(
            "scsi.read_capacity.16_service_action",
            "SPC-4 §4.2.5.2",
            "SERVICE ACTION IN (16) with a reserved service action (1Fh): ILLEGAL REQUEST 24h/00h or 20h/00h",
            rc16_bad_sa,
        ),
        TestCase::new(
            "scsi.opcode.reserved",
            "SPC-4 §4.5.1",
            "a reserved operation code (02h): ILLEGAL REQUEST 20h/00h",
            reserved_opcode,
        ),
        TestCase::new(
            "scsi.opcode.vendor_unknown",
            "SPC-4 §4.5.1",
            "an operation code the LU does not implement (FFh): ILLEGAL REQUEST 20h/00h",
            vendor_opcode,
        ),
    ];
    let naca: [(&str, &[u8], u32); 6] = [
        ("test_unit_ready", &[0x00, 0, 0, 0, 0, 0x04], 0),
        ("inquiry", &[0x12, 0, 0, 0, 36, 0x04], 36),
        ("read_capacity10", &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0x04], 8),
        ("read10", &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04], 65536),
        (
            "report_luns",
            &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x04],
            4096,
        ),
        ("mode_sense6", &[0x1a, 0, 0x3f, 0, 255, 0x04], 255),
    ];
    for (name, cdb, len) in naca {
        out.push(TestCase::new(
            format!("scsi.naca.{name}"),
            "SAM-5 §5.3, SPC-4 §4.3.4",
            format!(
                "{} with NACA=1 where NormACA is 0: ILLEGAL REQUEST 24h/00h",
                name.to_uppercase()
            ),
            move |ctx| naca_case(ctx, cdb, len),
        ));
    }
    let bad_lun: [(&str, &[u8], u32); 5] = [
        ("test_unit_ready", &[0x00, 0, 0, 0, 0, 0], 0),
        ("read_capacity10", &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8),
        (
            "read_capacity16",
            &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            32,
        ),
        ("read10", &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 65536),
        ("mode_sense6", &[0x1a, 0, 0x3f, 0, 255, 0], 255),
    ];
    for (name, cdb, len) in bad_lun {
        out.push(TestCase::new(
            format!("scsi.bad_lun.{name}"),
            "SPC-4 §5.10",
            format!(
                "{} to a LUN that does not exist: ILLEGAL REQUEST 25h/00h",
                name.to_uppercase()
            ),
            move |ctx| bad_lun_case(ctx, cdb, len),
        ));
    }
    for (name, sixteen) in [("verify10", false), ("verify16", true)] {
        out.push(TestCase::new(
            format!("scsi.verify_bytchk.{name}_match"),
            "SBC-3 §5.33",
            format!(
                "{} with BYTCHK=01b and the data on the medium: GOOD",
                name.to_uppercase()
            ),
            move |ctx| verify_bytchk(ctx, sixteen, false),
        ));
        out.push(TestCase::new(
            format!("scsi.verify_bytchk.{name}_miscompare"),
            "SBC-3 §5.33",
            format!(
                "{} with BYTCHK=01b and other data: MISCOMPARE 1Dh/00h",
                name.to_uppercase()
            ),
            move |ctx| verify_bytchk(ctx, sixteen, true),
        ));
    }
    out.push(TestCase::new(
        "scsi.bad_lun.report_luns_answered",
        "SPC-4 §6.33",
        "REPORT LUNS sent to a LUN that does not exist is still answered GOOD",
        bad_lun_report_luns,
    ));
    out
}

async fn tur(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.none(&ctx, &[0, 0, 0, 0, 0, 0]).await?;
    lu.close(&ctx).await;
    expect_good(&out, "TEST UNIT READY")
}

async fn request_sense(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x03, 0, 0, 0, 252, 0], 252).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "REQUEST SENSE: {}", out.describe());
    let sense = iscsi_proto::scsi::Sense::parse(&out.data);
    match sense {
        Ok(s) => {
            ensure!(
                s.key == SenseKey::NoSense,
                "sense key {} with nothing pending",
                s.key.name()
            );
            pass()
        }
        Err(e) => fail(format!("the sense data do not parse: {e}")),
    }
}

async fn report_luns(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(&ctx, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], 4096)
        .await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "REPORT LUNS: {}", out.describe());
    let parsed = match ReportLuns::parse(&out.data) {
        Ok(p) => p,
        Err(e) => return fail(format!("does not parse: {e}")),
    };
    ensure!(
        parsed.lun_list_length % 8 == 0,
        "LUN LIST LENGTH {} is not a multiple of 8",
        parsed.lun_list_length
    );
    let ours = ctx.primary().lun;
    ensure!(
        parsed.luns.iter().any(|l| l.number() == Some(ours)),
        "LUN {ours} is not listed"
    );
    pass()
}

async fn report_luns_short(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(&ctx, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0], 15)
        .await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn report_luns_select(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(&ctx, &[0xa0, 0, 0x0f, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], 4096)
        .await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn report_luns_truncated(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let full = lu
        .read(&ctx, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], 4096)
        .await?;
    let short = lu
        .read(&ctx, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], 16)
        .await?;
    lu.close(&ctx).await;
    ensure!(
        full.is_good() && short.is_good(),
        "REPORT LUNS: {} / {}",
        full.describe(),
        short.describe()
    );
    ensure!(
        short.data.len() <= 16,
        "{} bytes for 16 allocated",
        short.data.len()
    );
    ensure!(
        full.data.len() >= 4 && short.data.len() >= 4,
        "no LUN LIST LENGTH"
    );
    ensure!(
        full.data[..4] == short.data[..4],
        "LUN LIST LENGTH {:02x?} when truncated, {:02x?} in full",
        &short.data[..4],
        &full.data[..4]
    );
    pass()
}

async fn mode_sense6(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x1a, 0, 0x3f, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "MODE SENSE (6): {}", out.describe());
    ensure!(!out.data.is_empty(), "no data");
    let declared = usize::from(out.data[0]) + 1;
    ensure!(
        declared == out.data.len() || (declared > out.data.len() && out.data.len() == 255),
        "MODE DATA LENGTH says {declared} bytes, {} came",
        out.data.len()
    );
    pass()
}

async fn mode_sense10(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(&ctx, &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0], 4096)
        .await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "MODE SENSE (10): {}", out.describe());
    ensure!(
        out.data.len() >= 8,
        "{} bytes, less than the 8-byte header",
        out.data.len()
    );
    let declared = usize::from(u16::from_be_bytes([out.data[0], out.data[1]])) + 2;
    ensure!(
        declared == out.data.len(),
        "MODE DATA LENGTH says {declared} bytes, {} came",
        out.data.len()
    );
    pass()
}

/// MODE SENSE (6) with DBD of one page; the first page's code.
async fn first_page(ctx: &Ctx, page: u8) -> Result<Result<u8, String>, crate::ProbeError> {
    let mut lu = lu(ctx).await?;
    let out = lu.read(ctx, &[0x1a, 0x08, page, 0, 255, 0], 255).await?;
    lu.close(ctx).await;
    if !out.is_good() {
        return Ok(Err(format!(
            "MODE SENSE (6) page {page:02X}h: {}",
            out.describe()
        )));
    }
    if out.data.len() < 5 {
        return Ok(Err(format!("{} bytes: no page", out.data.len())));
    }
    let bdl = usize::from(out.data[3]);
    match out.data.get(4 + bdl) {
        Some(code) => Ok(Ok(code & 0x3f)),
        None => Ok(Err("the data end before the first page".into())),
    }
}

async fn caching_page(ctx: Arc<Ctx>) -> TestResult {
    match first_page(&ctx, 0x08).await? {
        Ok(0x08) => pass(),
        Ok(other) => fail(format!("page {other:02X}h came for 08h")),
        Err(e) => fail(e),
    }
}

async fn control_page(ctx: Arc<Ctx>) -> TestResult {
    match first_page(&ctx, 0x0a).await? {
        Ok(0x0a) => pass(),
        Ok(other) => fail(format!("page {other:02X}h came for 0Ah")),
        Err(e) => fail(e),
    }
}

async fn mode_dbd(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x1a, 0x08, 0x3f, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "MODE SENSE (6) DBD=1: {}", out.describe());
    ensure!(out.data.len() >= 4, "{} bytes", out.data.len());
    ensure!(
        out.data[3] == 0,
        "BLOCK DESCRIPTOR LENGTH {} with DBD=1",
        out.data[3]
    );
    pass()
}

async fn mode_unsupported(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x1a, 0, 0x3e, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn mode_saved(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(&ctx, &[0x1a, 0, 0xc0 | 0x3f, 0, 255, 0], 255)
        .await?;
    lu.close(&ctx).await;
    if out.is_good() || out.is_check(SenseKey::IllegalRequest, 0x39, 0x00) {
        pass()
    } else {
        fail(format!("saved values: {}", out.describe()))
    }
}

async fn capacity_agree(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let ten = lu.read(&ctx, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8).await?;
    let sixteen = lu
        .read(
            &ctx,
            &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            32,
        )
        .await?;
    lu.close(&ctx).await;
    let (Ok(a), Ok(b)) = (
        ReadCapacity10::parse(&ten.data),
        ReadCapacity16::parse(&sixteen.data),
    ) else {
        return fail(format!(
            "READ CAPACITY (10): {}, (16): {}",
            ten.describe(),
            sixteen.describe()
        ));
    };
    ensure!(
        a.block_length == b.block_length,
        "block length {} vs {}",
        a.block_length,
        b.block_length
    );
    let expect10 = if b.last_lba > u64::from(u32::MAX) {
        u32::MAX
    } else {
        b.last_lba as u32
    };
    ensure!(
        a.last_lba == expect10,
        "last LBA {} vs {}",
        a.last_lba,
        b.last_lba
    );
    pass()
}

async fn block_length(ctx: Arc<Ctx>) -> TestResult {
    let lu = lu(&ctx).await?;
    let bs = lu.block_size;
    lu.close(&ctx).await;
    ensure!(
        bs.is_power_of_two() && (512..=65536).contains(&bs),
        "block length {bs}"
    );
    pass()
}

async fn pmi_lba(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], 8).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn rc16_bad_sa(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .read(
            &ctx,
            &[0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            32,
        )
        .await?;
    lu.close(&ctx).await;
    if out.is_check(SenseKey::IllegalRequest, 0x24, 0x00)
        || out.is_check(SenseKey::IllegalRequest, 0x20, 0x00)
    {
        pass()
    } else {
        fail(format!(
            "expected ILLEGAL REQUEST 24h/00h or 20h/00h, got {}",
            out.describe()
        ))
    }
}

async fn reserved_opcode(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.none(&ctx, &[0x02, 0, 0, 0, 0, 0]).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x20, 0x00)
}

async fn vendor_opcode(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu
        .none(&ctx, &[0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x20, 0x00)
}

async fn naca_case(ctx: Arc<Ctx>, cdb: &'static [u8], len: u32) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let inq = lu.inquiry(&ctx).await?;
    if inq.norm_aca {
        lu.close(&ctx).await;
        return skip("the LU sets NormACA: NACA=1 is allowed");
    }
    let out = if len == 0 {
        lu.none(&ctx, cdb).await?
    } else {
        lu.read(&ctx, cdb, len.min(lu.block_size.max(len.min(255))))
            .await?
    };
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn bad_lun_case(ctx: Arc<Ctx>, cdb: &'static [u8], len: u32) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let Some(free) = misc_free_lun(&ctx, &mut lu).await? else {
        lu.close(&ctx).await;
        return skip("no unused LUN in 200..400");
    };
    let req = if len == 0 {
        ScsiRequest::none(free, Bytes::from_static(cdb))
    } else {
        ScsiRequest::read(
            free,
            Bytes::from_static(cdb),
            len.min(lu.block_size.max(255)),
        )
    };
    let out = lu.probe.execute(req).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x25, 0x00)
}

async fn bad_lun_report_luns(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let Some(free) = misc_free_lun(&ctx, &mut lu).await? else {
        lu.close(&ctx).await;
        return skip("no unused LUN in 200..400");
    };
    let req = ScsiRequest::read(
        free,
        Bytes::from_static(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]),
        4096,
    );
    let out = lu.probe.execute(req).await?;
    lu.close(&ctx).await;
    expect_good(&out, "REPORT LUNS to an unused LUN")
}

async fn verify_bytchk(ctx: Arc<Ctx>, sixteen: bool, differ: bool) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let bs = lu.block_size;
    // A block no other test writes: tests may run side by side.
    let read = lu
        .read(
            &ctx,
            &[0x88, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 1, 0, 0],
            bs,
        )
        .await?;
    if !read.is_good() || read.data.len() != bs as usize {
        lu.close(&ctx).await;
        return fail(format!("READ (16) of LBA 0: {}", read.describe()));
    }
    let mut data = read.data.to_vec();
    if differ {
        data[0] ^= 0xff;
    }
    let cdb: Vec<u8> = if sixteen {
        vec![0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 1, 0, 0]
    } else {
        vec![0x2f, 0x02, 0, 0, 0x08, 0, 0, 0, 1, 0]
    };
    let out = lu.write(&ctx, &cdb, Bytes::from(data)).await?;
    lu.close(&ctx).await;
    if crate::suite::scsi::unsupported(&out) {
        return crate::suite::scsi::not_supported(if sixteen {
            "VERIFY (16)"
        } else {
            "VERIFY (10)"
        });
    }
    if out.is_check(SenseKey::IllegalRequest, 0x24, 0x00) {
        return skip("BYTCHK=01b is not supported (INVALID FIELD IN CDB)");
    }
    if differ {
        expect_sense(&out, SenseKey::Miscompare, 0x1d, 0x00)
    } else {
        expect_good(&out, "VERIFY with the medium's own data")
    }
}
