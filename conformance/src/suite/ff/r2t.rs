//! Writes under every InitialR2T and ImmediateData combination (RFC 7143
//! §4.2.5.2, §11.8, §13.10, §13.11, §13.14): which data go unsolicited,
//! how the target asks for the rest, and that everything lands. Writes to
//! the LU: destructive.

use std::sync::Arc;

use iscsi_proto::scsi::Cdb;

use crate::context::{Ctx, pattern};
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::{ScsiOutcome, ScsiRequest};
use crate::registry::TestCase;

/// FirstBurstLength offered: small, so that unsolicited data end early.
const FIRST_BURST: u32 = 8192;
/// MaxBurstLength offered: small, so that several R2Ts are needed.
const MAX_BURST: u32 = 16384;
/// The write.
const WRITE: u32 = 65536;
/// Where the writes go, 128 blocks per combination so that they can run
/// side by side (the multipath family uses blocks from 1024 on).
const LBA: u64 = 512;

#[derive(Clone, Copy)]
struct Combo {
    name: &'static str,
    /// Which of the four: where its blocks are.
    index: u64,
    initial_r2t: bool,
    immediate_data: bool,
}

const COMBOS: [Combo; 4] = [
    Combo {
        name: "r2t_yes_imm_no",
        index: 0,
        initial_r2t: true,
        immediate_data: false,
    },
    Combo {
        name: "r2t_yes_imm_yes",
        index: 1,
        initial_r2t: true,
        immediate_data: true,
    },
    Combo {
        name: "r2t_no_imm_no",
        index: 2,
        initial_r2t: false,
        immediate_data: false,
    },
    Combo {
        name: "r2t_no_imm_yes",
        index: 3,
        initial_r2t: false,
        immediate_data: true,
    },
];

type Check = fn(&Written) -> Result<(), String>;

/// One write and what came of it.
struct Written {
    out: ScsiOutcome,
    /// Unsolicited bytes the agreement allowed.
    unsolicited: u32,
    max_burst: u32,
    len: u32,
    read_back_equal: bool,
}

/// The R2T tests: four checks for each combination.
pub fn tests() -> Vec<TestCase> {
    let checks: [(&str, &str, &str, Check); 4] = [
        (
            "r2tsn",
            "RFC 7143 §11.8.5",
            "R2TSN counts the command's R2Ts from 0",
            r2tsn,
        ),
        (
            "coverage",
            "RFC 7143 §11.8.3",
            "the R2Ts ask for exactly the bytes not sent unsolicited, once each, in order",
            coverage,
        ),
        (
            "burst_limit",
            "RFC 7143 §11.8.4",
            "no R2T asks for more than MaxBurstLength",
            burst_limit,
        ),
        (
            "data",
            "RFC 7143 §4.2.5.2",
            "the write completes GOOD and reads back unchanged",
            data,
        ),
    ];
    let mut out = Vec::new();
    for combo in COMBOS {
        for (check_name, section, summary, check) in checks {
            let summary = format!(
                "InitialR2T={} ImmediateData={}: {summary}",
                yes(combo.initial_r2t),
                yes(combo.immediate_data)
            );
            out.push(
                TestCase::new(
                    format!("ff.r2t.{}_{check_name}", combo.name),
                    section,
                    summary,
                    move |ctx| run(ctx, combo, check),
                )
                .destructive(),
            );
        }
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

async fn run(ctx: Arc<Ctx>, combo: Combo, check: Check) -> TestResult {
    let written = match write(&ctx, combo).await? {
        Ok(w) => w,
        Err(reason) => return skip(reason),
    };
    match check(&written) {
        Ok(()) => pass(),
        Err(why) => fail(why),
    }
}

async fn write(ctx: &Ctx, combo: Combo) -> Result<Result<Written, String>, ProbeError> {
    let ep = ctx.primary().clone();
    let spec = ctx
        .spec(&ep)
        .set("InitialR2T", yes(combo.initial_r2t))
        .set("ImmediateData", yes(combo.immediate_data))
        .set("FirstBurstLength", &FIRST_BURST.to_string())
        .set("MaxBurstLength", &MAX_BURST.to_string());
    let (mut probe, _) = ctx.open_with(&ep, &spec).await?;
    let n = probe.negotiated.clone();
    if n.initial_r2t != combo.initial_r2t || n.immediate_data != combo.immediate_data {
        ctx.close(probe).await;
        return Ok(Err(format!(
            "the target agreed InitialR2T={} ImmediateData={}: this combination is not offered",
            yes(n.initial_r2t),
            yes(n.immediate_data)
        )));
    }
    ctx.settle(&mut probe).await?;
    let (blocks, block_size) = ctx.capacity(&mut probe).await?;
    let count = (WRITE / block_size.max(1)).max(1);
    let lba = LBA + 128 * combo.index;
    if blocks < lba + u64::from(count) {
        return Err(ProbeError::Precondition {
            portal: ep.portal_label(),
            what: "a 64 KiB write".into(),
            reason: format!("the LU has only {blocks} blocks"),
        });
    }
    let len = count * block_size;
    let data = pattern(len as usize);
    let lun = ctx.lun(&ep);
    let out = probe
        .execute(ScsiRequest::write(
            lun,
            Cdb::write16(lba, count, false).to_bytes(),
            data.clone(),
        ))
        .await?;
    let back = probe
        .execute(ScsiRequest::read(
            lun,
            Cdb::read16(lba, count, false).to_bytes(),
            len,
        ))
        .await?;
    ctx.close(probe).await;
    let unsolicited = if !n.initial_r2t {
        n.first_burst.min(len)
    } else if n.immediate_data {
        n.first_burst.min(n.their_mrdsl).min(len)
    } else {
        0
    };
    Ok(Ok(Written {
        read_back_equal: back.is_good() && back.data == data,
        out,
        unsolicited,
        max_burst: n.max_burst,
        len,
    }))
}

fn r2tsn(w: &Written) -> Result<(), String> {
    for (i, r) in w.out.r2ts.iter().enumerate() {
        if r.r2t_sn != i as u32 {
            return Err(format!("R2T {i} has R2TSN {}", r.r2t_sn));
        }
    }
    if w.out.r2ts.is_empty() && w.unsolicited < w.len {
        return Err(format!(
            "{} bytes needed R2Ts, none came",
            w.len - w.unsolicited
        ));
    }
    Ok(())
}

fn coverage(w: &Written) -> Result<(), String> {
    let mut next = w.out.unsolicited as u32;
    if next != w.unsolicited {
        return Err(format!(
            "the probe sent {next} unsolicited bytes, the agreement allows {}",
            w.unsolicited
        ));
    }
    for (i, r) in w.out.r2ts.iter().enumerate() {
        if r.buffer_offset != next {
            return Err(format!(
                "R2T {i} asks from offset {}, expected {next}",
                r.buffer_offset
            ));
        }
        next = next.saturating_add(r.desired_data_transfer_length);
    }
    if next != w.len {
        return Err(format!(
            "unsolicited data and R2Ts cover {next} bytes of {}",
            w.len
        ));
    }
    Ok(())
}

fn burst_limit(w: &Written) -> Result<(), String> {
    match w.out.r2ts.iter().find(|r| {
        r.desired_data_transfer_length > w.max_burst || r.desired_data_transfer_length == 0
    }) {
        Some(r) => Err(format!(
            "an R2T asks for {} bytes, MaxBurstLength is {}",
            r.desired_data_transfer_length, w.max_burst
        )),
        None => Ok(()),
    }
}

fn data(w: &Written) -> Result<(), String> {
    if !w.out.is_good() {
        return Err(format!("WRITE (16): {}", w.out.describe()));
    }
    if !w.read_back_equal {
        return Err("the data read back differ from what was written".into());
    }
    Ok(())
}
