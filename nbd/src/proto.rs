//! NBD protocol numbers (the NetworkBlockDevice project's doc/proto.md):
//! magics, options, option replies, info types, commands, flags, errors.
//! Each constant carries the spec's own name without its `NBD_` prefix.

/// "NBDMAGIC": the first 8 bytes the server sends.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// "IHAVEOPT": newstyle negotiation, and the start of every option.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The start of every option reply.
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// The start of a transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// The start of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// The start of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flags (server): fixed newstyle negotiation is supported.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flags (server): no 124 zero bytes after NBD_OPT_EXPORT_NAME.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flags: the client speaks fixed newstyle.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flags: the client takes NBD_FLAG_NO_ZEROES (no 124 zero bytes).
pub const FLAG_C_NO_ZEROES: u32 = 1 << 1;

/// Option: choose an export by name and end the handshake (no reply on error).
pub const OPT_EXPORT_NAME: u32 = 1;
/// Option: the client ends the handshake without entering transmission.
pub const OPT_ABORT: u32 = 2;
/// Option: list the exports (one NBD_REP_SERVER each, then NBD_REP_ACK).
pub const OPT_LIST: u32 = 3;
/// Option: upgrade the connection to TLS.
pub const OPT_STARTTLS: u32 = 5;
/// Option: describe an export (NBD_REP_INFO replies) and stay in the handshake.
pub const OPT_INFO: u32 = 6;
/// Option: as NBD_OPT_INFO, then enter transmission on that export.
pub const OPT_GO: u32 = 7;
/// Option: ask for structured replies to reads in transmission.
pub const OPT_STRUCTURED_REPLY: u32 = 8;

/// Option reply: the option is done (or, for NBD_OPT_LIST, the list ends).
pub const REP_ACK: u32 = 1;
/// Option reply: one export of an NBD_OPT_LIST answer, by name.
pub const REP_SERVER: u32 = 2;
/// Option reply: one piece of an export's description (an NBD_INFO_ type).
pub const REP_INFO: u32 = 3;
/// The bit that makes an option reply type an error.
const REP_ERR: u32 = 1 << 31;
/// The option is unknown to this server.
pub const REP_ERR_UNSUP: u32 = REP_ERR | 1;
/// Known, but not allowed by policy.
pub const REP_ERR_POLICY: u32 = REP_ERR | 2;
/// Malformed or out of place.
pub const REP_ERR_INVALID: u32 = REP_ERR | 3;
/// No such export.
pub const REP_ERR_UNKNOWN: u32 = REP_ERR | 6;
/// The option's data is larger than the server takes.
pub const REP_ERR_TOO_BIG: u32 = REP_ERR | 9;

/// NBD_REP_INFO type: the export's size and transmission flags.
pub const INFO_EXPORT: u16 = 0;
/// NBD_REP_INFO type: the export's canonical name.
pub const INFO_NAME: u16 = 1;
/// NBD_REP_INFO type: a human-readable description of the export.
pub const INFO_DESCRIPTION: u16 = 2;
/// NBD_REP_INFO type: minimum, preferred and maximum block sizes.
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Transmission flag: always set; the other flags are meaningful.
pub const FLAG_HAS_FLAGS: u16 = 1 << 0;
/// Transmission flag: the export is read-only.
pub const FLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: the server takes NBD_CMD_FLUSH.
pub const FLAG_SEND_FLUSH: u16 = 1 << 2;
/// Transmission flag: the server takes NBD_CMD_FLAG_FUA.
pub const FLAG_SEND_FUA: u16 = 1 << 3;
/// Transmission flag: the server takes NBD_CMD_TRIM.
pub const FLAG_SEND_TRIM: u16 = 1 << 5;
/// Transmission flag: the server takes NBD_CMD_WRITE_ZEROES.
pub const FLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
/// Transmission flag: the server takes NBD_CMD_FLAG_DF (structured replies).
pub const FLAG_SEND_DF: u16 = 1 << 7;
/// Transmission flag: several connections to the export see each other's
/// writes once flushed.
pub const FLAG_CAN_MULTI_CONN: u16 = 1 << 8;
/// Transmission flag: the server takes NBD_CMD_CACHE.
pub const FLAG_SEND_CACHE: u16 = 1 << 10;

/// Command: read `length` bytes at `offset`.
pub const CMD_READ: u16 = 0;
/// Command: write the `length` bytes that follow the request at `offset`.
pub const CMD_WRITE: u16 = 1;
/// Command: disconnect, once the requests in flight are answered (no reply).
pub const CMD_DISC: u16 = 2;
/// Command: put every completed write on stable storage.
pub const CMD_FLUSH: u16 = 3;
/// Command: the range's data is no longer needed (a discard hint).
pub const CMD_TRIM: u16 = 4;
/// Command: prefetch the range into the server's cache (advisory).
pub const CMD_CACHE: u16 = 5;
/// Command: write zeroes to the range, with no data sent.
pub const CMD_WRITE_ZEROES: u16 = 6;

/// Command flag: force unit access, the write on stable storage before the reply.
pub const CMD_FLAG_FUA: u16 = 1 << 0;
/// Command flag (write zeroes): allocate the zeroes, do not punch a hole.
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;
/// Command flag (read): don't fragment, the data in one structured chunk.
pub const CMD_FLAG_DF: u16 = 1 << 2;

/// Structured reply flag: the last chunk of the reply.
pub const REPLY_FLAG_DONE: u16 = 1 << 0;
/// Structured reply chunk type: no payload, sent with NBD_REPLY_FLAG_DONE to end a reply.
pub const REPLY_TYPE_NONE: u16 = 0;
/// Structured reply chunk type: an offset, then data read there.
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
/// Structured reply chunk type: an error value and a message.
pub const REPLY_TYPE_ERROR: u16 = (1 << 15) | 1;

/// Error values (the protocol's, which happen to be Linux errno values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Errno {
    /// Writes or trims on a read-only export, or the LU write-protected.
    Perm = 1,
    /// Anything the device could not do.
    Io = 5,
    /// Bad request: out of range, misaligned, oversized, unknown command or flag.
    Inval = 22,
    /// A write or write-zeroes beyond the end, or the LU out of space.
    NoSpc = 28,
    /// The server is shutting down.
    Shutdown = 108,
}

/// Size of a request header.
pub const REQUEST_LEN: usize = 28;
