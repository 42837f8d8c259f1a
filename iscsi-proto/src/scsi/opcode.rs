//! SCSI operation codes (SPC-4 / SBC-3) of the commands this crate builds.

/// TEST UNIT READY.
pub const TEST_UNIT_READY: u8 = 0x00;
/// REQUEST SENSE.
pub const REQUEST_SENSE: u8 = 0x03;
/// INQUIRY.
pub const INQUIRY: u8 = 0x12;
/// MODE SENSE(6).
pub const MODE_SENSE_6: u8 = 0x1a;
/// READ CAPACITY(10).
pub const READ_CAPACITY_10: u8 = 0x25;
/// READ(10).
pub const READ_10: u8 = 0x28;
/// WRITE(10).
pub const WRITE_10: u8 = 0x2a;
/// SYNCHRONIZE CACHE(10).
pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
/// UNMAP.
pub const UNMAP: u8 = 0x42;
/// MODE SENSE(10).
pub const MODE_SENSE_10: u8 = 0x5a;
/// READ(16).
pub const READ_16: u8 = 0x88;
/// WRITE(16).
pub const WRITE_16: u8 = 0x8a;
/// SYNCHRONIZE CACHE(16).
pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
/// WRITE SAME(16).
pub const WRITE_SAME_16: u8 = 0x93;
/// SERVICE ACTION IN(16); READ CAPACITY(16) is its service action 10h.
pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
/// Service action of SERVICE ACTION IN(16) selecting READ CAPACITY(16).
pub const SA_READ_CAPACITY_16: u8 = 0x10;
/// REPORT LUNS.
pub const REPORT_LUNS: u8 = 0xa0;
