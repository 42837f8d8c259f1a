//! Command descriptor blocks: the [`Cdb`] value and its builders.
//!
//! Field layouts follow SPC-4 (INQUIRY, REPORT LUNS, MODE SENSE, TEST UNIT READY)
//! and SBC-3 (READ, WRITE, READ CAPACITY, SYNCHRONIZE CACHE, WRITE SAME, UNMAP).
//! Every builder leaves GROUP NUMBER and CONTROL at zero, DPO off and IMMED off.

use std::fmt;

use bytes::{BufMut, Bytes};

use super::error::ScsiError;
use super::field::hex_string;
use super::opcode;

pub use crate::pdu::MAX_CDB_LEN;

/// CDBs up to this length (every one the builders make, and the BHS field)
/// are stored inline.
pub const INLINE_CDB_LEN: usize = 16;
const LONG_CDB_MIN: usize = INLINE_CDB_LEN + 1;

/// A command descriptor block.
///
/// Up to [`INLINE_CDB_LEN`] bytes it is held inline, so building a command
/// and its PDU allocates nothing for it, and a clone (a replay on another
/// path) is a 17-byte copy. A longer one (a variable-length CDB, sent with
/// the extended CDB AHS) is kept in [`Bytes`].
#[derive(Clone)]
pub struct Cdb(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CDB_LEN],
    },
    Long(Bytes),
}

impl PartialEq for Cdb {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Cdb {}

impl std::hash::Hash for Cdb {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Cdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cdb({})", hex_string(self.as_bytes()))
    }
}

/// Options of WRITE SAME(16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSameFlags {
    /// UNMAP bit: the target may deallocate the blocks instead of writing them.
    pub unmap: bool,
    /// NDOB bit (SBC-4): no Data-Out buffer; the blocks are written as zeroes.
    pub ndob: bool,
}

/// SELECT REPORT field of REPORT LUNS (SPC-4 table 284).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectReport {
    /// 00h: all logical units except well-known ones.
    Standard,
    /// 01h: well-known logical units only.
    WellKnownOnly,
    /// 02h: every logical unit.
    All,
    /// Any other code, sent as is.
    Other(u8),
}

impl SelectReport {
    /// Wire value.
    pub fn code(self) -> u8 {
        match self {
            SelectReport::Standard => 0x00,
            SelectReport::WellKnownOnly => 0x01,
            SelectReport::All => 0x02,
            SelectReport::Other(code) => code,
        }
    }
}

/// PC (page control) field of MODE SENSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageControl {
    /// 00b: current values.
    Current,
    /// 01b: changeable-values mask.
    Changeable,
    /// 10b: default values.
    Default,
    /// 11b: saved values.
    Saved,
}

impl PageControl {
    fn bits(self) -> u8 {
        match self {
            PageControl::Current => 0,
            PageControl::Changeable => 1,
            PageControl::Default => 2,
            PageControl::Saved => 3,
        }
    }
}

/// What a MODE SENSE asks for, shared by the 6- and 10-byte forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSenseRequest {
    /// Page code, 00h..=3Fh (3Fh = all pages).
    pub page: u8,
    /// Subpage code (00h = page_0 format, FFh = all subpages).
    pub subpage: u8,
    /// Which values to report.
    pub control: PageControl,
    /// DBD: ask the target to leave out block descriptors.
    pub disable_block_descriptors: bool,
}

impl ModeSenseRequest {
    /// Page code meaning "return all pages".
    pub const ALL_PAGES: u8 = 0x3f;

    /// Current values of one page, subpage 0, block descriptors included.
    pub fn current(page: u8) -> Self {
        ModeSenseRequest {
            page,
            subpage: 0,
            control: PageControl::Current,
            disable_block_descriptors: false,
        }
    }

    fn page_byte(&self, command: &'static str) -> Result<u8, ScsiError> {
        if self.page > Self::ALL_PAGES {
            return Err(ScsiError::ArgumentTooLarge {
                command,
                field: "page code",
                value: self.page.into(),
                max: Self::ALL_PAGES.into(),
            });
        }
        Ok(self.control.bits() << 6 | self.page)
    }
}

const FUA_BIT: u8 = 0x08;

fn check_fits(
    command: &'static str,
    field: &'static str,
    value: u64,
    max: u64,
) -> Result<(), ScsiError> {
    if value > max {
        return Err(ScsiError::ArgumentTooLarge {
            command,
            field,
            value,
            max,
        });
    }
    Ok(())
}

/// 10-byte block command: opcode, flags, 32-bit LBA, group, 16-bit length, control.
fn block_cdb10(
    command: &'static str,
    op: u8,
    flags: u8,
    lba: u64,
    blocks: u32,
) -> Result<Cdb, ScsiError> {
    check_fits(command, "lba", lba, u32::MAX.into())?;
    check_fits(command, "blocks", blocks.into(), u16::MAX.into())?;
    let mut bytes = [0u8; 10];
    let mut b = &mut bytes[..];
    b.put_u8(op);
    b.put_u8(flags);
    b.put_u32(lba as u32);
    b.put_u8(0);
    b.put_u16(blocks as u16);
    b.put_u8(0);
    Ok(Cdb::inline(&bytes))
}

/// 16-byte block command: opcode, flags, 64-bit LBA, 32-bit length, group, control.
fn block_cdb16(op: u8, flags: u8, lba: u64, blocks: u32) -> Cdb {
    let mut bytes = [0u8; 16];
    let mut b = &mut bytes[..];
    b.put_u8(op);
    b.put_u8(flags);
    b.put_u64(lba);
    b.put_u32(blocks);
    b.put_u8(0);
    b.put_u8(0);
    Cdb::inline(&bytes)
}

fn fua_flags(fua: bool) -> u8 {
    if fua { FUA_BIT } else { 0 }
}

impl Cdb {
    /// Wraps raw CDB bytes (e.g. a pass-through command from a user).
    pub fn new(bytes: Bytes) -> Result<Self, ScsiError> {
        if bytes.len() <= INLINE_CDB_LEN {
            return Cdb::from_slice(&bytes);
        }
        if bytes.len() > MAX_CDB_LEN {
            return Err(ScsiError::InvalidCdbLength(bytes.len()));
        }
        Ok(Cdb(Repr::Long(bytes)))
    }

    /// Copies raw CDB bytes (1 to 260 of them).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ScsiError> {
        match bytes.len() {
            0 => Err(ScsiError::InvalidCdbLength(0)),
            1..=INLINE_CDB_LEN => Ok(Cdb::inline(bytes)),
            LONG_CDB_MIN..=MAX_CDB_LEN => Ok(Cdb(Repr::Long(Bytes::copy_from_slice(bytes)))),
            len => Err(ScsiError::InvalidCdbLength(len)),
        }
    }

    /// A CDB of at most [`INLINE_CDB_LEN`] bytes, which every caller passes
    /// (a longer slice would be cut, never overrun).
    fn inline(src: &[u8]) -> Cdb {
        let mut bytes = [0u8; INLINE_CDB_LEN];
        let len = src.len().min(INLINE_CDB_LEN);
        bytes[..len].copy_from_slice(&src[..len]);
        Cdb(Repr::Inline {
            len: len as u8,
            bytes,
        })
    }

    /// The CDB bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Long(bytes) => bytes,
        }
    }

    /// The CDB in a buffer of its own: a copy for an inline CDB.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Long(bytes) => bytes.clone(),
        }
    }

    /// The CDB in a buffer of its own: a copy for an inline CDB.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Long(bytes) => bytes,
        }
    }

    /// CDB length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Always false: a `Cdb` holds at least the operation code.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Operation code (byte 0).
    pub fn opcode(&self) -> u8 {
        self.as_bytes().first().copied().unwrap_or_default()
    }

    /// TEST UNIT READY.
    pub fn test_unit_ready() -> Cdb {
        Cdb::inline(&[opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0])
    }

    /// Standard INQUIRY (EVPD=0).
    pub fn inquiry(alloc_len: u16) -> Cdb {
        let [hi, lo] = alloc_len.to_be_bytes();
        Cdb::inline(&[opcode::INQUIRY, 0, 0, hi, lo, 0])
    }

    /// INQUIRY for the vital product data page `page` (EVPD=1).
    pub fn inquiry_vpd(page: u8, alloc_len: u16) -> Cdb {
        let [hi, lo] = alloc_len.to_be_bytes();
        Cdb::inline(&[opcode::INQUIRY, 0x01, page, hi, lo, 0])
    }

    /// READ CAPACITY(10); its 8-byte answer needs no allocation length.
    pub fn read_capacity10() -> Cdb {
        Cdb::inline(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// READ CAPACITY(16): SERVICE ACTION IN(16) with service action 10h.
    pub fn read_capacity16(alloc_len: u32) -> Cdb {
        let mut bytes = [0u8; 16];
        let mut b = &mut bytes[..];
        b.put_u8(opcode::SERVICE_ACTION_IN_16);
        b.put_u8(opcode::SA_READ_CAPACITY_16);
        b.put_u64(0);
        b.put_u32(alloc_len);
        b.put_u8(0);
        b.put_u8(0);
        Cdb::inline(&bytes)
    }

    /// READ(10); fails when `lba` needs more than 32 bits or `blocks` more than 16.
    pub fn read10(lba: u64, blocks: u32, fua: bool) -> Result<Cdb, ScsiError> {
        block_cdb10("READ(10)", opcode::READ_10, fua_flags(fua), lba, blocks)
    }

    /// READ(16).
    pub fn read16(lba: u64, blocks: u32, fua: bool) -> Cdb {
        block_cdb16(opcode::READ_16, fua_flags(fua), lba, blocks)
    }

    /// READ(10) when its fields can carry `lba` and `blocks`, READ(16) otherwise.
    pub fn read(lba: u64, blocks: u32, fua: bool) -> Cdb {
        match Cdb::read10(lba, blocks, fua) {
            Ok(cdb) => cdb,
            Err(_) => Cdb::read16(lba, blocks, fua),
        }
    }

    /// WRITE(10); fails when `lba` needs more than 32 bits or `blocks` more than 16.
    pub fn write10(lba: u64, blocks: u32, fua: bool) -> Result<Cdb, ScsiError> {
        block_cdb10("WRITE(10)", opcode::WRITE_10, fua_flags(fua), lba, blocks)
    }

    /// WRITE(16).
    pub fn write16(lba: u64, blocks: u32, fua: bool) -> Cdb {
        block_cdb16(opcode::WRITE_16, fua_flags(fua), lba, blocks)
    }

    /// WRITE(10) when its fields can carry `lba` and `blocks`, WRITE(16) otherwise.
    pub fn write(lba: u64, blocks: u32, fua: bool) -> Cdb {
        match Cdb::write10(lba, blocks, fua) {
            Ok(cdb) => cdb,
            Err(_) => Cdb::write16(lba, blocks, fua),
        }
    }

    /// SYNCHRONIZE CACHE(10); `lba` 0 with `blocks` 0 means the whole medium.
    pub fn synchronize_cache10(lba: u64, blocks: u32) -> Result<Cdb, ScsiError> {
        block_cdb10(
            "SYNCHRONIZE CACHE(10)",
            opcode::SYNCHRONIZE_CACHE_10,
            0,
            lba,
            blocks,
        )
    }

    /// SYNCHRONIZE CACHE(16); `blocks` 0 means from `lba` to the end of the medium.
    pub fn synchronize_cache16(lba: u64, blocks: u32) -> Cdb {
        block_cdb16(opcode::SYNCHRONIZE_CACHE_16, 0, lba, blocks)
    }

    /// SYNCHRONIZE CACHE(10) when its fields suffice, (16) otherwise.
    pub fn synchronize_cache(lba: u64, blocks: u32) -> Cdb {
        match Cdb::synchronize_cache10(lba, blocks) {
            Ok(cdb) => cdb,
            Err(_) => Cdb::synchronize_cache16(lba, blocks),
        }
    }

    /// WRITE SAME(16). Unless `flags.ndob`, the Data-Out buffer is one logical block.
    pub fn write_same16(lba: u64, blocks: u32, flags: WriteSameFlags) -> Cdb {
        let mut bits = 0;
        if flags.unmap {
            bits |= 0x08;
        }
        if flags.ndob {
            bits |= 0x01;
        }
        block_cdb16(opcode::WRITE_SAME_16, bits, lba, blocks)
    }

    /// UNMAP with a parameter list of `parameter_list_len` bytes
    /// (see [`super::unmap::UnmapParameterList`]).
    pub fn unmap(parameter_list_len: u16) -> Cdb {
        let [hi, lo] = parameter_list_len.to_be_bytes();
        Cdb::inline(&[opcode::UNMAP, 0, 0, 0, 0, 0, 0, hi, lo, 0])
    }

    /// REPORT LUNS.
    pub fn report_luns(select: SelectReport, alloc_len: u32) -> Cdb {
        let mut bytes = [0u8; 12];
        let mut b = &mut bytes[..];
        b.put_u8(opcode::REPORT_LUNS);
        b.put_u8(0);
        b.put_u8(select.code());
        b.put_bytes(0, 3);
        b.put_u32(alloc_len);
        b.put_u8(0);
        b.put_u8(0);
        Cdb::inline(&bytes)
    }

    /// MODE SENSE(6); fails on a page code above 3Fh.
    pub fn mode_sense6(request: &ModeSenseRequest, alloc_len: u8) -> Result<Cdb, ScsiError> {
        let page = request.page_byte("MODE SENSE(6)")?;
        let dbd = if request.disable_block_descriptors {
            0x08
        } else {
            0
        };
        Ok(Cdb::inline(&[
            opcode::MODE_SENSE_6,
            dbd,
            page,
            request.subpage,
            alloc_len,
            0,
        ]))
    }

    /// MODE SENSE(10) (LLBAA off); fails on a page code above 3Fh.
    pub fn mode_sense10(request: &ModeSenseRequest, alloc_len: u16) -> Result<Cdb, ScsiError> {
        let page = request.page_byte("MODE SENSE(10)")?;
        let dbd = if request.disable_block_descriptors {
            0x08
        } else {
            0
        };
        let [hi, lo] = alloc_len.to_be_bytes();
        Ok(Cdb::inline(&[
            opcode::MODE_SENSE_10,
            dbd,
            page,
            request.subpage,
            0,
            0,
            0,
            hi,
            lo,
            0,
        ]))
    }
}

impl AsRef<[u8]> for Cdb {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::ops::Deref for Cdb {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected bytes are written from the SBC-3/SPC-4 field tables, or copied
    // from CDBs libiscsi sent to tgtd (see tgtd_vectors.rs), never from the
    // builders themselves.

    #[test]
    fn read16_fields() {
        let cdb = Cdb::read16(0x0102_0304_0506_0708, 0x1122_3344, true);
        assert_eq!(
            cdb.as_bytes(),
            &[
                0x88, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0, 0
            ]
        );
        assert_eq!(cdb.opcode(), 0x88);
        assert_eq!(cdb.len(), 16);
        assert!(!cdb.is_empty());
    }

    #[test]
    fn write16_fields_without_fua() {
        let cdb = Cdb::write16(0xffff_ffff_0000_0001, 8, false);
        assert_eq!(
            cdb.as_bytes(),
            &[
                0x8a, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0
            ]
        );
    }

    #[test]
    fn read10_and_write10_fields() {
        let read = Cdb::read10(0x0a0b_0c0d, 0x0102, false).unwrap();
        assert_eq!(
            read.as_bytes(),
            &[0x28, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0x01, 0x02, 0]
        );
        let write = Cdb::write10(0x10, 1, true).unwrap();
        assert_eq!(write.as_bytes(), &[0x2a, 0x08, 0, 0, 0, 0x10, 0, 0, 1, 0]);
    }

    #[test]
    fn read10_rejects_what_does_not_fit() {
        assert_eq!(
            Cdb::read10(1 << 32, 1, false),
            Err(ScsiError::ArgumentTooLarge {
                command: "READ(10)",
                field: "lba",
                value: 1 << 32,
                max: 0xffff_ffff,
            })
        );
        assert!(matches!(
            Cdb::write10(0, 0x1_0000, false),
            Err(ScsiError::ArgumentTooLarge {
                field: "blocks",
                ..
            })
        ));
        assert!(Cdb::read10(u32::MAX.into(), u16::MAX.into(), false).is_ok());
    }

    #[test]
    fn automatic_form_picks_16_only_when_needed() {
        assert_eq!(Cdb::read(100, 8, false).opcode(), 0x28);
        assert_eq!(Cdb::read(1 << 32, 8, false).opcode(), 0x88);
        assert_eq!(Cdb::read(0, 0x1_0000, false).opcode(), 0x88);
        assert_eq!(Cdb::write(u32::MAX.into(), 0xffff, true).opcode(), 0x2a);
        assert_eq!(Cdb::write(0, 0x1_0000, true).as_bytes()[..2], [0x8a, 0x08]);
        assert_eq!(Cdb::synchronize_cache(0, 0).opcode(), 0x35);
        assert_eq!(Cdb::synchronize_cache(1 << 40, 0).opcode(), 0x91);
    }

    #[test]
    fn synchronize_cache_fields() {
        assert_eq!(
            Cdb::synchronize_cache10(0, 0).unwrap().as_bytes(),
            &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Cdb::synchronize_cache16(0x0100_0000_0000, 0x20).as_bytes(),
            &[0x91, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]
        );
    }

    #[test]
    fn write_same16_bits() {
        let flags = WriteSameFlags {
            unmap: true,
            ndob: true,
        };
        assert_eq!(
            Cdb::write_same16(0x1000, 0x800, flags).as_bytes(),
            &[0x93, 0x09, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0, 0, 0]
        );
        let plain = Cdb::write_same16(0, 1, WriteSameFlags::default());
        assert_eq!(plain.as_bytes()[1], 0);
        let unmap_only = Cdb::write_same16(
            0,
            1,
            WriteSameFlags {
                unmap: true,
                ndob: false,
            },
        );
        assert_eq!(unmap_only.as_bytes()[1], 0x08);
    }

    #[test]
    fn unmap_cdb() {
        assert_eq!(
            Cdb::unmap(0x0018).as_bytes(),
            &[0x42, 0, 0, 0, 0, 0, 0, 0x00, 0x18, 0]
        );
    }

    #[test]
    fn commands_libiscsi_sent_to_tgtd() {
        // Byte-for-byte the CDBs captured from iscsi-inq / iscsi-readcapacity16 /
        // iscsi-ls / iscsi-swp talking to tgtd.
        assert_eq!(Cdb::test_unit_ready().as_bytes(), &[0, 0, 0, 0, 0, 0]);
        assert_eq!(Cdb::inquiry(0x40).as_bytes(), &[0x12, 0, 0, 0, 0x40, 0]);
        assert_eq!(
            Cdb::inquiry_vpd(0x83, 0x4c).as_bytes(),
            &[0x12, 1, 0x83, 0, 0x4c, 0]
        );
        assert_eq!(
            Cdb::read_capacity10().as_bytes(),
            &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Cdb::read_capacity16(32).as_bytes(),
            &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]
        );
        assert_eq!(
            Cdb::report_luns(SelectReport::Standard, 16).as_bytes(),
            &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        let control_page = ModeSenseRequest {
            page: 0x0a,
            subpage: 0,
            control: PageControl::Current,
            disable_block_descriptors: true,
        };
        assert_eq!(
            Cdb::mode_sense10(&control_page, 255).unwrap().as_bytes(),
            &[0x5a, 0x08, 0x0a, 0, 0, 0, 0, 0, 0xff, 0]
        );
    }

    #[test]
    fn inquiry_allocation_length_is_big_endian() {
        assert_eq!(
            Cdb::inquiry_vpd(0xb0, 0x1234).as_bytes(),
            &[0x12, 1, 0xb0, 0x12, 0x34, 0]
        );
    }

    #[test]
    fn report_luns_select_and_length() {
        assert_eq!(
            Cdb::report_luns(SelectReport::All, 0x0001_0008).as_bytes(),
            &[0xa0, 0, 0x02, 0, 0, 0, 0, 0x01, 0, 0x08, 0, 0]
        );
        assert_eq!(SelectReport::WellKnownOnly.code(), 1);
        assert_eq!(SelectReport::Other(0x11).code(), 0x11);
    }

    #[test]
    fn mode_sense6_fields() {
        let request = ModeSenseRequest {
            page: 0x08,
            subpage: 0,
            control: PageControl::Saved,
            disable_block_descriptors: false,
        };
        assert_eq!(
            Cdb::mode_sense6(&request, 0xfc).unwrap().as_bytes(),
            &[0x1a, 0, 0xc8, 0, 0xfc, 0]
        );
        let all = ModeSenseRequest {
            page: ModeSenseRequest::ALL_PAGES,
            subpage: 0xff,
            control: PageControl::Changeable,
            disable_block_descriptors: true,
        };
        assert_eq!(
            Cdb::mode_sense6(&all, 4).unwrap().as_bytes(),
            &[0x1a, 0x08, 0x7f, 0xff, 4, 0]
        );
        let default = ModeSenseRequest {
            control: PageControl::Default,
            ..ModeSenseRequest::current(1)
        };
        assert_eq!(
            Cdb::mode_sense10(&default, 0x100).unwrap().as_bytes()[2..9],
            [0x81, 0, 0, 0, 0, 0x01, 0]
        );
    }

    #[test]
    fn mode_sense_rejects_page_above_3f() {
        let request = ModeSenseRequest::current(0x40);
        assert!(matches!(
            Cdb::mode_sense6(&request, 0xff),
            Err(ScsiError::ArgumentTooLarge {
                field: "page code",
                ..
            })
        ));
        assert!(Cdb::mode_sense10(&request, 0xff).is_err());
    }

    #[test]
    fn raw_cdb_length_is_checked() {
        assert_eq!(Cdb::new(Bytes::new()), Err(ScsiError::InvalidCdbLength(0)));
        assert_eq!(
            Cdb::new(Bytes::from(vec![0u8; MAX_CDB_LEN + 1])),
            Err(ScsiError::InvalidCdbLength(MAX_CDB_LEN + 1))
        );
        let cdb = Cdb::new(Bytes::from_static(&[0x12, 0, 0, 0, 36, 0])).unwrap();
        assert_eq!(cdb, Cdb::inquiry(36));
        assert_eq!(format!("{cdb:?}"), "Cdb(120000002400)");
    }

    #[test]
    fn short_cdbs_are_inline_and_long_ones_share_their_buffer() {
        let short = Cdb::read16(1, 1, false);
        assert!(matches!(short.0, Repr::Inline { len: 16, .. }));
        assert_eq!(Cdb::new(short.to_bytes()).unwrap(), short);
        assert!(matches!(
            Cdb::from_slice(&[0x12, 0, 0, 0, 36, 0]).unwrap().0,
            Repr::Inline { len: 6, .. }
        ));
        let long = Cdb::new(Bytes::from(vec![0x7f; 32])).unwrap();
        assert_eq!(long.len(), 32);
        let copy = long.clone();
        assert_eq!(long.as_bytes().as_ptr(), copy.as_bytes().as_ptr());
        assert_eq!(long.to_bytes().as_ptr(), copy.into_bytes().as_ptr());
        assert_eq!(Cdb::from_slice(&[0x7f; 32]).unwrap(), long);
        assert_eq!(
            Cdb::from_slice(&[0; MAX_CDB_LEN + 1]),
            Err(ScsiError::InvalidCdbLength(MAX_CDB_LEN + 1))
        );
        assert_eq!(Cdb::from_slice(&[]), Err(ScsiError::InvalidCdbLength(0)));
    }
}
