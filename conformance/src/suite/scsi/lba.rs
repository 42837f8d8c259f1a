//! Every block command at the edges of the medium (SBC-3 §4.5, §5): the
//! first and last block, zero-length transfers, one block past the end,
//! a transfer straddling it and the largest LBA the CDB can carry; and the
//! protection fields an LU without protection information must refuse.
//! Generated from a table: one test per command per case.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::scsi::SenseKey;

use crate::context::{Ctx, pattern};
use crate::outcome::{TestResult, fail, pass, skip};
use crate::registry::TestCase;
use crate::suite::scsi::{expect_good, expect_sense, lu, not_supported, unsupported};

/// What the command moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moves {
    /// Data-In of the blocks addressed.
    Read,
    /// Nothing.
    Nothing,
    /// Data-Out of the blocks addressed.
    Write,
    /// Data-Out of one block (WRITE SAME).
    OneBlock,
}

#[derive(Clone, Copy, Debug)]
struct Command {
    name: &'static str,
    opcode: u8,
    /// CDB length: 6, 10, 12 or 16.
    size: usize,
    moves: Moves,
    section: &'static str,
    /// The LU must implement it: INVALID COMMAND OPERATION CODE is a failure.
    mandatory: bool,
    /// Where the protection field sits (byte 1, bits 7-5), if the CDB has one.
    protect: bool,
}

const fn cmd(
    name: &'static str,
    opcode: u8,
    size: usize,
    moves: Moves,
    section: &'static str,
    mandatory: bool,
    protect: bool,
) -> Command {
    Command {
        name,
        opcode,
        size,
        moves,
        section,
        mandatory,
        protect,
    }
}

const COMMANDS: &[Command] = &[
    cmd("read6", 0x08, 6, Moves::Read, "SBC-3 §5.13", false, false),
    cmd("read10", 0x28, 10, Moves::Read, "SBC-3 §5.14", true, true),
    cmd("read12", 0xa8, 12, Moves::Read, "SBC-3 §5.15", false, true),
    cmd("read16", 0x88, 16, Moves::Read, "SBC-3 §5.16", true, true),
    cmd(
        "verify10",
        0x2f,
        10,
        Moves::Nothing,
        "SBC-3 §5.33",
        false,
        true,
    ),
    cmd(
        "verify12",
        0xaf,
        12,
        Moves::Nothing,
        "SBC-3 §5.34",
        false,
        true,
    ),
    cmd(
        "verify16",
        0x8f,
        16,
        Moves::Nothing,
        "SBC-3 §5.35",
        false,
        true,
    ),
    cmd(
        "prefetch10",
        0x34,
        10,
        Moves::Nothing,
        "SBC-3 §5.9",
        false,
        false,
    ),
    cmd(
        "prefetch16",
        0x90,
        16,
        Moves::Nothing,
        "SBC-3 §5.10",
        false,
        false,
    ),
    cmd(
        "sync_cache10",
        0x35,
        10,
        Moves::Nothing,
        "SBC-3 §5.22",
        false,
        false,
    ),
    cmd(
        "sync_cache16",
        0x91,
        16,
        Moves::Nothing,
        "SBC-3 §5.23",
        false,
        false,
    ),
    cmd(
        "write10",
        0x2a,
        10,
        Moves::Write,
        "SBC-3 §5.37",
        false,
        true,
    ),
    cmd(
        "write12",
        0xaa,
        12,
        Moves::Write,
        "SBC-3 §5.38",
        false,
        true,
    ),
    cmd(
        "write16",
        0x8a,
        16,
        Moves::Write,
        "SBC-3 §5.39",
        false,
        true,
    ),
    cmd(
        "write_verify10",
        0x2e,
        10,
        Moves::Write,
        "SBC-3 §5.41",
        false,
        true,
    ),
    cmd(
        "write_verify12",
        0xae,
        12,
        Moves::Write,
        "SBC-3 §5.42",
        false,
        true,
    ),
    cmd(
        "write_verify16",
        0x8e,
        16,
        Moves::Write,
        "SBC-3 §5.43",
        false,
        true,
    ),
    cmd(
        "write_same10",
        0x41,
        10,
        Moves::OneBlock,
        "SBC-3 §5.45",
        false,
        true,
    ),
    cmd(
        "write_same16",
        0x93,
        16,
        Moves::OneBlock,
        "SBC-3 §5.46",
        false,
        true,
    ),
];

/// Where the command points.
#[derive(Clone, Copy, Debug)]
enum Case {
    FirstBlock,
    LastBlock,
    ZeroLength,
    PastEnd,
    Straddle,
    MaxLba,
    /// RDPROTECT / WRPROTECT / VRPROTECT = 001b on an LU without protection.
    Protect,
    /// FUA set: the command must still succeed (it may only be slower).
    Fua,
    /// DPO set: a cache hint that changes nothing a command returns.
    Dpo,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::FirstBlock => "first_block",
            Case::LastBlock => "last_block",
            Case::ZeroLength => "zero_length",
            Case::PastEnd => "past_end",
            Case::Straddle => "straddle_end",
            Case::MaxLba => "max_lba",
            Case::Protect => "protect_field",
            Case::Fua => "fua",
            Case::Dpo => "dpo",
        }
    }

    fn summary(self, c: &Command) -> String {
        let n = c.name.to_uppercase().replace('_', " ");
        match self {
            Case::FirstBlock => format!("{n} of LBA 0, one block: GOOD"),
            Case::LastBlock => format!("{n} of the last LBA, one block: GOOD"),
            Case::ZeroLength => format!("{n} with transfer length 0: GOOD, nothing moved"),
            Case::PastEnd => format!("{n} of the LBA just past the end: ILLEGAL REQUEST 21h/00h"),
            Case::Straddle => {
                format!("{n} of two blocks from the last LBA: ILLEGAL REQUEST 21h/00h")
            }
            Case::MaxLba => {
                format!("{n} of the largest LBA the CDB holds: ILLEGAL REQUEST 21h/00h")
            }
            Case::Protect => format!(
                "{n} with the protection field 001b on an LU without protection: ILLEGAL REQUEST 24h/00h"
            ),
            Case::Fua => format!("{n} of LBA 0 with FUA=1: GOOD"),
            Case::Dpo => format!("{n} of LBA 0 with DPO=1: GOOD"),
        }
    }
}

fn cases(c: &Command) -> Vec<Case> {
    let mut out = vec![Case::FirstBlock, Case::LastBlock];
    // READ (6) length 0 means 256 blocks; WRITE SAME length 0 means to the end.
    if c.size != 6 && c.moves != Moves::OneBlock {
        out.push(Case::ZeroLength);
    }
    out.extend([Case::PastEnd, Case::Straddle, Case::MaxLba]);
    if c.protect {
        out.push(Case::Protect);
    }
    if matches!(
        c.name,
        "read10" | "read12" | "read16" | "write10" | "write12" | "write16"
    ) {
        out.extend([Case::Fua, Case::Dpo]);
    }
    out
}

/// The generated tests.
pub fn tests() -> Vec<TestCase> {
    let mut out = Vec::new();
    for c in COMMANDS {
        for case in cases(c) {
            let c = *c;
            let section = match case {
                Case::Protect => "SBC-3 §4.22.2",
                Case::Fua | Case::Dpo => "SBC-3 §5.14 (FUA, DPO)",
                _ => c.section,
            };
            let mut t = TestCase::new(
                format!("scsi.lba.{}_{}", c.name, case.name()),
                section,
                case.summary(&c),
                move |ctx| run(ctx, c, case),
            );
            if matches!(c.moves, Moves::Write | Moves::OneBlock) {
                t = t.destructive();
            }
            out.push(t);
        }
    }
    out
}

/// The CDB for `lba` and `blocks`, with `byte1` in byte 1.
fn cdb(c: &Command, lba: u64, blocks: u32, byte1: u8) -> Vec<u8> {
    let mut b = vec![0u8; c.size];
    b[0] = c.opcode;
    match c.size {
        6 => {
            b[1] = ((lba >> 16) & 0x1f) as u8;
            b[2] = (lba >> 8) as u8;
            b[3] = lba as u8;
            b[4] = blocks as u8;
        }
        10 => {
            b[1] = byte1;
            b[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            b[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
        }
        12 => {
            b[1] = byte1;
            b[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            b[6..10].copy_from_slice(&blocks.to_be_bytes());
        }
        _ => {
            b[1] = byte1;
            b[2..10].copy_from_slice(&lba.to_be_bytes());
            b[10..14].copy_from_slice(&blocks.to_be_bytes());
        }
    }
    b
}

fn max_lba(c: &Command) -> u64 {
    match c.size {
        6 => 0x1f_ffff,
        10 | 12 => u64::from(u32::MAX),
        _ => u64::MAX,
    }
}

async fn run(ctx: Arc<Ctx>, c: Command, case: Case) -> TestResult {
    let mut lu = lu(&ctx).await?;
    let (blocks, bs) = (lu.blocks, lu.block_size);
    if blocks == 0 {
        lu.close(&ctx).await;
        return fail("the LU reports no blocks");
    }
    let last = blocks - 1;
    if matches!(case, Case::Protect) {
        let prot = lu
            .read(
                &ctx,
                &iscsi_proto::scsi::Cdb::read_capacity16(32).to_bytes(),
                32,
            )
            .await?;
        let protected = iscsi_proto::scsi::ReadCapacity16::parse(&prot.data)
            .is_ok_and(|r| r.protection_enabled);
        if protected {
            lu.close(&ctx).await;
            return skip("the LU has protection information enabled");
        }
    }
    let (lba, count, byte1) = match case {
        Case::FirstBlock => (0, 1, 0),
        Case::LastBlock => (last, 1, 0),
        Case::ZeroLength => (0, 0, 0),
        Case::PastEnd => (blocks, 1, 0),
        Case::Straddle => (last, 2, 0),
        Case::MaxLba => (max_lba(&c), 1, 0),
        Case::Protect => (0, 1, 0x20),
        Case::Fua => (0, 1, 0x08),
        Case::Dpo => (0, 1, 0x10),
    };
    if lba > max_lba(&c) {
        lu.close(&ctx).await;
        return skip(format!("the LU is larger than {} can address", c.name));
    }
    let bytes = cdb(&c, lba, count, byte1);
    let len = count.saturating_mul(bs);
    let out = match c.moves {
        Moves::Read => lu.read(&ctx, &bytes, len).await?,
        Moves::Nothing => lu.none(&ctx, &bytes).await?,
        Moves::Write => {
            let data = if len == 0 {
                Bytes::new()
            } else {
                pattern(len as usize)
            };
            if data.is_empty() {
                lu.none(&ctx, &bytes).await?
            } else {
                lu.write(&ctx, &bytes, data).await?
            }
        }
        Moves::OneBlock => lu.write(&ctx, &bytes, pattern(bs as usize)).await?,
    };
    lu.close(&ctx).await;
    if unsupported(&out) {
        return if c.mandatory {
            fail(format!(
                "{} is mandatory but answered INVALID COMMAND OPERATION CODE",
                c.name
            ))
        } else {
            not_supported(c.name)
        };
    }
    match case {
        Case::FirstBlock | Case::LastBlock | Case::Fua | Case::Dpo => {
            let verdict = expect_good(&out, c.name)?;
            if verdict != crate::Outcome::Pass {
                return Ok(verdict);
            }
            if c.moves == Moves::Read && out.data.len() != bs as usize {
                return fail(format!(
                    "{} bytes read for one {bs}-byte block",
                    out.data.len()
                ));
            }
            pass()
        }
        Case::ZeroLength => {
            let verdict = expect_good(&out, c.name)?;
            if verdict != crate::Outcome::Pass {
                return Ok(verdict);
            }
            if !out.data.is_empty() {
                return fail(format!(
                    "{} bytes came for a zero-length transfer",
                    out.data.len()
                ));
            }
            pass()
        }
        Case::PastEnd | Case::Straddle | Case::MaxLba => {
            expect_sense(&out, SenseKey::IllegalRequest, 0x21, 0x00)
        }
        Case::Protect => expect_sense(&out, SenseKey::IllegalRequest, 0x24, 0x00),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs_carry_lba_and_length() {
        let r16 = COMMANDS.iter().find(|c| c.name == "read16").unwrap();
        let b = cdb(r16, 0x0102_0304_0506_0708, 9, 0);
        assert_eq!(&b[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[10..14], &[0, 0, 0, 9]);
        let r6 = COMMANDS.iter().find(|c| c.name == "read6").unwrap();
        assert_eq!(cdb(r6, 0x1f_0203, 1, 0), vec![0x08, 0x1f, 2, 3, 1, 0]);
        let r12 = COMMANDS.iter().find(|c| c.name == "read12").unwrap();
        assert_eq!(
            cdb(r12, 5, 2, 0x20)[..10],
            [0xa8, 0x20, 0, 0, 0, 5, 0, 0, 0, 2]
        );
        let n: usize = COMMANDS.iter().map(|c| cases(c).len()).sum();
        assert_eq!(tests().len(), n);
    }
}
