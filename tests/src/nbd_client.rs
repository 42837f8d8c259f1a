//! A small blocking NBD client that speaks the wire protocol itself (fixed
//! newstyle, NBD_OPT_GO, simple or structured replies), for what the real
//! clients refuse to send: requests out of range, misaligned or oversized,
//! unknown commands, many requests in flight at a precise moment, garbage.
//!
//! It is written from the protocol document, not from the server's code, so
//! that it checks the server instead of agreeing with it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Protocol numbers (the NBD project's doc/proto.md names).
pub mod proto {
    #![allow(missing_docs)]
    pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
    pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
    pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
    pub const REQUEST_MAGIC: u32 = 0x2560_9513;
    pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
    pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;
    pub const FLAG_FIXED_NEWSTYLE: u16 = 1;
    pub const FLAG_NO_ZEROES: u16 = 2;
    pub const OPT_GO: u32 = 7;
    pub const OPT_STRUCTURED_REPLY: u32 = 8;
    pub const REP_ACK: u32 = 1;
    pub const REP_INFO: u32 = 3;
    pub const INFO_EXPORT: u16 = 0;
    pub const INFO_BLOCK_SIZE: u16 = 3;
    pub const FLAG_READ_ONLY: u16 = 1 << 1;
    pub const FLAG_SEND_TRIM: u16 = 1 << 5;
    pub const CMD_READ: u16 = 0;
    pub const CMD_WRITE: u16 = 1;
    pub const CMD_DISC: u16 = 2;
    pub const CMD_FLUSH: u16 = 3;
    pub const CMD_TRIM: u16 = 4;
    pub const CMD_CACHE: u16 = 5;
    pub const CMD_WRITE_ZEROES: u16 = 6;
    pub const CMD_FLAG_FUA: u16 = 1;
    pub const CMD_FLAG_NO_HOLE: u16 = 2;
    pub const REPLY_FLAG_DONE: u16 = 1;
    pub const REPLY_TYPE_NONE: u16 = 0;
    pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
    pub const REPLY_TYPE_OFFSET_HOLE: u16 = 2;
    pub const REPLY_TYPE_ERROR: u16 = (1 << 15) | 1;
    pub const REPLY_TYPE_ERROR_OFFSET: u16 = (1 << 15) | 2;
    pub const EPERM: u32 = 1;
    pub const EIO: u32 = 5;
    pub const EINVAL: u32 = 22;
    pub const ENOSPC: u32 = 28;
    pub const ESHUTDOWN: u32 = 108;
}

use proto::*;

/// How long one read or write on the socket may block.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A unix or TCP connection.
#[derive(Debug)]
pub enum NbdStream {
    /// `nbd+unix://`.
    Unix(UnixStream),
    /// `nbd://`.
    Tcp(TcpStream),
}

impl NbdStream {
    /// Connects to a unix socket, with blocking timeouts set.
    pub fn unix(path: &Path) -> io::Result<NbdStream> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(NbdStream::Unix(s))
    }

    /// Connects over TCP, with blocking timeouts set.
    pub fn tcp(addr: SocketAddr) -> io::Result<NbdStream> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(NbdStream::Tcp(s))
    }

    /// Another handle on the same socket.
    pub fn try_clone(&self) -> io::Result<NbdStream> {
        Ok(match self {
            NbdStream::Unix(s) => NbdStream::Unix(s.try_clone()?),
            NbdStream::Tcp(s) => NbdStream::Tcp(s.try_clone()?),
        })
    }

    /// Shuts down the writing half: the server sees EOF.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            NbdStream::Unix(s) => s.shutdown(Shutdown::Write),
            NbdStream::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Reads until EOF (or an error, e.g. a reset): whether the peer closed
    /// the connection within `timeout`, and the bytes it sent before.
    pub fn read_until_closed(&mut self, timeout: Duration) -> io::Result<(bool, Vec<u8>)> {
        match self {
            NbdStream::Unix(s) => s.set_read_timeout(Some(timeout))?,
            NbdStream::Tcp(s) => s.set_read_timeout(Some(timeout))?,
        }
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.read(&mut chunk) {
                Ok(0) => return Ok((true, got)),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok((false, got));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok((true, got)),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for NbdStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NbdStream::Unix(s) => s.read(buf),
            NbdStream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for NbdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NbdStream::Unix(s) => s.write(buf),
            NbdStream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What NBD_OPT_GO told about the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    /// Size in bytes.
    pub size: u64,
    /// Transmission flags.
    pub flags: u16,
    /// Minimum, preferred and maximum block sizes, when sent.
    pub block_sizes: Option<(u32, u32, u32)>,
}

/// One request's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's handle.
    pub handle: u64,
    /// 0, or the NBD error (an errno value).
    pub error: u32,
    /// A read's data.
    pub data: Vec<u8>,
    /// A structured error's message.
    pub message: String,
}

/// Reads in flight: handle -> (offset, length), so that replies can be
/// framed (simple replies do not carry their length).
type Pending = Arc<Mutex<HashMap<u64, (u64, u32)>>>;

/// The sending half of a connection.
#[derive(Debug)]
pub struct NbdSender {
    stream: NbdStream,
    pending: Pending,
    next_handle: u64,
}

/// The receiving half of a connection.
#[derive(Debug)]
pub struct NbdReceiver {
    stream: NbdStream,
    pending: Pending,
    structured: bool,
    /// Structured chunks of requests not done yet.
    partial: HashMap<u64, Reply>,
}

/// A connection in the transmission phase.
#[derive(Debug)]
pub struct NbdClient {
    /// What the server said about the export.
    pub info: ExportInfo,
    tx: NbdSender,
    rx: NbdReceiver,
}

impl NbdClient {
    /// Connects to `socket`, negotiates export `name` with NBD_OPT_GO
    /// (structured replies first when `structured`).
    pub fn unix(socket: &Path, name: &str, structured: bool) -> io::Result<NbdClient> {
        Self::negotiate(NbdStream::unix(socket)?, name, structured)
    }

    /// Like [`NbdClient::unix`], over TCP.
    pub fn tcp(addr: SocketAddr, name: &str, structured: bool) -> io::Result<NbdClient> {
        Self::negotiate(NbdStream::tcp(addr)?, name, structured)
    }

    /// The handshake on an open stream.
    pub fn negotiate(mut stream: NbdStream, name: &str, structured: bool) -> io::Result<NbdClient> {
        let (magic, opt, flags) = (
            read_u64(&mut stream)?,
            read_u64(&mut stream)?,
            read_u16(&mut stream)?,
        );
        if magic != NBDMAGIC || opt != IHAVEOPT {
            return Err(bad(format!(
                "not an NBD newstyle server: {magic:#x} {opt:#x}"
            )));
        }
        if flags & FLAG_FIXED_NEWSTYLE == 0 {
            return Err(bad("the server is not fixed newstyle"));
        }
        let client_flags = u32::from(flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
        stream.write_all(&client_flags.to_be_bytes())?;
        Self::negotiate_after_flags(stream, name, structured)
    }

    /// The option haggling part of the handshake, on a stream whose
    /// greeting and client flags were exchanged (fixed newstyle) by the
    /// caller, possibly with other options since.
    pub fn negotiate_after_flags(
        mut stream: NbdStream,
        name: &str,
        structured: bool,
    ) -> io::Result<NbdClient> {
        if structured {
            send_option(&mut stream, OPT_STRUCTURED_REPLY, &[])?;
            let (kind, data) = read_option_reply(&mut stream, OPT_STRUCTURED_REPLY)?;
            if kind != REP_ACK {
                return Err(bad(format!("STRUCTURED_REPLY refused: {kind:#x} {data:?}")));
            }
        }
        let mut go = Vec::new();
        go.extend_from_slice(&(name.len() as u32).to_be_bytes());
        go.extend_from_slice(name.as_bytes());
        go.extend_from_slice(&1u16.to_be_bytes());
        go.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        send_option(&mut stream, OPT_GO, &go)?;
        let mut export = None;
        let mut block_sizes = None;
        loop {
            let (kind, data) = read_option_reply(&mut stream, OPT_GO)?;
            match kind {
                REP_ACK => break,
                REP_INFO if data.len() >= 2 => {
                    let info = u16::from_be_bytes([data[0], data[1]]);
                    if info == INFO_EXPORT && data.len() == 12 {
                        let size = u64::from_be_bytes(data[2..10].try_into().expect("8 bytes"));
                        export = Some((size, u16::from_be_bytes([data[10], data[11]])));
                    } else if info == INFO_BLOCK_SIZE && data.len() == 14 {
                        let word = |at: usize| {
                            u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
                        };
                        block_sizes = Some((word(2), word(6), word(10)));
                    }
                }
                REP_INFO => return Err(bad("an empty NBD_REP_INFO")),
                error => {
                    return Err(bad(format!(
                        "GO refused with {error:#x}: {}",
                        String::from_utf8_lossy(&data)
                    )));
                }
            }
        }
        let (size, flags) = export.ok_or_else(|| bad("GO acknowledged without NBD_INFO_EXPORT"))?;
        let info = ExportInfo {
            size,
            flags,
            block_sizes,
        };
        Self::transmission(stream, info, structured)
    }

    /// A client on a stream already in the transmission phase (after
    /// NBD_OPT_EXPORT_NAME done by hand).
    pub fn from_transmission(stream: NbdStream, size: u64, structured: bool) -> NbdClient {
        let info = ExportInfo {
            size,
            flags: 0,
            block_sizes: None,
        };
        Self::transmission(stream, info, structured).expect("a socket handle")
    }

    fn transmission(
        stream: NbdStream,
        info: ExportInfo,
        structured: bool,
    ) -> io::Result<NbdClient> {
        let pending = Pending::default();
        Ok(NbdClient {
            info,
            tx: NbdSender {
                stream: stream.try_clone()?,
                pending: pending.clone(),
                next_handle: 1,
            },
            rx: NbdReceiver {
                stream,
                pending,
                structured,
                partial: HashMap::new(),
            },
        })
    }

    /// Sends one request; its handle.
    pub fn send(
        &mut self,
        command: u16,
        flags: u16,
        offset: u64,
        length: u32,
        data: &[u8],
    ) -> io::Result<u64> {
        self.tx.send(command, flags, offset, length, data)
    }

    /// Writes raw bytes on the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tx.send_bytes(bytes)
    }

    /// The next complete reply.
    pub fn receive(&mut self) -> io::Result<Reply> {
        self.rx.receive()
    }

    /// One request and its reply.
    pub fn call(
        &mut self,
        command: u16,
        flags: u16,
        offset: u64,
        length: u32,
        data: &[u8],
    ) -> io::Result<Reply> {
        let handle = self.send(command, flags, offset, length, data)?;
        let reply = self.receive()?;
        if reply.handle != handle {
            return Err(bad(format!(
                "reply for handle {} while only {handle} was asked",
                reply.handle
            )));
        }
        Ok(reply)
    }

    /// READ: the data, or the error number.
    pub fn read(&mut self, offset: u64, length: u32) -> io::Result<Result<Vec<u8>, u32>> {
        let reply = self.call(CMD_READ, 0, offset, length, &[])?;
        Ok(match reply.error {
            0 => Ok(reply.data),
            e => Err(e),
        })
    }

    /// WRITE with `flags` (FUA): 0 or the error number.
    pub fn write(&mut self, offset: u64, data: &[u8], flags: u16) -> io::Result<u32> {
        Ok(self
            .call(CMD_WRITE, flags, offset, data.len() as u32, data)?
            .error)
    }

    /// NBD_CMD_DISC, then the server closes the connection.
    pub fn disconnect(mut self) -> io::Result<()> {
        self.send(CMD_DISC, 0, 0, 0, &[])?;
        let _ = self.tx.stream.shutdown_write();
        Ok(())
    }

    /// The two halves, for a writer and a reader thread.
    pub fn into_split(self) -> (NbdSender, NbdReceiver) {
        (self.tx, self.rx)
    }
}

impl NbdSender {
    /// The handle the next request gets (they count up from 1).
    pub fn next_handle(&self) -> u64 {
        self.next_handle
    }

    /// Sends one request; its handle.
    pub fn send(
        &mut self,
        command: u16,
        flags: u16,
        offset: u64,
        length: u32,
        data: &[u8],
    ) -> io::Result<u64> {
        let handle = self.next_handle;
        self.next_handle += 1;
        if command == CMD_READ {
            self.pending
                .lock()
                .expect("pending reads")
                .insert(handle, (offset, length));
        }
        let mut header = Vec::with_capacity(28 + data.len().min(1 << 20));
        header.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        header.extend_from_slice(&flags.to_be_bytes());
        header.extend_from_slice(&command.to_be_bytes());
        header.extend_from_slice(&handle.to_be_bytes());
        header.extend_from_slice(&offset.to_be_bytes());
        header.extend_from_slice(&length.to_be_bytes());
        if data.len() <= 1 << 20 {
            header.extend_from_slice(data);
            self.stream.write_all(&header)?;
        } else {
            self.stream.write_all(&header)?;
            self.stream.write_all(data)?;
        }
        Ok(handle)
    }

    /// Writes raw bytes on the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Closes the sending half.
    pub fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown_write()
    }
}

impl NbdReceiver {
    /// The next complete reply (structured chunks gathered until DONE).
    pub fn receive(&mut self) -> io::Result<Reply> {
        loop {
            let magic = read_u32(&mut self.stream)?;
            match magic {
                SIMPLE_REPLY_MAGIC => {
                    let error = read_u32(&mut self.stream)?;
                    let handle = read_u64(&mut self.stream)?;
                    let read = self.pending.lock().expect("pending reads").remove(&handle);
                    let mut data = Vec::new();
                    if let (0, Some((_, length))) = (error, read) {
                        data = vec![0; length as usize];
                        self.stream.read_exact(&mut data)?;
                    }
                    return Ok(Reply {
                        handle,
                        error,
                        data,
                        message: String::new(),
                    });
                }
                STRUCTURED_REPLY_MAGIC if self.structured => {
                    if let Some(reply) = self.chunk()? {
                        return Ok(reply);
                    }
                }
                other => return Err(bad(format!("reply magic {other:#010x}"))),
            }
        }
    }

    /// One structured chunk; the reply once its last chunk came.
    fn chunk(&mut self) -> io::Result<Option<Reply>> {
        let flags = read_u16(&mut self.stream)?;
        let kind = read_u16(&mut self.stream)?;
        let handle = read_u64(&mut self.stream)?;
        let length = read_u32(&mut self.stream)? as usize;
        let mut payload = vec![0; length];
        self.stream.read_exact(&mut payload)?;
        let read = self
            .pending
            .lock()
            .expect("pending reads")
            .get(&handle)
            .copied();
        let reply = self.partial.entry(handle).or_insert_with(|| Reply {
            handle,
            error: 0,
            data: read.map_or_else(Vec::new, |(_, len)| vec![0; len as usize]),
            message: String::new(),
        });
        match kind {
            REPLY_TYPE_NONE => {}
            REPLY_TYPE_OFFSET_DATA | REPLY_TYPE_OFFSET_HOLE => {
                let (start, _) =
                    read.ok_or_else(|| bad(format!("data chunk for a non-read {handle}")))?;
                let offset = u64::from_be_bytes(
                    payload
                        .get(..8)
                        .ok_or_else(|| bad("short chunk"))?
                        .try_into()
                        .expect("8 bytes"),
                );
                let at = offset
                    .checked_sub(start)
                    .ok_or_else(|| bad("chunk before the request"))?
                    as usize;
                let (len, bytes) = if kind == REPLY_TYPE_OFFSET_DATA {
                    (payload.len() - 8, Some(&payload[8..]))
                } else {
                    let hole = payload.get(8..12).ok_or_else(|| bad("short hole chunk"))?;
                    (
                        u32::from_be_bytes(hole.try_into().expect("4 bytes")) as usize,
                        None,
                    )
                };
                let target = reply
                    .data
                    .get_mut(at..at + len)
                    .ok_or_else(|| bad("chunk beyond the request"))?;
                match bytes {
                    Some(b) => target.copy_from_slice(b),
                    None => target.fill(0),
                }
            }
            REPLY_TYPE_ERROR | REPLY_TYPE_ERROR_OFFSET => {
                if payload.len() < 6 {
                    return Err(bad("short error chunk"));
                }
                reply.error = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
                let len = u16::from_be_bytes([payload[4], payload[5]]) as usize;
                let message = payload
                    .get(6..6 + len)
                    .ok_or_else(|| bad("error message beyond the chunk"))?;
                reply.message = String::from_utf8_lossy(message).into_owned();
            }
            other => return Err(bad(format!("unknown chunk type {other}"))),
        }
        if flags & REPLY_FLAG_DONE == 0 {
            return Ok(None);
        }
        self.pending.lock().expect("pending reads").remove(&handle);
        let mut reply = self.partial.remove(&handle).expect("inserted above");
        if reply.error != 0 {
            reply.data.clear();
        }
        Ok(Some(reply))
    }

    /// The raw stream (to watch the server close it).
    pub fn stream_mut(&mut self) -> &mut NbdStream {
        &mut self.stream
    }
}

fn send_option(stream: &mut NbdStream, option: u32, data: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(16 + data.len());
    out.extend_from_slice(&IHAVEOPT.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    stream.write_all(&out)
}

fn read_option_reply(stream: &mut NbdStream, option: u32) -> io::Result<(u32, Vec<u8>)> {
    if read_u64(stream)? != REPLY_MAGIC {
        return Err(bad("bad option reply magic"));
    }
    let answered = read_u32(stream)?;
    if answered != option {
        return Err(bad(format!(
            "reply to option {answered}, expected {option}"
        )));
    }
    let kind = read_u32(stream)?;
    let length = read_u32(stream)?;
    if length > 1 << 20 {
        return Err(bad(format!("option reply of {length} bytes")));
    }
    let mut data = vec![0; length as usize];
    stream.read_exact(&mut data)?;
    Ok((kind, data))
}

/// The server's greeting: reads it and checks the magics (for tests that go
/// off-script right after it).
pub fn read_greeting(stream: &mut NbdStream) -> io::Result<u16> {
    if read_u64(stream)? != NBDMAGIC || read_u64(stream)? != IHAVEOPT {
        return Err(bad("not an NBD newstyle greeting"));
    }
    read_u16(stream)
}

fn read_u16(r: &mut impl Read) -> io::Result<u16> {
    let mut b = [0; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}
