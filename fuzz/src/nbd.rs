//! `nbd_requests`: the NBD server's side of the wire, in two modes.
//!
//! Decoder mode (byte 0 bit 0 clear): [`RequestDecoder`] over the stream in
//! arbitrary chunks. Bytes 1-2: the largest WRITE payload taken (big-endian
//! u16); byte 3: K chunk sizes (low 4 bits), K bytes of chunk size - 1; then
//! the stream. Asserted: the decoder yields exactly what a whole-stream
//! reference reading of the same bytes yields, however the stream is cut
//! (so it never takes bytes it does not have, and never loses its place
//! skipping an oversized payload); a payload is never above the limit; the
//! buffer only grows to hold one request (header + payload) and a chunk.
//!
//! Session mode (byte 0 bit 0 set): the handshake (`negotiate`) and then the
//! transmission phase (`transmit`) over an in-memory duplex stream, against
//! [`MemoryDevice`], a 64 KiB LU interpreting READ/WRITE/WRITE SAME/UNMAP/
//! SYNCHRONIZE CACHE over a `Vec`. Byte 0: bit 1 read-only export, bit 2
//! TRIM offered, bit 3 the LU refuses WRITE SAME (ILLEGAL REQUEST, so the
//! zero-write fallback runs); byte 1: K chunk sizes as above; then the
//! client's bytes, written in those chunks, then EOF. On a current-thread
//! runtime with a paused clock: asserted that the server always finishes
//! (a 60 s virtual timeout only fires when every task is stuck) and that
//! its output stays proportional to the input.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::pdu::{Itt, Lun, Residual};
use iscsi_session::{
    BlockDevice, Command, CommandOutcome, CompletionSink, Error, Geometry, PathContext, Portal,
    ReadData, ScsiExecutor,
};
use riscsi_nbd::handshake::{Negotiated, negotiate};
use riscsi_nbd::request::{Decoded, Request, RequestDecoder};
use riscsi_nbd::{Export, ExportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chunks;

/// Block size of the memory LU.
pub const BLOCK: u32 = 512;
/// Blocks of the memory LU: 64 KiB, so that no read is large.
pub const BLOCKS: u64 = 128;
/// NBD request header length.
const REQUEST_LEN: usize = 28;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const CMD_WRITE: u16 = 1;
/// Smallest `Vec<u8>` allocation.
const VEC_MIN_CAP: usize = 8;

/// A decoded item, as the reference reading and the decoder both report it.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Request(Request),
    Oversized(Request),
    BadMagic(u32),
}

/// The stream read whole, by the NBD framing rules alone.
fn reference(stream: &[u8], max_payload: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = stream.get(at..at + REQUEST_LEN) {
        let be32 = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4"));
        let magic = be32(0);
        if magic != REQUEST_MAGIC {
            out.push(Item::BadMagic(magic));
            break;
        }
        let request = Request {
            flags: u16::from_be_bytes([header[4], header[5]]),
            command: u16::from_be_bytes([header[6], header[7]]),
            handle: u64::from_be_bytes(header[8..16].try_into().expect("8")),
            offset: u64::from_be_bytes(header[16..24].try_into().expect("8")),
            length: be32(24),
            data: Bytes::new(),
        };
        let payload = request.length as usize;
        if request.command != CMD_WRITE {
            out.push(Item::Request(request));
            at += REQUEST_LEN;
        } else if payload > max_payload {
            out.push(Item::Oversized(request));
            at = at.saturating_add(REQUEST_LEN + payload);
        } else if let Some(data) = stream.get(at + REQUEST_LEN..at + REQUEST_LEN + payload) {
            out.push(Item::Request(Request {
                data: Bytes::copy_from_slice(data),
                ..request
            }));
            at += REQUEST_LEN + payload;
        } else {
            break;
        }
    }
    out
}

/// Decoder mode (see the module documentation).
pub fn run_decoder(data: &[u8]) {
    let Some((head, rest)) = data.split_at_checked(4) else {
        return;
    };
    let max_payload = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let k = usize::from(head[3] & 0x0f);
    let Some((sizes, stream)) = rest.split_at_checked(k) else {
        return;
    };
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) + 1).collect();
    let largest = sizes.iter().copied().max().unwrap_or(stream.len());
    let expected = reference(stream, max_payload);

    let mut decoder = RequestDecoder::new(max_payload);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    'feed: for piece in chunks::cut(stream, &sizes) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            let was_skipping = decoder.is_skipping();
            let result = decoder.decode(&mut buf);
            // One request at most is ever waited for: header plus payload,
            // and the chunk that arrives meanwhile; `BytesMut` doubles.
            let bound = 2 * (REQUEST_LEN + max_payload + largest).max(VEC_MIN_CAP) + before;
            assert!(
                buf.capacity() <= bound,
                "buffer of {} bytes for {before} buffered, max payload {max_payload}",
                buf.capacity()
            );
            match result {
                Ok(Some(Decoded::Request(r))) => {
                    assert!(r.data.len() <= max_payload, "payload above the limit");
                    assert!(before - buf.len() >= REQUEST_LEN + r.data.len());
                    got.push(Item::Request(r));
                }
                Ok(Some(Decoded::Oversized(r))) => {
                    assert!(
                        r.length as usize > max_payload,
                        "oversized within the limit"
                    );
                    got.push(Item::Oversized(r));
                }
                Ok(None) => {
                    // Only skipping an oversized payload consumes without a result.
                    if !was_skipping {
                        assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    }
                    break;
                }
                Err(e) => {
                    got.push(Item::BadMagic(e.0));
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(
        got, expected,
        "chunked decoding differs from the whole stream's"
    );
}

/// A 64 KiB logical unit in memory.
#[derive(Debug)]
pub struct MemoryDevice {
    blocks: Mutex<Vec<u8>>,
    refuse_write_same: bool,
}

impl MemoryDevice {
    /// Zeroed blocks; `refuse_write_same` makes WRITE SAME fail as an LU
    /// without it does.
    pub fn new(refuse_write_same: bool) -> Self {
        MemoryDevice {
            blocks: Mutex::new(vec![0; (BLOCKS * u64::from(BLOCK)) as usize]),
            refuse_write_same,
        }
    }

    fn ctx() -> PathContext {
        PathContext {
            portal: Portal::new("192.0.2.40", 3260),
            target: "iqn.2024-01.io.riscsi:memory".into(),
        }
    }

    /// CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
    fn illegal(&self, opcode: u8) -> Error {
        let mut sense = vec![0u8; 18];
        sense[0] = 0x70;
        sense[2] = 0x05;
        sense[7] = 10;
        sense[12] = 0x20;
        Error::Scsi {
            ctx: Self::ctx(),
            lun: self.lun(),
            itt: Itt(0),
            opcode,
            status: 0x02,
            sense: Some(Bytes::from(sense)),
        }
    }

    /// The byte range of `blocks` blocks at `lba`, checked.
    fn range(&self, lba: u64, blocks: u64) -> Result<std::ops::Range<usize>, Error> {
        match lba.checked_add(blocks) {
            Some(end) if end <= BLOCKS => {
                Ok((lba * u64::from(BLOCK)) as usize..(end * u64::from(BLOCK)) as usize)
            }
            _ => Err(self.bad(format!("blocks {lba}+{blocks} beyond the LU"))),
        }
    }

    fn run(&self, command: &Command) -> Result<Bytes, Error> {
        let cdb = command.cdb.as_bytes();
        let be = |from: usize, len: usize| {
            cdb.get(from..from + len)
                .map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
                .ok_or_else(|| self.bad("short CDB"))
        };
        let payload = match &command.direction {
            iscsi_session::Direction::Write { data } => data.clone(),
            _ => Bytes::new(),
        };
        let mut mem = self.blocks.lock().expect("not poisoned");
        match cdb[0] {
            // READ(10), READ(16)
            0x28 | 0x88 => {
                let (lba, n) = if cdb[0] == 0x28 {
                    (be(2, 4)?, be(7, 2)?)
                } else {
                    (be(2, 8)?, be(10, 4)?)
                };
                let r = self.range(lba, n)?;
                Ok(Bytes::copy_from_slice(&mem[r]))
            }
            // WRITE(10), WRITE(16)
            0x2a | 0x8a => {
                let (lba, n) = if cdb[0] == 0x2a {
                    (be(2, 4)?, be(7, 2)?)
                } else {
                    (be(2, 8)?, be(10, 4)?)
                };
                let r = self.range(lba, n)?;
                if payload.len() != r.len() {
                    return Err(self.bad("write payload does not match its CDB"));
                }
                mem[r].copy_from_slice(&payload);
                Ok(Bytes::new())
            }
            // SYNCHRONIZE CACHE(10), (16)
            0x35 | 0x91 => Ok(Bytes::new()),
            // WRITE SAME(16)
            0x93 if self.refuse_write_same => Err(self.illegal(0x93)),
            0x93 => {
                let r = self.range(be(2, 8)?, be(10, 4)?)?;
                if payload.len() != BLOCK as usize {
                    return Err(self.bad("WRITE SAME without one block"));
                }
                for block in mem[r].chunks_mut(BLOCK as usize) {
                    block.copy_from_slice(&payload);
                }
                Ok(Bytes::new())
            }
            // UNMAP: an 8-byte header, then 16-byte descriptors.
            0x42 => {
                for d in payload.get(8..).unwrap_or_default().chunks_exact(16) {
                    let lba = u64::from_be_bytes(d[0..8].try_into().expect("8"));
                    let n = u32::from_be_bytes(d[8..12].try_into().expect("4"));
                    let r = self.range(lba, u64::from(n))?;
                    mem[r].fill(0);
                }
                Ok(Bytes::new())
            }
            other => Err(self.illegal(other)),
        }
    }
}

impl ScsiExecutor for MemoryDevice {
    type Error = Error;

    fn lun(&self) -> Lun {
        Lun::from_number(0).expect("LUN 0")
    }

    fn context(&self) -> PathContext {
        Self::ctx()
    }

    async fn execute(&self, command: Command) -> Result<CommandOutcome, Error> {
        let data = self.run(&command)?;
        Ok(CommandOutcome {
            itt: Itt(0),
            status: 0,
            sense: None,
            data: ReadData::from(data),
            residual: Residual::None,
        })
    }
}

impl BlockDevice for MemoryDevice {
    // Completes each command before the next, in the submitter's task: the
    // batch path of the server, with an order it cannot rely on anyway.
    async fn submit_batch(
        &self,
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<Error>>,
    ) {
        for (tag, command) in commands {
            let result = self.execute(command.clone()).await;
            sink.complete(tag, command, result);
        }
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            block_size: BLOCK,
            blocks: BLOCKS,
            physical_block_size: u64::from(BLOCK),
            thin_provisioned: true,
            unmapped_reads_zero: true,
            unmap: true,
            write_same_unmap: true,
            // Small limits, so that requests are split and UNMAP lists cut.
            max_transfer_blocks: 16,
            optimal_transfer_blocks: 8,
            max_unmap_blocks: 32,
            max_unmap_descriptors: 2,
        }
    }
}

thread_local! {
    /// One runtime for every input: building one per input would dominate
    /// the run. Current-thread, paused clock: deterministic, and a hang is
    /// seen as the virtual timeout firing, not as a libFuzzer time-out.
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime"),
    );
}

/// Longest (virtual) time one input may take.
const BOUND: Duration = Duration::from_secs(60);

/// Session mode (see the module documentation). Returns the bytes the
/// server wrote and how the handshake ended.
pub fn run_session(data: &[u8]) -> Option<(usize, String)> {
    let (head, rest) = data.split_at_checked(2)?;
    let k = usize::from(head[1] & 0x0f);
    let (sizes, stream) = rest.split_at_checked(k)?;
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) + 1).collect();
    let flags = head[0];
    let config = ExportConfig {
        read_only: flags & 2 != 0,
        trim: flags & 4 != 0,
        description: "fuzz memory LU".into(),
        ..ExportConfig::new("fuzz")
    };
    let export = Arc::new(Export::new(MemoryDevice::new(flags & 8 != 0), config));
    let pieces = chunks::cut(stream, &sizes);

    let outcome = RUNTIME.with(|rt| {
        rt.borrow().block_on(async {
            let (client, mut server) = tokio::io::duplex(16 * 1024);
            let (mut reader, mut writer) = tokio::io::split(client);
            // The sender lives as long as the server: no shutdown mid-input.
            let (_shutdown, watch) = tokio::sync::watch::channel(false);
            let serve = async move {
                let ended = match negotiate(&mut server, &export).await {
                    Ok(Negotiated::Transmission { structured }) => {
                        match riscsi_nbd::connection::transmit(
                            &mut server,
                            export,
                            structured,
                            watch,
                        )
                        .await
                        {
                            Ok(()) => format!("transmission (structured {structured}) ended"),
                            Err(e) => format!("transmission failed: {e}"),
                        }
                    }
                    Ok(Negotiated::Ended) => "handshake ended".to_owned(),
                    Err(e) => format!("handshake failed: {e}"),
                };
                // Dropping our end is the client's EOF.
                drop(server);
                ended
            };
            let write = async move {
                for piece in pieces {
                    // The server may have hung up: then the rest is moot.
                    if writer.write_all(piece).await.is_err() {
                        return;
                    }
                }
                let _ = writer.shutdown().await;
            };
            let read = async move {
                let mut total = 0usize;
                let mut scratch = vec![0u8; 16 * 1024];
                while let Ok(n) = reader.read(&mut scratch).await {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                total
            };
            tokio::time::timeout(BOUND, async {
                let (ended, (), total) = tokio::join!(serve, write, read);
                (total, ended)
            })
            .await
        })
    });
    let Ok((total, ended)) = outcome else {
        panic!("the NBD server hung (no progress within {BOUND:?} of virtual time)");
    };
    // Per 16 input bytes (the smallest option or request is larger) at most
    // one reply, and none carries more than the whole LU plus a header.
    let lu = (BLOCKS * u64::from(BLOCK)) as usize;
    let bound = 1024 + (stream.len() / 16 + 1) * (lu + 1024);
    assert!(total <= bound, "{total} bytes out for {} in", stream.len());
    Some((total, ended))
}

/// One input, by mode.
pub fn run(data: &[u8]) {
    match data.first() {
        Some(b) if b & 1 != 0 => {
            run_session(data);
        }
        Some(_) => run_decoder(data),
        None => {}
    }
}
