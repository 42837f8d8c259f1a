//! ALLOCATION LENGTH (SPC-4 §4.2.5.6): a device server sends the lesser of
//! what it has and what was allocated, a prefix of the full answer, and
//! treats 0 as no error. One test per command per length.

use std::sync::Arc;

use crate::context::Ctx;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::registry::TestCase;
use crate::suite::scsi::lu;

/// A command with an allocation length: its CDB for a given length.
#[derive(Clone, Copy)]
struct Allocating {
    name: &'static str,
    section: &'static str,
    build: fn(u16) -> Vec<u8>,
    /// The VPD page it reads, checked against VPD 00h first.
    vpd: Option<u8>,
}

fn inquiry(n: u16) -> Vec<u8> {
    let [hi, lo] = n.to_be_bytes();
    vec![0x12, 0, 0, hi, lo, 0]
}

fn vpd(page: u8) -> impl Fn(u16) -> Vec<u8> {
    move |n| {
        let [hi, lo] = n.to_be_bytes();
        vec![0x12, 1, page, hi, lo, 0]
    }
}

fn vpd00(n: u16) -> Vec<u8> {
    vpd(0x00)(n)
}
fn vpd80(n: u16) -> Vec<u8> {
    vpd(0x80)(n)
}
fn vpd83(n: u16) -> Vec<u8> {
    vpd(0x83)(n)
}
fn mode_sense6(n: u16) -> Vec<u8> {
    vec![0x1a, 0, 0x3f, 0, n.min(255) as u8, 0]
}
fn mode_sense10(n: u16) -> Vec<u8> {
    let [hi, lo] = n.to_be_bytes();
    vec![0x5a, 0, 0x3f, 0, 0, 0, 0, hi, lo, 0]
}
fn read_capacity16(n: u16) -> Vec<u8> {
    let [hi, lo] = n.to_be_bytes();
    vec![0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, hi, lo, 0, 0]
}
fn request_sense(n: u16) -> Vec<u8> {
    vec![0x03, 0, 0, 0, n.min(255) as u8, 0]
}

const COMMANDS: [Allocating; 8] = [
    Allocating {
        name: "inquiry",
        section: "SPC-4 §6.6",
        build: inquiry,
        vpd: None,
    },
    Allocating {
        name: "vpd_supported_pages",
        section: "SPC-4 §7.8.13",
        build: vpd00,
        vpd: Some(0x00),
    },
    Allocating {
        name: "vpd_serial",
        section: "SPC-4 §7.8.15",
        build: vpd80,
        vpd: Some(0x80),
    },
    Allocating {
        name: "vpd_device_identification",
        section: "SPC-4 §7.8.6",
        build: vpd83,
        vpd: Some(0x83),
    },
    Allocating {
        name: "mode_sense6",
        section: "SPC-4 §6.11",
        build: mode_sense6,
        vpd: None,
    },
    Allocating {
        name: "mode_sense10",
        section: "SPC-4 §6.12",
        build: mode_sense10,
        vpd: None,
    },
    Allocating {
        name: "read_capacity16",
        section: "SBC-3 §5.17",
        build: read_capacity16,
        vpd: None,
    },
    Allocating {
        name: "request_sense",
        section: "SPC-4 §6.29",
        build: request_sense,
        vpd: None,
    },
];

/// The generated tests.
pub fn tests() -> Vec<TestCase> {
    let mut out = Vec::new();
    for c in COMMANDS {
        for n in [0u16, 1, 4] {
            let summary = match n {
                0 => format!(
                    "{} with ALLOCATION LENGTH 0: GOOD and no data",
                    c.name.to_uppercase()
                ),
                _ => format!(
                    "{} with ALLOCATION LENGTH {n}: GOOD, exactly the first {n} bytes of the full answer",
                    c.name.to_uppercase()
                ),
            };
            out.push(TestCase::new(
                format!("scsi.alloc.{}_{n}", c.name),
                format!("SPC-4 §4.2.5.6, {}", c.section),
                summary,
                move |ctx| run(ctx, c, n),
            ));
        }
    }
    out
}

async fn run(ctx: Arc<Ctx>, c: Allocating, n: u16) -> TestResult {
    let mut lu = lu(&ctx).await?;
    if let Some(page) = c.vpd
        && page != 0
    {
        let list = lu.read(&ctx, &vpd00(255), 255).await?;
        let listed = list.is_good()
            && iscsi_proto::scsi::vpd::SupportedVpdPages::parse(&list.data)
                .is_ok_and(|l| l.supports(page));
        if !listed {
            lu.close(&ctx).await;
            return skip(format!("VPD {page:02X}h is not listed"));
        }
    }
    let full = lu.read(&ctx, &(c.build)(255), 255).await?;
    let short = lu.read(&ctx, &(c.build)(n), u32::from(n)).await?;
    lu.close(&ctx).await;
    if !full.is_good() {
        return fail(format!("with 255 bytes allocated: {}", full.describe()));
    }
    if !short.is_good() {
        return fail(format!("with {n} bytes allocated: {}", short.describe()));
    }
    let want = usize::from(n).min(full.data.len());
    if short.data.len() != want {
        return fail(format!(
            "{} bytes came with {n} allocated (the full answer has {})",
            short.data.len(),
            full.data.len()
        ));
    }
    if short.data[..] != full.data[..want] {
        return fail("the truncated answer is not a prefix of the full one");
    }
    pass()
}
