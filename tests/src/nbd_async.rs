//! An async NBD client for workloads (the fault verifier): fixed newstyle
//! handshake with NBD_OPT_GO, simple replies, requests pipelined and answered by handle. It measures
//! what a test needs (which request failed, with which errno) and nothing
//! else; a reference client (libnbd, the kernel) is used where conformance
//! matters.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::oneshot;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const INFO_EXPORT: u16 = 0;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
/// Every exchange of the handshake gets this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NbdError {
    /// The server answered with this errno.
    #[error("server error {0}")]
    Errno(u32),
    /// The connection broke before the answer.
    #[error("connection lost: {0}")]
    Disconnected(String),
}

/// An NBD export, connected.
#[derive(Debug, Clone)]
pub struct NbdClient {
    inner: Arc<Inner>,
    /// Export size in bytes.
    pub size: u64,
    /// Transmission flags.
    pub flags: u16,
}

struct Inner {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Mutex<Pending>,
    next: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdClient").finish_non_exhaustive()
    }
}

type Waiter = oneshot::Sender<Result<Bytes, NbdError>>;

#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, (Waiter, u32)>,
    /// Set once the reader stopped: every later request fails with it.
    broken: Option<String>,
}

impl NbdClient {
    /// Connects to a unix socket and opens `export`.
    pub async fn unix(socket: &Path, export: &str) -> io::Result<NbdClient> {
        let stream = tokio::net::UnixStream::connect(socket).await?;
        NbdClient::over(stream, export).await
    }

    /// Runs the handshake over `stream` and starts the reply reader.
    pub async fn over<S>(mut stream: S, export: &str) -> io::Result<NbdClient>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (size, flags) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut stream, export))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "NBD handshake timed out"))??;
        let (read, write) = tokio::io::split(stream);
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(Box::new(write)),
            pending: Mutex::new(Pending::default()),
            next: AtomicU64::new(1),
        });
        tokio::spawn(read_replies(read, inner.clone()));
        Ok(NbdClient { inner, size, flags })
    }

    async fn request(
        &self,
        command: u16,
        offset: u64,
        length: u32,
        data: &[u8],
    ) -> Result<Bytes, NbdError> {
        let handle = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.inner.pending.lock().unwrap();
            if let Some(why) = &pending.broken {
                return Err(NbdError::Disconnected(why.clone()));
            }
            let expect = if command == CMD_READ { length } else { 0 };
            pending.waiting.insert(handle, (tx, expect));
        }
        let mut msg = BytesMut::with_capacity(28 + data.len());
        msg.put_u32(REQUEST_MAGIC);
        msg.put_u16(0);
        msg.put_u16(command);
        msg.put_u64(handle);
        msg.put_u64(offset);
        msg.put_u32(length);
        msg.put_slice(data);
        {
            let mut w = self.inner.writer.lock().await;
            if let Err(e) = w.write_all(&msg).await {
                self.inner.pending.lock().unwrap().waiting.remove(&handle);
                return Err(NbdError::Disconnected(e.to_string()));
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(NbdError::Disconnected("reader gone".into())))
    }

    /// Reads `length` bytes at `offset`.
    pub async fn read(&self, offset: u64, length: u32) -> Result<Bytes, NbdError> {
        self.request(CMD_READ, offset, length, &[]).await
    }

    /// Writes `data` at `offset`.
    pub async fn write(&self, offset: u64, data: &[u8]) -> Result<(), NbdError> {
        self.request(CMD_WRITE, offset, data.len() as u32, data)
            .await
            .map(|_| ())
    }

    /// NBD_CMD_FLUSH.
    pub async fn flush(&self) -> Result<(), NbdError> {
        self.request(CMD_FLUSH, 0, 0, &[]).await.map(|_| ())
    }

    /// NBD_CMD_DISC (no answer comes).
    pub async fn disconnect(&self) {
        let mut msg = BytesMut::with_capacity(28);
        msg.put_u32(REQUEST_MAGIC);
        msg.put_u16(0);
        msg.put_u16(CMD_DISC);
        msg.put_u64(0);
        msg.put_u64(0);
        msg.put_u32(0);
        let mut w = self.inner.writer.lock().await;
        let _ = w.write_all(&msg).await;
        let _ = w.shutdown().await;
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    export: &str,
) -> io::Result<(u64, u16)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if s.read_u64().await? != NBDMAGIC || s.read_u64().await? != IHAVEOPT {
        return Err(bad("not a newstyle NBD server"));
    }
    let _server_flags = s.read_u16().await?;
    // Fixed newstyle, no zeroes.
    s.write_u32(0b11).await?;
    let mut opt = BytesMut::new();
    opt.put_u64(IHAVEOPT);
    opt.put_u32(OPT_GO);
    opt.put_u32(4 + export.len() as u32 + 2);
    opt.put_u32(export.len() as u32);
    opt.put_slice(export.as_bytes());
    opt.put_u16(0);
    s.write_all(&opt).await?;
    let (mut size, mut flags) = (None, 0);
    loop {
        if s.read_u64().await? != REPLY_MAGIC {
            return Err(bad("bad option reply magic"));
        }
        let _option = s.read_u32().await?;
        let kind = s.read_u32().await?;
        let len = s.read_u32().await?;
        if len > 1 << 20 {
            return Err(bad("option reply too large"));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).await?;
        match kind {
            REP_INFO
                if data.len() >= 12 && u16::from_be_bytes([data[0], data[1]]) == INFO_EXPORT =>
            {
                size = Some(u64::from_be_bytes(data[2..10].try_into().unwrap()));
                flags = u16::from_be_bytes([data[10], data[11]]);
            }
            REP_INFO => {}
            REP_ACK => break,
            err => {
                return Err(bad(&format!(
                    "NBD_OPT_GO refused ({err:#x}): {}",
                    String::from_utf8_lossy(&data)
                )));
            }
        }
    }
    Ok((size.ok_or_else(|| bad("no export size"))?, flags))
}

async fn read_replies<R: AsyncRead + Unpin>(mut r: ReadHalf<R>, inner: Arc<Inner>)
where
    ReadHalf<R>: AsyncRead,
{
    let why = loop {
        let result = async {
            let magic = r.read_u32().await?;
            if magic != SIMPLE_REPLY_MAGIC {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad reply magic",
                ));
            }
            let error = r.read_u32().await?;
            let handle = r.read_u64().await?;
            let waiter = inner.pending.lock().unwrap().waiting.remove(&handle);
            let Some((tx, expect)) = waiter else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply for no request",
                ));
            };
            if error != 0 {
                let _ = tx.send(Err(NbdError::Errno(error)));
                return Ok(());
            }
            let mut data = vec![0u8; expect as usize];
            r.read_exact(&mut data).await?;
            let _ = tx.send(Ok(Bytes::from(data)));
            Ok(())
        }
        .await;
        if let Err(e) = result {
            break e.to_string();
        }
    };
    let mut pending = inner.pending.lock().unwrap();
    pending.broken = Some(why.clone());
    for (_, (tx, _)) in pending.waiting.drain() {
        let _ = tx.send(Err(NbdError::Disconnected(why.clone())));
    }
}
