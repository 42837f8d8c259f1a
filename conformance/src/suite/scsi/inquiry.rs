//! INQUIRY and its VPD pages (SPC-4 §6.6, §7.8).

use std::sync::Arc;

use iscsi_proto::scsi::vpd::{
    Association, DeviceIdentification, SupportedVpdPages, UnitSerialNumber,
};
use iscsi_proto::scsi::{DeviceType, PeripheralQualifier, SenseKey};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::registry::TestCase;
use crate::suite::scsi::{expect_sense, lu};

/// The INQUIRY tests.
pub fn tests() -> Vec<TestCase> {
    let mut out = vec![
        TestCase::new(
            "scsi.inquiry.standard",
            "SPC-4 §6.6.2",
            "standard INQUIRY: qualifier 000b, a disk, RESPONSE DATA FORMAT 2, ADDITIONAL LENGTH >= 31",
            standard,
        ),
        TestCase::new(
            "scsi.inquiry.version",
            "SPC-4 §6.6.2",
            "VERSION claims SPC-2 or later (04h..07h)",
            version,
        ),
        TestCase::new(
            "scsi.inquiry.ascii_fields",
            "SPC-4 §4.3.1, §6.6.2",
            "T10 VENDOR IDENTIFICATION, PRODUCT IDENTIFICATION and REVISION are printable ASCII",
            ascii_fields,
        ),
        TestCase::new(
            "scsi.inquiry.page_code_without_evpd",
            "SPC-4 §6.6.1",
            "EVPD=0 with a non-zero PAGE CODE: ILLEGAL REQUEST 24h/00h",
            page_code_without_evpd,
        ),
        TestCase::new(
            "scsi.inquiry.unsupported_vpd",
            "SPC-4 §6.6.1",
            "a VPD page the LU does not list: ILLEGAL REQUEST 24h/00h",
            unsupported_vpd,
        ),
        TestCase::new(
            "scsi.inquiry.vpd_supported_pages",
            "SPC-4 §7.8.13",
            "VPD 00h lists itself and 83h, in ascending order",
            vpd_supported,
        ),
        TestCase::new(
            "scsi.inquiry.vpd_listed_pages_answer",
            "SPC-4 §7.8.1",
            "every page VPD 00h lists is returned with its own page code",
            vpd_listed_answer,
        ),
        TestCase::new(
            "scsi.inquiry.vpd_device_identification",
            "SPC-4 §7.8.6",
            "VPD 83h parses and has a designator associated with the LU",
            vpd_device_id,
        ),
        TestCase::new(
            "scsi.inquiry.vpd_serial",
            "SPC-4 §7.8.15",
            "VPD 80h, when listed, holds a printable ASCII serial",
            vpd_serial,
        ),
        TestCase::new(
            "scsi.inquiry.unknown_lun",
            "SPC-4 §6.6.2",
            "INQUIRY to a LUN that does not exist: qualifier 011b and type 1Fh",
            unknown_lun,
        ),
    ];
    for (page, name, section) in [
        (0xb0u8, "block_limits", "SBC-3 §6.5.3"),
        (0xb1, "block_device_characteristics", "SBC-3 §6.5.2"),
        (0xb2, "logical_block_provisioning", "SBC-3 §6.5.4"),
    ] {
        out.push(TestCase::new(
            format!("scsi.inquiry.vpd_{name}"),
            section,
            format!("VPD {page:02X}h, when listed, parses with its page length"),
            move |ctx| vpd_page(ctx, page),
        ));
    }
    out
}

async fn standard(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let inq = lu.inquiry(&ctx).await?;
    lu.close(&ctx).await;
    ensure!(
        inq.peripheral_qualifier == PeripheralQualifier::Connected,
        "qualifier {:?}",
        inq.peripheral_qualifier
    );
    ensure!(
        inq.device_type == DeviceType::DirectAccess,
        "device type {:?}",
        inq.device_type
    );
    ensure!(
        inq.response_data_format == 2,
        "RESPONSE DATA FORMAT {}",
        inq.response_data_format
    );
    ensure!(
        inq.additional_length >= 31,
        "ADDITIONAL LENGTH {}",
        inq.additional_length
    );
    pass()
}

async fn version(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let inq = lu.inquiry(&ctx).await?;
    lu.close(&ctx).await;
    ensure!(
        (0x04..=0x07).contains(&inq.version),
        "VERSION {:02X}h",
        inq.version
    );
    pass()
}

async fn ascii_fields(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x12, 0, 0, 0, 36, 0], 36).await?;
    lu.close(&ctx).await;
    ensure!(
        out.data.len() >= 36,
        "{} bytes of standard INQUIRY data",
        out.data.len()
    );
    let fields = &out.data[8..36];
    ensure!(
        fields.iter().all(|b| (0x20..=0x7e).contains(b)),
        "bytes 8..35 hold non-printable values: {:02x?}",
        fields
    );
    pass()
}

async fn page_code_without_evpd(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x12, 0, 0x80, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn supported(
    ctx: &Ctx,
    lu: &mut crate::suite::scsi::Lu,
) -> Result<Option<SupportedVpdPages>, crate::ProbeError> {
    let out = lu.read(ctx, &[0x12, 1, 0, 0, 255, 0], 255).await?;
    Ok(if out.is_good() {
        SupportedVpdPages::parse(&out.data).ok()
    } else {
        None
    })
}

async fn unsupported_vpd(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let list = supported(&ctx, &mut lu).await?;
    let page = (0xc0u8..=0xfe)
        .rev()
        .find(|p| !list.as_ref().is_some_and(|l| l.supports(*p)))
        .unwrap_or(0xfe);
    let out = lu.read(&ctx, &[0x12, 1, page, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00)
}

async fn vpd_supported(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let list = supported(&ctx, &mut lu).await?;
    lu.close(&ctx).await;
    let Some(list) = list else {
        return fail("VPD 00h is not returned");
    };
    ensure!(
        list.supports(0x00),
        "VPD 00h does not list itself: {:02x?}",
        list.pages
    );
    ensure!(
        list.supports(0x83),
        "VPD 00h does not list 83h (mandatory): {:02x?}",
        list.pages
    );
    ensure!(
        list.pages.windows(2).all(|w| w[0] < w[1]),
        "not in ascending order: {:02x?}",
        list.pages
    );
    pass()
}

async fn vpd_listed_answer(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let Some(list) = supported(&ctx, &mut lu).await? else {
        lu.close(&ctx).await;
        return fail("VPD 00h is not returned");
    };
    for page in list.pages.clone() {
        let out = lu.read(&ctx, &[0x12, 1, page, 0x10, 0, 0], 4096).await?;
        if !out.is_good() || out.data.len() < 4 || out.data[1] != page {
            lu.close(&ctx).await;
            return fail(format!(
                "listed page {page:02X}h: {} with {} bytes",
                out.describe(),
                out.data.len()
            ));
        }
    }
    lu.close(&ctx).await;
    pass()
}

async fn vpd_device_id(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let out = lu.read(&ctx, &[0x12, 1, 0x83, 0x10, 0, 0], 4096).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "VPD 83h: {}", out.describe());
    let page = match DeviceIdentification::parse(&out.data) {
        Ok(p) => p,
        Err(e) => return fail(format!("VPD 83h does not parse: {e}")),
    };
    ensure!(
        page.descriptors
            .iter()
            .any(|d| d.association == Association::LogicalUnit),
        "no designator with ASSOCIATION 00b (the LU)"
    );
    pass()
}

async fn vpd_serial(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let listed = supported(&ctx, &mut lu)
        .await?
        .is_some_and(|l| l.supports(0x80));
    if !listed {
        lu.close(&ctx).await;
        return skip("VPD 80h is not listed");
    }
    let out = lu.read(&ctx, &[0x12, 1, 0x80, 0, 255, 0], 255).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "VPD 80h: {}", out.describe());
    match UnitSerialNumber::parse(&out.data) {
        Ok(s) => {
            ensure!(
                s.serial.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "the serial has non-printable bytes"
            );
            pass()
        }
        Err(e) => fail(format!("VPD 80h does not parse: {e}")),
    }
}

async fn vpd_page(ctx: Arc<Ctx>, page: u8) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let listed = supported(&ctx, &mut lu)
        .await?
        .is_some_and(|l| l.supports(page));
    if !listed {
        lu.close(&ctx).await;
        return skip(format!("VPD {page:02X}h is not listed"));
    }
    let out = lu.read(&ctx, &[0x12, 1, page, 0x10, 0, 0], 4096).await?;
    lu.close(&ctx).await;
    ensure!(out.is_good(), "VPD {page:02X}h: {}", out.describe());
    ensure!(
        out.data.len() >= 4 && out.data[1] == page,
        "VPD {page:02X}h came back as {} bytes with page code {:02X}h",
        out.data.len(),
        out.data.get(1).copied().unwrap_or(0)
    );
    let declared = usize::from(u16::from_be_bytes([out.data[2], out.data[3]])) + 4;
    ensure!(
        declared == out.data.len(),
        "PAGE LENGTH says {declared} bytes, {} came",
        out.data.len()
    );
    let parsed = match page {
        0xb0 => iscsi_proto::scsi::vpd::BlockLimits::parse(&out.data)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        0xb2 => iscsi_proto::scsi::vpd::LogicalBlockProvisioning::parse(&out.data)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    };
    match parsed {
        Ok(()) => pass(),
        Err(e) => fail(format!("VPD {page:02X}h does not parse: {e}")),
    }
}

async fn unknown_lun(ctx: Arc<Ctx>) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let Some(free) = misc_free_lun(&ctx, &mut lu).await? else {
        lu.close(&ctx).await;
        return skip("no unused LUN in 200..400");
    };
    let out = lu
        .probe
        .execute(crate::probe::ScsiRequest::read(
            free,
            bytes::Bytes::from_static(&[0x12, 0, 0, 0, 36, 0]),
            36,
        ))
        .await?;
    lu.close(&ctx).await;
    ensure!(
        out.is_good(),
        "INQUIRY to an unused LUN: {} (INQUIRY must not fail for it)",
        out.describe()
    );
    let byte0 = out.data.first().copied().unwrap_or(0);
    ensure!(
        byte0 == 0x7f,
        "peripheral byte {byte0:02X}h, expected 7Fh (qualifier 011b, type 1Fh)"
    );
    pass()
}

/// A LUN REPORT LUNS does not list.
pub(crate) async fn misc_free_lun(
    ctx: &Ctx,
    lu: &mut crate::suite::scsi::Lu,
) -> Result<Option<iscsi_proto::pdu::Lun>, crate::ProbeError> {
    let out = lu
        .read(
            ctx,
            &iscsi_proto::scsi::Cdb::report_luns(iscsi_proto::scsi::SelectReport::All, 4096)
                .to_bytes(),
            4096,
        )
        .await?;
    let listed = iscsi_proto::scsi::ReportLuns::parse(&out.data)
        .map(|r| r.luns)
        .unwrap_or_default();
    Ok((200u16..400)
        .find(|n| !listed.iter().any(|l| l.number() == Some(*n)))
        .and_then(iscsi_proto::pdu::Lun::from_number))
}
