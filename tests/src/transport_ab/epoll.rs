//! The epoll side, as the session driver uses it through tokio:
//! edge-triggered readiness, remembered between turns, so a read that fills
//! less than it asked means "drained" and the next turn waits in
//! `epoll_wait` instead of making a read that fails with EAGAIN.
//!
//! Unsafe because the system calls are made directly (tokio would add its
//! scheduler to what is measured): each call's pointers come from live
//! buffers borrowed for that call only.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use bytes::BufMut;
use iscsi_session::Connection;

use super::Wire;
use super::outq::{MAX_IOV, OutQueue};

#[derive(Debug)]
pub struct EpollWire {
    stream: TcpStream,
    epoll: OwnedFd,
    out: OutQueue,
    readable: bool,
    writable: bool,
    syscalls: u64,
}

impl EpollWire {
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        // SAFETY: no pointer argument; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `event` lives across the call.
        let r = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                &mut event,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EpollWire {
            stream,
            epoll,
            out: OutQueue::default(),
            readable: true,
            writable: true,
            syscalls: 0,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.writable && !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = self.out.slices(&mut slices);
            self.syscalls += 1;
            // SAFETY: IoSlice is ABI-compatible with iovec; the slices
            // borrow the queue, which is not touched during the call.
            let n = unsafe {
                libc::writev(
                    self.stream.as_raw_fd(),
                    slices.as_ptr().cast(),
                    count as libc::c_int,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.writable = false;
                    return Ok(());
                }
                return Err(e);
            }
            self.out.consume(n as usize);
        }
        Ok(())
    }

    /// Waits for readiness until `until`; false when the time ran out.
    fn wait(&mut self, until: Instant) -> io::Result<bool> {
        let left = until.saturating_duration_since(Instant::now());
        // Rounded up: a deadline is never woken for early and spun on.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        self.syscalls += 1;
        // SAFETY: `events` is writable for its length during the call.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(true)
            } else {
                Err(e)
            };
        }
        for event in &events[..n as usize] {
            let flags = event.events;
            if flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
                != 0
            {
                self.readable = true;
            }
            if flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                self.writable = true;
            }
        }
        Ok(n > 0)
    }
}

impl Wire for EpollWire {
    fn turn(&mut self, conn: &mut Connection<u32>, until: Instant) -> io::Result<()> {
        self.out.fill(conn);
        self.flush()?;
        loop {
            if !self.readable {
                if !self.wait(until)? {
                    return Ok(());
                }
                self.flush()?;
                continue;
            }
            let mut buf = conn.receive_buffer();
            let chunk = buf.chunk_mut();
            let asked = chunk.len();
            self.syscalls += 1;
            // SAFETY: `chunk` is `asked` writable bytes of the receive
            // buffer, borrowed for this call.
            let n =
                unsafe { libc::recv(self.stream.as_raw_fd(), chunk.as_mut_ptr().cast(), asked, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.readable = false;
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the target closed the connection",
                ));
            }
            let n = n as usize;
            // SAFETY: the kernel wrote `n <= asked` bytes there.
            unsafe { buf.advance_mut(n) };
            if n < asked {
                self.readable = false;
            }
            conn.handle_received(Instant::now());
            return Ok(());
        }
    }

    fn syscalls(&self) -> u64 {
        self.syscalls
    }
}
