//! Data-In sequencing (RFC 7143 §11.7): DataSN, buffer offsets, segment
//! and burst limits, the F and S bits. One read of 64 KiB with small
//! negotiated limits, so that the target must cut it into many PDUs and
//! several sequences.

use std::sync::Arc;

use iscsi_proto::scsi::Cdb;

use crate::context::Ctx;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass};
use crate::probe::{ScsiOutcome, ScsiRequest};
use crate::registry::TestCase;

/// What we declare as MaxRecvDataSegmentLength for these reads.
const SEGMENT: u32 = 4096;
/// What we offer as MaxBurstLength.
const BURST: u32 = 16384;
/// How much is read.
const READ: u32 = 65536;

/// The Data-In tests.
pub fn tests() -> Vec<TestCase> {
    let checks: [(&str, &str, &str, Check); 8] = [
        (
            "datasn_from_zero",
            "RFC 7143 §11.7.5",
            "the first Data-In of a read has DataSN 0",
            datasn_from_zero,
        ),
        (
            "datasn_consecutive",
            "RFC 7143 §11.7.5",
            "DataSN increases by one per Data-In of the command",
            datasn_consecutive,
        ),
        (
            "offsets_contiguous",
            "RFC 7143 §11.7.6",
            "buffer offsets follow one another without gap or overlap, from 0",
            offsets_contiguous,
        ),
        (
            "segment_limit",
            "RFC 7143 §13.12",
            "no Data-In segment exceeds the MaxRecvDataSegmentLength we declared (4096)",
            segment_limit,
        ),
        (
            "burst_limit",
            "RFC 7143 §13.13",
            "no Data-In sequence (up to an F bit) exceeds the negotiated MaxBurstLength",
            burst_limit,
        ),
        (
            "final_bit_last",
            "RFC 7143 §11.7.1",
            "the last Data-In has the F bit",
            final_bit_last,
        ),
        (
            "status_only_last",
            "RFC 7143 §11.7.3",
            "status (the S bit) comes with the last Data-In only, or in a SCSI Response",
            status_only_last,
        ),
        (
            "total_length",
            "RFC 7143 §11.7.6",
            "the Data-In segments add up to the expected transfer length and the data reads back whole",
            total_length,
        ),
    ];
    checks
        .into_iter()
        .map(|(name, section, summary, check)| {
            TestCase::new(format!("ff.data_in.{name}"), section, summary, move |ctx| {
                run(ctx, check)
            })
        })
        .collect()
}

type Check = fn(&ScsiOutcome, u32) -> Result<(), String>;

async fn read(ctx: &Ctx) -> Result<(ScsiOutcome, u32), ProbeError> {
    let ep = ctx.primary().clone();
    let spec = ctx
        .spec(&ep)
        .set("MaxRecvDataSegmentLength", &SEGMENT.to_string())
        .set("MaxBurstLength", &BURST.to_string())
        // RFC 7143 §13.14: FirstBurstLength (default 65536) must not exceed
        // MaxBurstLength.
        .set("FirstBurstLength", &BURST.to_string());
    let (mut probe, _) = ctx.open_with(&ep, &spec).await?;
    ctx.settle(&mut probe).await?;
    let (blocks, block_size) = ctx.capacity(&mut probe).await?;
    let count = (READ / block_size.max(1)).max(1);
    if blocks < u64::from(count) {
        return Err(ProbeError::Precondition {
            portal: ep.portal_label(),
            what: "a 64 KiB read".into(),
            reason: format!("the LU has only {blocks} blocks"),
        });
    }
    let len = count * block_size;
    let out = probe
        .execute(ScsiRequest::read(
            ctx.lun(&ep),
            Cdb::read10(0, count, false)
                .map_err(|e| ProbeError::Precondition {
                    portal: ep.portal_label(),
                    what: "READ (10)".into(),
                    reason: e.to_string(),
                })?
                .to_bytes(),
            len,
        ))
        .await?;
    let burst = probe.negotiated.max_burst;
    ctx.close(probe).await;
    if !out.is_good() {
        return Err(ProbeError::Precondition {
            portal: ep.portal_label(),
            what: "READ (10) of 64 KiB".into(),
            reason: out.describe(),
        });
    }
    Ok((out, burst))
}

async fn run(ctx: Arc<Ctx>, check: Check) -> TestResult {
    let (out, burst) = read(&ctx).await?;
    match check(&out, burst) {
        Ok(()) => pass(),
        Err(why) => fail(why),
    }
}

fn datasn_from_zero(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    match o.data_ins.first() {
        Some(d) if d.data_sn == 0 => Ok(()),
        Some(d) => Err(format!("the first Data-In has DataSN {}", d.data_sn)),
        None => Err("a 64 KiB read came without Data-In".into()),
    }
}

fn datasn_consecutive(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    for (i, d) in o.data_ins.iter().enumerate() {
        if d.data_sn != i as u32 {
            return Err(format!("Data-In {i} has DataSN {}", d.data_sn));
        }
    }
    Ok(())
}

fn offsets_contiguous(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    let mut next = 0u32;
    for (i, d) in o.data_ins.iter().enumerate() {
        if d.buffer_offset != next {
            return Err(format!(
                "Data-In {i} has buffer offset {}, expected {next}",
                d.buffer_offset
            ));
        }
        next = next.wrapping_add(d.data.len() as u32);
    }
    Ok(())
}

fn segment_limit(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    match o.data_ins.iter().find(|d| d.data.len() > SEGMENT as usize) {
        Some(d) => Err(format!(
            "a Data-In carries {} bytes (DataSN {})",
            d.data.len(),
            d.data_sn
        )),
        None => Ok(()),
    }
}

fn burst_limit(o: &ScsiOutcome, burst: u32) -> Result<(), String> {
    let mut run = 0usize;
    for d in &o.data_ins {
        run += d.data.len();
        if run > burst as usize {
            return Err(format!(
                "a Data-In sequence reached {run} bytes, MaxBurstLength is {burst}"
            ));
        }
        if d.final_ {
            run = 0;
        }
    }
    Ok(())
}

fn final_bit_last(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    match o.data_ins.last() {
        Some(d) if d.final_ => Ok(()),
        Some(_) => Err("the last Data-In has no F bit".into()),
        None => Err("no Data-In".into()),
    }
}

fn status_only_last(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    let n = o.data_ins.len();
    for (i, d) in o.data_ins.iter().enumerate() {
        if d.status.is_some() && i + 1 != n {
            return Err(format!("Data-In {i} of {n} carries status"));
        }
        if d.status.is_some() && !d.final_ {
            return Err("a Data-In with status has no F bit".into());
        }
    }
    let in_data = o.data_ins.last().is_some_and(|d| d.status.is_some());
    if in_data == o.response_pdu.is_some() {
        return Err(if in_data {
            "status came both in a Data-In and a SCSI Response".into()
        } else {
            "no status".into()
        });
    }
    Ok(())
}

fn total_length(o: &ScsiOutcome, _: u32) -> Result<(), String> {
    let sum: usize = o.data_ins.iter().map(|d| d.data.len()).sum();
    if sum != o.data.len() {
        return Err(format!(
            "segments add up to {sum} bytes, the buffer they fill to {}",
            o.data.len()
        ));
    }
    if o.residual != iscsi_proto::pdu::Residual::None {
        return Err(format!(
            "a read of exactly the transfer length reports residual {:?}",
            o.residual
        ));
    }
    Ok(())
}
