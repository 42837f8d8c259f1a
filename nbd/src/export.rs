//! What the server exports: a block device, its name, and what clients may
//! do with it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_session::BlockDevice;

use crate::proto::{
    FLAG_CAN_MULTI_CONN, FLAG_HAS_FLAGS, FLAG_READ_ONLY, FLAG_SEND_CACHE, FLAG_SEND_DF,
    FLAG_SEND_FLUSH, FLAG_SEND_FUA, FLAG_SEND_TRIM, FLAG_SEND_WRITE_ZEROES,
};

/// Largest request payload (and the maximum block size announced).
pub const MAX_BLOCK: u32 = 32 << 20;
/// Preferred block size when the LU reports no optimal transfer length.
const DEFAULT_PREFERRED: u32 = 4096;
/// The buffer WRITE_ZEROES is emulated with, when the LU has no WRITE SAME.
const ZERO_CHUNK: usize = 1 << 20;

/// Connections served at once by default.
pub const DEFAULT_MAX_CLIENTS: usize = 64;
/// Connections negotiating at once by default.
pub const DEFAULT_MAX_HANDSHAKES: usize = 16;
/// The default time a client has to finish its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How an export is offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    /// The export name (`""` is also accepted as the default export).
    pub name: String,
    /// Shown by `nbdinfo` and `NBD_OPT_LIST`.
    pub description: String,
    /// Writes, trims and write-zeroes get EPERM (`access_mode: ro`).
    pub read_only: bool,
    /// TRIM is offered (connection_info `discard`), when the LU can UNMAP.
    pub trim: bool,
    /// Connections served at once, negotiating or not; when all of them are
    /// past their handshake, more are turned away.
    pub max_clients: usize,
    /// Of those, connections still negotiating at once; past it, the oldest
    /// negotiation is closed to make room (a real client takes
    /// milliseconds: an idle or trickling one cannot hold slots).
    pub max_handshakes: usize,
    /// How long a client may take to finish the handshake.
    pub handshake_timeout: Duration,
}

impl ExportConfig {
    /// A read-write export named `name`, no trim, 64 clients of which 16
    /// negotiating, 30 s to negotiate.
    pub fn new(name: impl Into<String>) -> Self {
        ExportConfig {
            name: name.into(),
            description: String::new(),
            read_only: false,
            trim: false,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Whether the LU takes WRITE SAME, learnt on first use.
const WRITE_SAME_UNKNOWN: u8 = 0;
const WRITE_SAME_WORKS: u8 = 1;
const WRITE_SAME_REFUSED: u8 = 2;

/// An export being served.
#[derive(Debug)]
pub struct Export<B> {
    pub(crate) device: B,
    pub(crate) config: ExportConfig,
    write_same: AtomicU8,
    pub(crate) zeroes: Bytes,
}

impl<B: BlockDevice> Export<B> {
    /// Serves `device` as `config` says.
    pub fn new(device: B, config: ExportConfig) -> Self {
        Export {
            device,
            config,
            write_same: AtomicU8::new(WRITE_SAME_UNKNOWN),
            zeroes: Bytes::from(BytesMut::zeroed(ZERO_CHUNK)),
        }
    }

    /// Whether `name` selects this export (the empty name is the default).
    pub fn matches(&self, name: &[u8]) -> bool {
        name.is_empty() || name == self.config.name.as_bytes()
    }

    /// Size in bytes now.
    pub fn size(&self) -> u64 {
        self.device.geometry().size_bytes()
    }

    /// TRIM is offered: asked for, and the LU can UNMAP.
    pub fn trims(&self) -> bool {
        self.config.trim && !self.config.read_only && self.device.geometry().unmap
    }

    /// Transmission flags for a connection.
    pub fn transmission_flags(&self, structured: bool) -> u16 {
        let mut flags = FLAG_HAS_FLAGS
            | FLAG_SEND_FLUSH
            | FLAG_SEND_FUA
            | FLAG_SEND_WRITE_ZEROES
            | FLAG_SEND_CACHE
            // One volume behind every connection: a flush on one covers all.
            | FLAG_CAN_MULTI_CONN;
        if self.config.read_only {
            flags |= FLAG_READ_ONLY;
        }
        if self.trims() {
            flags |= FLAG_SEND_TRIM;
        }
        if structured {
            // Reads always come back as one chunk.
            flags |= FLAG_SEND_DF;
        }
        flags
    }

    /// Minimum, preferred and maximum block sizes.
    pub fn block_sizes(&self) -> (u32, u32, u32) {
        let g = self.device.geometry();
        let preferred = g
            .optimal_transfer_blocks
            .checked_mul(g.block_size)
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_PREFERRED)
            .clamp(g.block_size, MAX_BLOCK);
        (g.block_size, preferred, MAX_BLOCK)
    }

    pub(crate) fn write_same_refused(&self) -> bool {
        self.write_same.load(Ordering::Relaxed) == WRITE_SAME_REFUSED
    }

    pub(crate) fn note_write_same(&self, works: bool) {
        let state = if works {
            WRITE_SAME_WORKS
        } else {
            WRITE_SAME_REFUSED
        };
        self.write_same.store(state, Ordering::Relaxed);
    }
}
