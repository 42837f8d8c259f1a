//! Times the hand-written parsers that take peer-supplied bytes: text pairs,
//! SendTargets, sense data and VPD pages. A criterion-free harness, so that a
//! rewrite of one of them (e.g. with a parser combinator crate) can be
//! compared before and after on this machine:
//!
//! ```text
//! cargo run --release -p iscsi-proto --example parse_timing [ITERATIONS]
//! ```
//!
//! Each line is the best of five rounds of ITERATIONS calls (default 200000),
//! in nanoseconds per call: the minimum is the least disturbed by other work on
//! a shared machine.

use std::hint::black_box;
use std::time::Instant;

use iscsi_proto::scsi::Sense;
use iscsi_proto::scsi::vpd::{
    BlockLimits, DeviceIdentification, LogicalBlockProvisioning, SupportedVpdPages,
    UnitSerialNumber,
};
use iscsi_proto::text::{TargetAddress, TextLimits, parse_pairs, parse_send_targets};

const ROUNDS: usize = 5;

/// Best-of-rounds nanoseconds per call of `f`.
fn time<T>(name: &str, iterations: u32, mut f: impl FnMut() -> T) {
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(f());
        }
        let per_call = start.elapsed().as_nanos() as f64 / f64::from(iterations);
        best = best.min(per_call);
    }
    println!("{name:<34} {best:>9.1} ns");
}

/// A tgtd-like login response: the operational keys of a full login.
const LOGIN_RESPONSE: &[u8] = b"TargetPortalGroupTag=1\0HeaderDigest=None\0DataDigest=None\0\
MaxConnections=1\0InitialR2T=Yes\0ImmediateData=Yes\0MaxRecvDataSegmentLength=262144\0\
MaxBurstLength=262144\0FirstBurstLength=65536\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0\
MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0ErrorRecoveryLevel=0\0\
TargetAlias=riscsi-bench\0\0\0";

/// A SendTargets answer of 32 targets with two portals each.
fn send_targets_answer() -> Vec<u8> {
    let mut text = String::new();
    for t in 0..32 {
        text.push_str(&format!("TargetName=iqn.2024-01.example.bench:disk{t}\0"));
        text.push_str(&format!("TargetAddress=10.0.{t}.1:3260,1\0"));
        text.push_str(&format!("TargetAddress=[fd00::{t:x}]:3261,2\0"));
    }
    text.into_bytes()
}

const ADDRESSES: [&str; 6] = [
    "10.0.0.1:3260,1",
    "[fe80::1]:3261,2",
    "fe80::1%eth0,1",
    "computingcenter.example.com,23",
    "host",
    "10.0.0.1:3260,70000",
];

/// Fixed-format sense inside an iSCSI SenseLength framing: UNIT ATTENTION 29/00 (tgtd).
const SENSE_SEGMENT_UA: &[u8] = &[
    0x00, 0x12, 0x70, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x29, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// Fixed format with every field set (SPC-4 table 49).
const SENSE_FIXED: &[u8] = &[
    0xf1, 0x00, 0x23, 0x00, 0x12, 0x34, 0x56, 0x0a, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x00, 0x05, 0x80,
    0x01, 0x02,
];

/// Descriptor format: information, command-specific, SKS, FRU and a vendor descriptor.
const SENSE_DESCRIPTOR: &[u8] = &[
    0x72, 0x02, 0x04, 0x01, 0, 0, 0, 40, //
    0x00, 0x0a, 0x80, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, //
    0x01, 0x0a, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, //
    0x02, 0x06, 0x00, 0x00, 0x80, 0x80, 0x00, 0x00, //
    0x03, 0x02, 0x00, 0x07, //
    0x80, 0x02, 0xaa, 0xbb,
];

/// tgtd's VPD pages 00h, 80h, 83h, B0h and B2h.
const VPD_SUPPORTED: &[u8] = &[0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2];
const VPD_SERIAL: &[u8] = &[
    0x00, 0x80, 0x00, 0x24, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x62, 0x65, 0x61, 0x66, 0x31, 0x31,
];
const VPD_DEVICE_ID: &[u8] = &[
    0x00, 0x83, 0x00, 0x48, 0x02, 0x01, 0x00, 0x24, 0x49, 0x45, 0x54, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x30, 0x30, 0x30, 0x31, 0x30, 0x30, 0x30, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x08,
    0x30, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x00, 0x10, 0x60, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
];
const VPD_BLOCK_LIMITS: &[u8] = &[
    0x00, 0xb0, 0x00, 0x3c, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
const VPD_LBP: &[u8] = &[0x00, 0xb2, 0x00, 0x04, 0x00, 0xe4, 0x02, 0x00];

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ITERATIONS is a number"))
        .unwrap_or(200_000);
    let limits = TextLimits::DEFAULT;
    let send_targets = send_targets_answer();
    let send_targets_pairs = parse_pairs(&send_targets, limits).expect("valid");

    println!("{iterations} calls per round, best of {ROUNDS} rounds, per call:");
    time("parse_pairs (login, 16 keys)", iterations, || {
        parse_pairs(black_box(LOGIN_RESPONSE), limits)
    });
    time("parse_pairs (SendTargets, 96)", iterations / 20, || {
        parse_pairs(black_box(&send_targets), limits)
    });
    time("parse_send_targets (32 targets)", iterations / 20, || {
        parse_send_targets(black_box(&send_targets_pairs))
    });
    time("TargetAddress::parse (6 forms)", iterations, || {
        ADDRESSES.map(|a| TargetAddress::parse(black_box(a)).is_ok())
    });
    time("Sense::from_iscsi_segment", iterations, || {
        Sense::from_iscsi_segment(black_box(SENSE_SEGMENT_UA))
    });
    time("Sense::parse (fixed)", iterations, || {
        Sense::parse(black_box(SENSE_FIXED))
    });
    time("Sense::parse (descriptor, 5)", iterations, || {
        Sense::parse(black_box(SENSE_DESCRIPTOR))
    });
    time("SupportedVpdPages::parse", iterations, || {
        SupportedVpdPages::parse(black_box(VPD_SUPPORTED))
    });
    time("UnitSerialNumber::parse", iterations, || {
        UnitSerialNumber::parse(black_box(VPD_SERIAL))
    });
    time("DeviceIdentification::parse", iterations, || {
        DeviceIdentification::parse(black_box(VPD_DEVICE_ID))
    });
    time("BlockLimits::parse", iterations, || {
        BlockLimits::parse(black_box(VPD_BLOCK_LIMITS))
    });
    time("LogicalBlockProvisioning::parse", iterations, || {
        LogicalBlockProvisioning::parse(black_box(VPD_LBP))
    });
}
