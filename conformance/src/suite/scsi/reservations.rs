//! Reservations: PERSISTENT RESERVE IN/OUT (SPC-4 §5.13, §6.15, §6.16)
//! between two I_T nexuses (two initiator names), and SPC-2 RESERVE (6) /
//! RELEASE (6). Every test that changes a reservation clears them before
//! and after.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::scsi::Cdb;

use crate::context::{Ctx, pattern};
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::scsi::RESERVATION_CONFLICT;
use crate::probe::{Probe, ScsiOutcome, ScsiRequest};
use crate::registry::TestCase;
use crate::suite::scsi::{not_supported, unsupported};

const KEY_A: u64 = 0x5249_5343_5349_0a0a;
const KEY_B: u64 = 0x5249_5343_5349_0b0b;
const KEY_CLEANUP: u64 = 0x5249_5343_5349_0c0c;

/// PERSISTENT RESERVE OUT service actions.
const REGISTER: u8 = 0x00;
const RESERVE: u8 = 0x01;
const RELEASE: u8 = 0x02;
const CLEAR: u8 = 0x03;
const PREEMPT: u8 = 0x04;
const REGISTER_AND_IGNORE: u8 = 0x06;

/// Reservation types.
const WRITE_EXCLUSIVE: u8 = 0x01;
const EXCLUSIVE_ACCESS: u8 = 0x03;

/// Where the tests write.
const LBA: u64 = 64;

/// The reservation tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "scsi.pr.read_keys",
            "SPC-4 §6.15.2",
            "PERSISTENT RESERVE IN READ KEYS: GOOD, a whole number of 8-byte keys",
            read_keys,
        ),
        TestCase::new(
            "scsi.pr.read_reservation",
            "SPC-4 §6.15.3",
            "PERSISTENT RESERVE IN READ RESERVATION: GOOD, ADDITIONAL LENGTH 0 or 16",
            read_reservation,
        ),
        TestCase::new(
            "scsi.pr.report_capabilities",
            "SPC-4 §6.15.4",
            "PERSISTENT RESERVE IN REPORT CAPABILITIES: GOOD with LENGTH 8",
            report_capabilities,
        ),
        TestCase::new(
            "scsi.pr.register",
            "SPC-4 §5.13.7",
            "REGISTER: GOOD, READ KEYS lists the key and PRGENERATION grows",
            register,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.reserve_shows_holder",
            "SPC-4 §6.15.3",
            "after RESERVE, READ RESERVATION shows the holder's key and type",
            reserve_shows,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.write_exclusive_blocks_writes",
            "SPC-4 §5.13.1",
            "Write Exclusive held by A: a WRITE from unregistered B gets RESERVATION CONFLICT",
            we_blocks_writes,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.write_exclusive_allows_reads",
            "SPC-4 §5.13.1",
            "Write Exclusive held by A: a READ from unregistered B is GOOD",
            we_allows_reads,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.exclusive_access_blocks_reads",
            "SPC-4 §5.13.1",
            "Exclusive Access held by A: a READ from unregistered B gets RESERVATION CONFLICT",
            ea_blocks_reads,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.holder_writes",
            "SPC-4 §5.13.1",
            "the holder of Write Exclusive writes GOOD",
            holder_writes,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.release_frees",
            "SPC-4 §5.13.11",
            "after RELEASE, B writes GOOD",
            release_frees,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.wrong_key_conflict",
            "SPC-4 §5.13.5",
            "RESERVE with a key other than the registered one: RESERVATION CONFLICT",
            wrong_key,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.unregistered_reserve_conflict",
            "SPC-4 §5.13.5",
            "RESERVE from a nexus that is not registered: RESERVATION CONFLICT",
            unregistered_reserve,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.clear",
            "SPC-4 §5.13.10",
            "CLEAR removes every registration and the reservation",
            clear,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.pr.preempt",
            "SPC-4 §5.13.12",
            "B PREEMPTs A: the reservation moves to B and A's key is gone",
            preempt,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.reserve6.conflict",
            "SPC-2 §7.21",
            "RESERVE (6) by A: a READ from B gets RESERVATION CONFLICT",
            reserve6_conflict,
        )
        .destructive()
        .alone(),
        TestCase::new(
            "scsi.reserve6.release_frees",
            "SPC-2 §7.20",
            "RELEASE (6) by A: B reads GOOD again",
            reserve6_release,
        )
        .destructive()
        .alone(),
    ]
}

fn pr_out_cdb(sa: u8, kind: u8) -> Vec<u8> {
    vec![0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0]
}

fn pr_out_params(key: u64, sa_key: u64) -> Bytes {
    let mut p = vec![0u8; 24];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    Bytes::from(p)
}

/// A session as initiator `name`, unit attentions cleared.
pub(crate) async fn open_as(
    ctx: &Ctx,
    ep: &crate::Endpoint,
    name: &str,
) -> Result<Probe, ProbeError> {
    let mut spec = ctx.spec(ep);
    spec.initiator_name = Some(name.to_owned());
    let (mut probe, _) = ctx.open_with(ep, &spec).await?;
    ctx.settle(&mut probe).await?;
    Ok(probe)
}

pub(crate) async fn pr_out(
    ctx: &Ctx,
    probe: &mut Probe,
    sa: u8,
    kind: u8,
    key: u64,
    sa_key: u64,
) -> Result<ScsiOutcome, ProbeError> {
    let lun = ctx.lun(&probe.endpoint);
    probe
        .execute(ScsiRequest::write(
            lun,
            Bytes::from(pr_out_cdb(sa, kind)),
            pr_out_params(key, sa_key),
        ))
        .await
}

pub(crate) async fn pr_in(ctx: &Ctx, probe: &mut Probe, sa: u8) -> Result<ScsiOutcome, ProbeError> {
    let lun = ctx.lun(&probe.endpoint);
    probe
        .execute(ScsiRequest::read(
            lun,
            Bytes::from(vec![0x5e, sa, 0, 0, 0, 0, 0, 0x04, 0, 0]),
            1024,
        ))
        .await
}

/// The keys READ KEYS lists, with PRGENERATION.
pub(crate) async fn keys(
    ctx: &Ctx,
    probe: &mut Probe,
) -> Result<Option<(u32, Vec<u64>)>, ProbeError> {
    let out = pr_in(ctx, probe, 0).await?;
    if !out.is_good() || out.data.len() < 8 {
        return Ok(None);
    }
    let generation = u32::from_be_bytes([out.data[0], out.data[1], out.data[2], out.data[3]]);
    let len = u32::from_be_bytes([out.data[4], out.data[5], out.data[6], out.data[7]]) as usize;
    let list = out.data[8..]
        .chunks_exact(8)
        .take(len / 8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Ok(Some((generation, list)))
}

/// Removes every registration and reservation (best effort).
pub(crate) async fn clean(ctx: &Ctx, ep: &crate::Endpoint) {
    if let Ok(mut p) = open_as(ctx, ep, ctx.initiator()).await {
        let _ = pr_out(ctx, &mut p, REGISTER_AND_IGNORE, 0, 0, KEY_CLEANUP).await;
        let _ = pr_out(ctx, &mut p, CLEAR, 0, KEY_CLEANUP, 0).await;
        let lun = ctx.lun(ep);
        let _ = p
            .execute(ScsiRequest::none(
                lun,
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 0]),
            ))
            .await;
        ctx.close(p).await;
    }
}

/// A and B sessions, nothing reserved; `None` when PR is not supported.
struct Pair {
    a: Probe,
    b: Probe,
    block_size: u32,
}

async fn pair(ctx: &Ctx) -> Result<Option<Pair>, ProbeError> {
    let ep = ctx.primary().clone();
    clean(ctx, &ep).await;
    let mut a = open_as(ctx, &ep, ctx.initiator()).await?;
    let probe = pr_in(ctx, &mut a, 0).await?;
    if unsupported(&probe) {
        ctx.close(a).await;
        return Ok(None);
    }
    let (_, block_size) = ctx.capacity(&mut a).await?;
    let b = open_as(ctx, &ep, &ctx.other_initiator()).await?;
    Ok(Some(Pair { a, b, block_size }))
}

impl Pair {
    /// Closes both sessions and removes what they registered and reserved:
    /// persistent reservations outlive the sessions, and the next test to
    /// run (in a `--shard`, any test) must find the LU unreserved.
    async fn finish(self, ctx: &Ctx) {
        let ep = self.a.endpoint.clone();
        ctx.close(self.a).await;
        ctx.close(self.b).await;
        clean(ctx, &ep).await;
    }
}

const NO_PR: &str = "PERSISTENT RESERVE";

async fn block_io(
    ctx: &Ctx,
    probe: &mut Probe,
    bs: u32,
    write: bool,
) -> Result<ScsiOutcome, ProbeError> {
    let lun = ctx.lun(&probe.endpoint);
    if write {
        probe
            .execute(ScsiRequest::write(
                lun,
                Cdb::write16(LBA, 1, false).to_bytes(),
                pattern(bs as usize),
            ))
            .await
    } else {
        probe
            .execute(ScsiRequest::read(
                lun,
                Cdb::read16(LBA, 1, false).to_bytes(),
                bs,
            ))
            .await
    }
}

fn conflict(out: &ScsiOutcome) -> bool {
    out.status == RESERVATION_CONFLICT
}

async fn read_keys(ctx: Arc<Ctx>) -> TestResult {
    let mut p = ctx.open(&ctx.primary().clone()).await?;
    let out = pr_in(&ctx, &mut p, 0).await?;
    ctx.close(p).await;
    if unsupported(&out) {
        return not_supported(NO_PR);
    }
    ensure!(out.is_good(), "READ KEYS: {}", out.describe());
    ensure!(out.data.len() >= 8, "{} bytes", out.data.len());
    let len = u32::from_be_bytes([out.data[4], out.data[5], out.data[6], out.data[7]]);
    ensure!(len % 8 == 0, "ADDITIONAL LENGTH {len}");
    pass()
}

async fn read_reservation(ctx: Arc<Ctx>) -> TestResult {
    let mut p = ctx.open(&ctx.primary().clone()).await?;
    let out = pr_in(&ctx, &mut p, 1).await?;
    ctx.close(p).await;
    if unsupported(&out) {
        return not_supported(NO_PR);
    }
    ensure!(out.is_good(), "READ RESERVATION: {}", out.describe());
    ensure!(out.data.len() >= 8, "{} bytes", out.data.len());
    let len = u32::from_be_bytes([out.data[4], out.data[5], out.data[6], out.data[7]]);
    ensure!(len == 0 || len == 16, "ADDITIONAL LENGTH {len}");
    pass()
}

async fn report_capabilities(ctx: Arc<Ctx>) -> TestResult {
    let mut p = ctx.open(&ctx.primary().clone()).await?;
    let out = pr_in(&ctx, &mut p, 2).await?;
    ctx.close(p).await;
    if unsupported(&out) {
        return not_supported(NO_PR);
    }
    if out.is_check(iscsi_proto::scsi::SenseKey::IllegalRequest, 0x24, 0x00) {
        return skip("REPORT CAPABILITIES is not implemented (INVALID FIELD IN CDB)");
    }
    ensure!(out.is_good(), "REPORT CAPABILITIES: {}", out.describe());
    ensure!(
        out.data.len() >= 2 && u16::from_be_bytes([out.data[0], out.data[1]]) == 8,
        "LENGTH field {:02x?}",
        &out.data[..out.data.len().min(2)]
    );
    pass()
}

async fn register(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    let before = keys(&ctx, &mut p.a).await?;
    let out = pr_out(&ctx, &mut p.a, REGISTER, 0, 0, KEY_A).await?;
    let after = keys(&ctx, &mut p.a).await?;
    p.finish(&ctx).await;
    ensure!(out.is_good(), "REGISTER: {}", out.describe());
    let (Some((g0, _)), Some((g1, list))) = (before, after) else {
        return fail("READ KEYS failed");
    };
    ensure!(
        list.contains(&KEY_A),
        "READ KEYS does not list the registered key: {list:x?}"
    );
    ensure!(g1 != g0, "PRGENERATION stayed {g0} across a REGISTER");
    pass()
}

/// A registers KEY_A and reserves `kind`.
async fn a_reserves(ctx: &Ctx, p: &mut Pair, kind: u8) -> Result<Result<(), String>, ProbeError> {
    let reg = pr_out(ctx, &mut p.a, REGISTER, 0, 0, KEY_A).await?;
    if !reg.is_good() {
        return Ok(Err(format!("REGISTER: {}", reg.describe())));
    }
    let res = pr_out(ctx, &mut p.a, RESERVE, kind, KEY_A, 0).await?;
    if !res.is_good() {
        return Ok(Err(format!("RESERVE type {kind}: {}", res.describe())));
    }
    Ok(Ok(()))
}

async fn reserve_shows(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, WRITE_EXCLUSIVE).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let out = pr_in(&ctx, &mut p.b, 1).await?;
    p.finish(&ctx).await;
    ensure!(
        out.is_good() && out.data.len() >= 24,
        "READ RESERVATION: {} with {} bytes",
        out.describe(),
        out.data.len()
    );
    let key = u64::from_be_bytes(out.data[8..16].try_into().unwrap_or([0; 8]));
    ensure!(key == KEY_A, "the reservation shows key {key:#x}");
    ensure!(
        out.data[21] & 0x0f == WRITE_EXCLUSIVE,
        "the reservation shows type {}",
        out.data[21] & 0x0f
    );
    pass()
}

async fn b_io_under(ctx: Arc<Ctx>, kind: u8, write: bool, want_conflict: bool) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, kind).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let out = block_io(&ctx, &mut p.b, p.block_size, write).await?;
    p.finish(&ctx).await;
    let what = if write { "WRITE" } else { "READ" };
    if want_conflict {
        ensure!(
            conflict(&out),
            "B's {what} under A's reservation: {}",
            out.describe()
        );
    } else {
        ensure!(
            out.is_good(),
            "B's {what} under A's reservation: {}",
            out.describe()
        );
    }
    pass()
}

async fn we_blocks_writes(ctx: Arc<Ctx>) -> TestResult {
    b_io_under(ctx, WRITE_EXCLUSIVE, true, true).await
}

async fn we_allows_reads(ctx: Arc<Ctx>) -> TestResult {
    b_io_under(ctx, WRITE_EXCLUSIVE, false, false).await
}

async fn ea_blocks_reads(ctx: Arc<Ctx>) -> TestResult {
    b_io_under(ctx, EXCLUSIVE_ACCESS, false, true).await
}

async fn holder_writes(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, WRITE_EXCLUSIVE).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let out = block_io(&ctx, &mut p.a, p.block_size, true).await?;
    p.finish(&ctx).await;
    ensure!(out.is_good(), "the holder's WRITE: {}", out.describe());
    pass()
}

async fn release_frees(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, WRITE_EXCLUSIVE).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let rel = pr_out(&ctx, &mut p.a, RELEASE, WRITE_EXCLUSIVE, KEY_A, 0).await?;
    let out = block_io(&ctx, &mut p.b, p.block_size, true).await?;
    p.finish(&ctx).await;
    ensure!(rel.is_good(), "RELEASE: {}", rel.describe());
    ensure!(out.is_good(), "B's WRITE after RELEASE: {}", out.describe());
    pass()
}

async fn wrong_key(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    let reg = pr_out(&ctx, &mut p.a, REGISTER, 0, 0, KEY_A).await?;
    let res = pr_out(&ctx, &mut p.a, RESERVE, WRITE_EXCLUSIVE, KEY_A ^ 1, 0).await?;
    p.finish(&ctx).await;
    ensure!(reg.is_good(), "REGISTER: {}", reg.describe());
    ensure!(
        conflict(&res),
        "RESERVE with the wrong key: {}",
        res.describe()
    );
    pass()
}

async fn unregistered_reserve(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    let res = pr_out(&ctx, &mut p.b, RESERVE, WRITE_EXCLUSIVE, KEY_B, 0).await?;
    p.finish(&ctx).await;
    ensure!(
        conflict(&res),
        "RESERVE from an unregistered nexus: {}",
        res.describe()
    );
    pass()
}

async fn clear(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, WRITE_EXCLUSIVE).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let regb = pr_out(&ctx, &mut p.b, REGISTER, 0, 0, KEY_B).await?;
    let cl = pr_out(&ctx, &mut p.a, CLEAR, 0, KEY_A, 0).await?;
    // Asked through A: B now holds a UNIT ATTENTION (RESERVATIONS PREEMPTED).
    let list = keys(&ctx, &mut p.a).await?;
    let resv = pr_in(&ctx, &mut p.a, 1).await?;
    p.finish(&ctx).await;
    ensure!(regb.is_good(), "B's REGISTER: {}", regb.describe());
    ensure!(cl.is_good(), "CLEAR: {}", cl.describe());
    ensure!(
        list.as_ref().is_some_and(|(_, l)| l.is_empty()),
        "keys after CLEAR: {list:x?}"
    );
    ensure!(
        resv.data.len() >= 8 && resv.data[4..8] == [0, 0, 0, 0],
        "a reservation is still reported after CLEAR"
    );
    pass()
}

async fn preempt(ctx: Arc<Ctx>) -> TestResult {
    let Some(mut p) = pair(&ctx).await? else {
        return not_supported(NO_PR);
    };
    if let Err(why) = a_reserves(&ctx, &mut p, WRITE_EXCLUSIVE).await? {
        p.finish(&ctx).await;
        return fail(why);
    }
    let regb = pr_out(&ctx, &mut p.b, REGISTER, 0, 0, KEY_B).await?;
    let pre = pr_out(&ctx, &mut p.b, PREEMPT, WRITE_EXCLUSIVE, KEY_B, KEY_A).await?;
    let list = keys(&ctx, &mut p.b).await?;
    let resv = pr_in(&ctx, &mut p.b, 1).await?;
    p.finish(&ctx).await;
    ensure!(regb.is_good(), "B's REGISTER: {}", regb.describe());
    ensure!(pre.is_good(), "PREEMPT: {}", pre.describe());
    ensure!(
        list.as_ref()
            .is_some_and(|(_, l)| !l.contains(&KEY_A) && l.contains(&KEY_B)),
        "keys after PREEMPT: {list:x?}"
    );
    let holder = resv
        .data
        .get(8..16)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    ensure!(
        holder == Some(KEY_B),
        "the reservation is held by {holder:x?} after PREEMPT"
    );
    pass()
}

async fn reserve6_pair(ctx: &Ctx) -> Result<Result<Pair, TestResult>, ProbeError> {
    let ep = ctx.primary().clone();
    clean(ctx, &ep).await;
    let mut a = open_as(ctx, &ep, ctx.initiator()).await?;
    let (_, block_size) = ctx.capacity(&mut a).await?;
    let lun = ctx.lun(&ep);
    let res = a
        .execute(ScsiRequest::none(
            lun,
            Bytes::from_static(&[0x16, 0, 0, 0, 0, 0]),
        ))
        .await?;
    if unsupported(&res) {
        ctx.close(a).await;
        return Ok(Err(not_supported("RESERVE (6)")));
    }
    if !res.is_good() {
        ctx.close(a).await;
        return Ok(Err(fail(format!("RESERVE (6): {}", res.describe()))));
    }
    let b = open_as(ctx, &ep, &ctx.other_initiator()).await?;
    Ok(Ok(Pair { a, b, block_size }))
}

async fn reserve6_conflict(ctx: Arc<Ctx>) -> TestResult {
    let mut p = match reserve6_pair(&ctx).await? {
        Ok(p) => p,
        Err(verdict) => return verdict,
    };
    let out = block_io(&ctx, &mut p.b, p.block_size, false).await;
    p.finish(&ctx).await;
    let out = out?;
    ensure!(
        conflict(&out),
        "B's READ under A's RESERVE (6): {}",
        out.describe()
    );
    pass()
}

async fn reserve6_release(ctx: Arc<Ctx>) -> TestResult {
    let mut p = match reserve6_pair(&ctx).await? {
        Ok(p) => p,
        Err(verdict) => return verdict,
    };
    let lun = ctx.lun(&p.a.endpoint);
    let rel =
        p.a.execute(ScsiRequest::none(
            lun,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 0]),
        ))
        .await?;
    let out = block_io(&ctx, &mut p.b, p.block_size, false).await;
    p.finish(&ctx).await;
    let out = out?;
    ensure!(rel.is_good(), "RELEASE (6): {}", rel.describe());
    ensure!(
        out.is_good(),
        "B's READ after RELEASE (6): {}",
        out.describe()
    );
    pass()
}
