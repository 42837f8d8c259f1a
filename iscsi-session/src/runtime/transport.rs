//! The TCP side of the driver: vectored writes of encoded PDUs (payloads are
//! never copied: small pieces are coalesced, large data segments go out as
//! the caller's `Bytes`) and reads straight into the buffer the connection
//! names.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::core::connection::Connection;
use crate::core::portal::Portal;

/// Data segments up to this size are copied into the coalescing buffer: one
/// small memcpy is cheaper than another iovec entry and allocation.
const COALESCE_MAX: usize = 4096;

/// iovec entries per write call (Linux allows 1024; 64 covers any burst).
const MAX_IOV: usize = 64;

#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    out: VecDeque<Bytes>,
    small: BytesMut,
    /// Bytes in `out`, not yet written.
    queued: usize,
}

impl Transport {
    /// Connects with a timeout; the error is a one-line reason.
    pub async fn connect(portal: &Portal, timeout: Duration) -> Result<Self, String> {
        let target = (portal.host.as_str(), portal.port);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {timeout:?}")),
        };
        // Commands are small and latency-bound: never wait for Nagle.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Transport {
            stream,
            out: VecDeque::new(),
            small: BytesMut::with_capacity(8192),
            queued: 0,
        })
    }

    /// Moves everything the connection wants to send into the write queue.
    pub fn queue_from<U>(&mut self, conn: &mut Connection<U>) {
        // Headers are encoded straight into the coalescing buffer.
        while let Some(pdu) = conn.poll_transmit_into(&mut self.small) {
            self.queued += pdu.len();
            if pdu.data.len() <= COALESCE_MAX {
                self.small.extend_from_slice(&pdu.data);
                self.small.extend_from_slice(pdu.trailer());
            } else {
                // Never empty: the header is in it.
                self.out.push_back(self.small.split().freeze());
                // Goes out after the data, with whatever follows it.
                self.small.extend_from_slice(pdu.trailer());
                self.out.push_back(pdu.data);
            }
        }
        if !self.small.is_empty() {
            self.out.push_back(self.small.split().freeze());
        }
    }

    /// Bytes waiting for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes as much as the socket takes without blocking.
    pub fn try_flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            // On the stack: no allocation per write.
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slice, chunk) in slices.iter_mut().zip(&self.out) {
                *slice = IoSlice::new(chunk);
                count += 1;
            }
            let mut written = match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            self.queued -= written;
            while written > 0 {
                let front = self
                    .out
                    .front_mut()
                    .expect("written bytes came from the queue");
                if written >= front.len() {
                    written -= front.len();
                    self.out.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        Ok(())
    }

    /// Reads what is available into the buffer the connection names, no
    /// more than it asks for (the rest of a long data segment goes straight
    /// into that segment's own buffer). `Ok(0)` means the peer closed (the
    /// connection never asks for zero bytes); `WouldBlock` is returned as
    /// `Ok(None)`.
    ///
    /// A read that fills less than was asked drained the socket: epoll is
    /// edge-triggered, so the read readiness is cleared then, without the
    /// extra read that would only fail with EAGAIN (one syscall in three at
    /// queue depth 1). tokio's own `poll_read` does the same; readiness
    /// that a new edge set meanwhile is kept, so no wake-up is lost.
    pub fn try_read<U>(&mut self, conn: &mut Connection<U>) -> io::Result<Option<usize>> {
        let mut buf = conn.receive_buffer();
        let asked = buf.remaining_mut();
        let mut got = 0;
        let stream = &self.stream;
        let read = stream.try_io(Interest::READABLE, || {
            got = stream.try_read_buf(&mut buf)?;
            if got > 0 && got < asked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(got)
        });
        match read {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(Some(got)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Closes with RST: bytes not yet written are discarded by the kernel
    /// rather than delivered whenever the network comes back. After a
    /// failure, commands handed back may be re-issued on another path, and
    /// a stale copy must not reach the target behind them.
    pub fn abort(&mut self) {
        self.out.clear();
        self.queued = 0;
        let _ = self.stream.set_zero_linger();
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.stream.writable().await
    }
}
