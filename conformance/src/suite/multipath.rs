//! The multipath family: the same LU through a second portal (SAM-5 §4.6
//! I_T nexus, SPC-4 §7.8.6 LU identity, §5.13 reservations, RFC 7143
//! §6.3.5, §7). Needs the second URL.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{Itt, TmfFunction, TmfResponse};
use iscsi_proto::scsi::vpd::{Association, DeviceIdentification};
use iscsi_proto::scsi::{Cdb, SenseKey};

use crate::context::{Ctx, pattern};
use crate::endpoint::Endpoint;
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass};
use crate::probe::scsi::RESERVATION_CONFLICT;
use crate::probe::{Probe, ScsiRequest, random_isid};
use crate::registry::TestCase;
use crate::suite::scsi::reservations::{clean, keys, open_as, pr_out};

/// Where the multipath writes go.
const LBA: u64 = 1024;

/// The multipath tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new("multipath.identity.device_identification", "SPC-4 §7.8.6", "the LU-associated designators of VPD 83h are the same through both portals", identity_vpd83).second_path(),
        TestCase::new("multipath.identity.serial", "SPC-4 §7.8.15", "VPD 80h (unit serial) is the same through both portals", identity_serial).second_path(),
        TestCase::new("multipath.identity.capacity", "SBC-3 §5.17", "READ CAPACITY (16) is the same through both portals", identity_capacity).second_path(),
        TestCase::new("multipath.identity.standard_inquiry", "SPC-4 §6.6.2", "vendor, product and revision are the same through both portals", identity_inquiry).second_path(),
        TestCase::new("multipath.identity.report_luns", "SPC-4 §6.33", "REPORT LUNS lists the same LUNs through both portals", identity_luns).second_path(),
        TestCase::new("multipath.identity.same_target_name", "RFC 7143 §13.4", "both URLs name the same target, and both logins reach it", same_target).second_path(),
        TestCase::new("multipath.data.write_a_read_b", "SAM-5 §4.6", "a write through the first portal reads back through the second", |c| write_read(c, false)).second_path().destructive(),
        TestCase::new("multipath.data.write_b_read_a", "SAM-5 §4.6", "a write through the second portal reads back through the first", |c| write_read(c, true)).second_path().destructive(),
        TestCase::new("multipath.data.interleaved", "SAM-5 §4.6", "writes alternating between the portals to neighbouring blocks all land", interleaved).second_path().destructive(),
        TestCase::new("multipath.pr.registration_visible", "SPC-4 §5.13.7", "a key registered through one portal is listed through the other", pr_visible).second_path().destructive().alone(),
        TestCase::new("multipath.pr.reservation_honoured", "SPC-4 §5.13.1", "Write Exclusive taken through one portal: an unregistered initiator's write through the other gets RESERVATION CONFLICT", pr_honoured).second_path().destructive().alone(),
        TestCase::new("multipath.pr.holder_on_other_port", "SPC-4 §5.13.1", "the same initiator's other I_T nexus is not the holder of a Write Exclusive reservation: its write conflicts unless registered", pr_other_nexus).second_path().destructive().alone(),
        TestCase::new("multipath.fault.drop_mid_write", "RFC 7143 §7.1, SAM-5 §4.6", "a connection dropped mid-write on one portal: the other portal's session keeps working and its data land", drop_mid_write).second_path().destructive(),
        TestCase::new("multipath.fault.reinstatement_isolated", "RFC 7143 §6.3.5", "session reinstatement on one portal leaves the other portal's session alone", reinstatement_isolated).second_path(),
        TestCase::new("multipath.fault.logout_isolated", "RFC 7143 §11.14", "logging out on one portal leaves the other portal's session alone", logout_isolated).second_path(),
        TestCase::new("multipath.fault.lu_reset_seen_on_other", "SAM-5 §6.2", "LOGICAL UNIT RESET through one portal: the other portal's nexus gets UNIT ATTENTION 29h/xxh", lu_reset_other).second_path().destructive().alone(),
    ]
}

fn second(ctx: &Ctx) -> Result<Endpoint, ProbeError> {
    ctx.secondary()
        .cloned()
        .ok_or_else(|| ProbeError::Precondition {
            portal: ctx.primary().portal_label(),
            what: "the multipath family".into(),
            reason: "no second URL".into(),
        })
}

async fn both(ctx: &Ctx) -> Result<(Probe, Probe), ProbeError> {
    let b = second(ctx)?;
    let a = ctx.open(&ctx.primary().clone()).await?;
    let b = ctx.open(&b).await?;
    Ok((a, b))
}

async fn read_both(
    ctx: &Ctx,
    cdb: Bytes,
    len: u32,
) -> Result<(crate::probe::ScsiOutcome, crate::probe::ScsiOutcome), ProbeError> {
    let (mut a, mut b) = both(ctx).await?;
    let la = ctx.lun(&a.endpoint);
    let lb = ctx.lun(&b.endpoint);
    let ra = a.execute(ScsiRequest::read(la, cdb.clone(), len)).await?;
    let rb = b.execute(ScsiRequest::read(lb, cdb, len)).await?;
    ctx.close(a).await;
    ctx.close(b).await;
    Ok((ra, rb))
}

async fn identity_vpd83(ctx: Arc<Ctx>) -> TestResult {
    let (a, b) = read_both(&ctx, Bytes::from_static(&[0x12, 1, 0x83, 0x10, 0, 0]), 4096).await?;
    let lu_ids = |data: &[u8]| -> Result<Vec<Vec<u8>>, String> {
        let page = DeviceIdentification::parse(data).map_err(|e| e.to_string())?;
        let mut ids: Vec<Vec<u8>> = page
            .descriptors
            .iter()
            .filter(|d| d.association == Association::LogicalUnit)
            .map(|d| format!("{:?}", d.designator).into_bytes())
            .collect();
        ids.sort();
        Ok(ids)
    };
    let (ia, ib) = match (lu_ids(&a.data), lu_ids(&b.data)) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => {
            return fail(format!(
                "VPD 83h does not parse: {:?} / {:?}",
                x.err(),
                y.err()
            ));
        }
    };
    ensure!(!ia.is_empty(), "no LU designator through the first portal");
    ensure!(ia == ib, "the LU designators differ between the portals");
    pass()
}

async fn identity_serial(ctx: Arc<Ctx>) -> TestResult {
    let (a, b) = read_both(&ctx, Bytes::from_static(&[0x12, 1, 0x80, 0, 255, 0]), 255).await?;
    if !a.is_good() && !b.is_good() {
        return crate::outcome::skip("VPD 80h is not offered");
    }
    ensure!(
        a.is_good() && b.is_good(),
        "VPD 80h: {} / {}",
        a.describe(),
        b.describe()
    );
    ensure!(a.data == b.data, "VPD 80h differs between the portals");
    pass()
}

async fn identity_capacity(ctx: Arc<Ctx>) -> TestResult {
    let (a, b) = read_both(&ctx, Cdb::read_capacity16(32).to_bytes(), 32).await?;
    ensure!(
        a.is_good() && b.is_good(),
        "READ CAPACITY (16): {} / {}",
        a.describe(),
        b.describe()
    );
    ensure!(
        a.data.get(..12) == b.data.get(..12),
        "capacity or block length differs between the portals"
    );
    pass()
}

async fn identity_inquiry(ctx: Arc<Ctx>) -> TestResult {
    let (a, b) = read_both(&ctx, Bytes::from_static(&[0x12, 0, 0, 0, 36, 0]), 36).await?;
    ensure!(
        a.is_good() && b.is_good(),
        "INQUIRY: {} / {}",
        a.describe(),
        b.describe()
    );
    ensure!(
        a.data.get(8..36) == b.data.get(8..36),
        "vendor, product or revision differs"
    );
    pass()
}

async fn identity_luns(ctx: Arc<Ctx>) -> TestResult {
    let (a, b) = read_both(
        &ctx,
        Cdb::report_luns(iscsi_proto::scsi::SelectReport::All, 4096).to_bytes(),
        4096,
    )
    .await?;
    ensure!(
        a.is_good() && b.is_good(),
        "REPORT LUNS: {} / {}",
        a.describe(),
        b.describe()
    );
    ensure!(a.data == b.data, "the LUN lists differ");
    pass()
}

async fn same_target(ctx: Arc<Ctx>) -> TestResult {
    let b = second(&ctx)?;
    ensure!(
        b.target == ctx.primary().target,
        "the URLs name {} and {}",
        ctx.primary().target,
        b.target
    );
    ensure!(
        b.portal != ctx.primary().portal,
        "both URLs name portal {}",
        b.portal
    );
    let (a, b) = both(&ctx).await?;
    ctx.close(a).await;
    ctx.close(b).await;
    pass()
}

async fn write_read(ctx: Arc<Ctx>, reverse: bool) -> TestResult {
    let (a, b) = both(&ctx).await?;
    let (mut w, mut r) = if reverse { (b, a) } else { (a, b) };
    let (_, bs) = ctx.capacity(&mut w).await?;
    let data = pattern(8 * bs as usize);
    let lw = ctx.lun(&w.endpoint);
    let lr = ctx.lun(&r.endpoint);
    let lba = LBA + if reverse { 8 } else { 0 };
    let wo = w
        .execute(ScsiRequest::write(
            lw,
            Cdb::write16(lba, 8, false).to_bytes(),
            data.clone(),
        ))
        .await?;
    let ro = r
        .execute(ScsiRequest::read(
            lr,
            Cdb::read16(lba, 8, false).to_bytes(),
            8 * bs,
        ))
        .await?;
    ctx.close(w).await;
    ctx.close(r).await;
    ensure!(wo.is_good(), "WRITE: {}", wo.describe());
    ensure!(ro.is_good(), "READ: {}", ro.describe());
    ensure!(ro.data == data, "the other portal reads different data");
    pass()
}

async fn interleaved(ctx: Arc<Ctx>) -> TestResult {
    let (mut a, mut b) = both(&ctx).await?;
    let (_, bs) = ctx.capacity(&mut a).await?;
    let la = ctx.lun(&a.endpoint);
    let lb = ctx.lun(&b.endpoint);
    let mut written = Vec::new();
    for i in 0..8u64 {
        let data = pattern(bs as usize);
        let p = if i % 2 == 0 { &mut a } else { &mut b };
        let l = if i % 2 == 0 { la } else { lb };
        let out = p
            .execute(ScsiRequest::write(
                l,
                Cdb::write16(LBA + 16 + i, 1, false).to_bytes(),
                data.clone(),
            ))
            .await?;
        ensure!(out.is_good(), "write {i}: {}", out.describe());
        written.extend_from_slice(&data);
    }
    let back = a
        .execute(ScsiRequest::read(
            la,
            Cdb::read16(LBA + 16, 8, false).to_bytes(),
            8 * bs,
        ))
        .await?;
    ctx.close(a).await;
    ctx.close(b).await;
    ensure!(
        back.is_good() && back.data == written,
        "the interleaved writes do not read back ({})",
        back.describe()
    );
    pass()
}

const KEY: u64 = 0x4d50_4154_4800_0001;

async fn pr_visible(ctx: Arc<Ctx>) -> TestResult {
    let b_ep = second(&ctx)?;
    clean(&ctx, &ctx.primary().clone()).await;
    let mut a = open_as(&ctx, &ctx.primary().clone(), ctx.initiator()).await?;
    let mut b = open_as(&ctx, &b_ep, &ctx.other_initiator()).await?;
    let reg = pr_out(&ctx, &mut a, 0x00, 0, 0, KEY).await?;
    let seen = keys(&ctx, &mut b).await?;
    ctx.close(a).await;
    ctx.close(b).await;
    clean(&ctx, &ctx.primary().clone()).await;
    if crate::suite::scsi::unsupported(&reg) {
        return crate::suite::scsi::not_supported("PERSISTENT RESERVE");
    }
    ensure!(reg.is_good(), "REGISTER: {}", reg.describe());
    ensure!(
        seen.as_ref().is_some_and(|(_, l)| l.contains(&KEY)),
        "READ KEYS through the other portal: {seen:x?}"
    );
    pass()
}

async fn reserved_write(
    ctx: &Ctx,
    writer_name: &str,
) -> Result<Result<crate::probe::ScsiOutcome, String>, ProbeError> {
    let b_ep = second(ctx)?;
    clean(ctx, &ctx.primary().clone()).await;
    let mut a = open_as(ctx, &ctx.primary().clone(), ctx.initiator()).await?;
    let (_, bs) = ctx.capacity(&mut a).await?;
    let reg = pr_out(ctx, &mut a, 0x00, 0, 0, KEY).await?;
    let res = pr_out(ctx, &mut a, 0x01, 0x01, KEY, 0).await?;
    let mut b = open_as(ctx, &b_ep, writer_name).await?;
    let lb = ctx.lun(&b_ep);
    let out = b
        .execute(ScsiRequest::write(
            lb,
            Cdb::write16(LBA + 32, 1, false).to_bytes(),
            pattern(bs as usize),
        ))
        .await?;
    ctx.close(a).await;
    ctx.close(b).await;
    clean(ctx, &ctx.primary().clone()).await;
    if !reg.is_good() || !res.is_good() {
        return Ok(Err(format!(
            "REGISTER: {}, RESERVE: {}",
            reg.describe(),
            res.describe()
        )));
    }
    Ok(Ok(out))
}

async fn pr_honoured(ctx: Arc<Ctx>) -> TestResult {
    let other = ctx.other_initiator();
    match reserved_write(&ctx, &other).await? {
        Ok(out) => {
            ensure!(
                out.status == RESERVATION_CONFLICT,
                "the other initiator's write through the second portal: {}",
                out.describe()
            );
            pass()
        }
        Err(why) => fail(why),
    }
}

async fn pr_other_nexus(ctx: Arc<Ctx>) -> TestResult {
    let me = ctx.initiator().to_owned();
    match reserved_write(&ctx, &me).await? {
        Ok(out) => {
            // The reservation belongs to the I_T nexus that registered; the same
            // initiator through another target port is another nexus (SPC-4 §5.13.1).
            ensure!(
                out.status == RESERVATION_CONFLICT,
                "a write from the same initiator's unregistered nexus: {}",
                out.describe()
            );
            pass()
        }
        Err(why) => fail(why),
    }
}

async fn drop_mid_write(ctx: Arc<Ctx>) -> TestResult {
    let (mut a, mut b) = both(&ctx).await?;
    let (_, bs) = ctx.capacity(&mut a).await?;
    let la = ctx.lun(&a.endpoint);
    let lb = ctx.lun(&b.endpoint);
    // A write whose data the target must ask for, then the cable is cut.
    let mut req = ScsiRequest::write(
        la,
        Cdb::write16(LBA + 48, 64, false).to_bytes(),
        pattern(64 * bs as usize),
    );
    req.no_immediate_data = true;
    let _pending = a.submit(req).await?;
    let _ = a.quiet(ctx.quiet() / 2).await;
    a.drop_connection();
    let data = pattern(4 * bs as usize);
    let w = b
        .execute(ScsiRequest::write(
            lb,
            Cdb::write16(LBA + 128, 4, false).to_bytes(),
            data.clone(),
        ))
        .await?;
    let r = b
        .execute(ScsiRequest::read(
            lb,
            Cdb::read16(LBA + 128, 4, false).to_bytes(),
            4 * bs,
        ))
        .await?;
    ctx.close(b).await;
    // The first portal takes a new session.
    let again = ctx.open(&ctx.primary().clone()).await;
    ensure!(
        w.is_good() && r.is_good(),
        "the other portal: {} / {}",
        w.describe(),
        r.describe()
    );
    ensure!(r.data == data, "the other portal's data did not land");
    match again {
        Ok(p) => {
            ctx.close(p).await;
            pass()
        }
        Err(e) => fail(format!("the dropped portal takes no new session: {e}")),
    }
}

async fn reinstatement_isolated(ctx: Arc<Ctx>) -> TestResult {
    let b_ep = second(&ctx)?;
    let mut b = ctx.open(&b_ep).await?;
    let mut spec = ctx.spec(&ctx.primary().clone());
    spec.isid = Some(random_isid());
    let (first, _) = ctx.open_with(&ctx.primary().clone(), &spec).await?;
    let (second_login, _) = ctx.open_with(&ctx.primary().clone(), &spec).await?;
    drop(first);
    let ping = b.ping(true, Bytes::from_static(b"b")).await;
    let out = b.execute(crate::suite::ff_tur(&ctx, &b)).await;
    ctx.close(second_login).await;
    ctx.close(b).await;
    ensure!(
        ping.is_ok(),
        "the other portal's session stopped answering pings: {}",
        ping.err().map(|e| e.to_string()).unwrap_or_default()
    );
    let out = out?;
    ensure!(
        out.is_good() || out.is_key(SenseKey::UnitAttention),
        "the other portal's command: {}",
        out.describe()
    );
    pass()
}

async fn logout_isolated(ctx: Arc<Ctx>) -> TestResult {
    let (mut a, mut b) = both(&ctx).await?;
    let resp = a.logout_session().await?;
    let ping = b.ping(true, Bytes::new()).await;
    ctx.close(b).await;
    ensure!(
        resp.response == iscsi_proto::pdu::LogoutResponseCode::Success,
        "logout: {:?}",
        resp.response
    );
    ensure!(ping.is_ok(), "the other portal's session stopped answering");
    pass()
}

async fn lu_reset_other(ctx: Arc<Ctx>) -> TestResult {
    let (mut a, mut b) = both(&ctx).await?;
    let la = ctx.lun(&a.endpoint);
    let req = a.tmf_request(TmfFunction::LogicalUnitReset, la, Itt::RESERVED, a.cmd_sn);
    let resp = a.tmf(req).await?;
    ctx.close(a).await;
    ensure!(
        resp.response == TmfResponse::FunctionComplete,
        "LOGICAL UNIT RESET: {:?}",
        resp.response
    );
    let out = b.execute(crate::suite::ff_tur(&ctx, &b)).await?;
    ctx.close(b).await;
    match out.sense_code() {
        Some((SenseKey::UnitAttention, 0x29, _)) => pass(),
        _ => fail(format!(
            "the other portal's next command: {}, expected UNIT ATTENTION 29h/xxh",
            out.describe()
        )),
    }
}
