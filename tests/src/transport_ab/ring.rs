//! The io_uring side: each turn submits the queued `writev` and a `recv`
//! straight into the connection's receive buffer, and waits for both, in
//! one `io_uring_enter`.
//!
//! Unsafe because the kernel writes into memory the connection owns while
//! no Rust borrow covers it. What keeps that sound: no operation outlives
//! `turn`. It returns only once every operation it submitted has completed
//! (a timeout cancels them and waits for the cancellation), and inside it
//! the connection is not touched between the `recv`'s submission and its
//! completion, so its receive buffer cannot move or be freed meanwhile.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::BufMut;
use io_uring::{IoUring, opcode, types};
use iscsi_session::Connection;

use super::Wire;
use super::outq::{MAX_IOV, OutQueue};

const SEND: u64 = 1;
const RECV: u64 = 2;
const CANCEL: u64 = 3;

/// How long a cancelled operation may take to complete before the process
/// aborts rather than let the kernel write into freed memory.
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

pub struct RingWire {
    ring: IoUring,
    stream: TcpStream,
    out: OutQueue,
    syscalls: u64,
}

impl std::fmt::Debug for RingWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingWire")
            .field("syscalls", &self.syscalls)
            .finish()
    }
}

fn timespec(left: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(left.as_secs())
        .nsec(left.subsec_nanos())
}

/// With `deferred`, the setup io_uring's authors recommend for one thread
/// that submits and reaps: completion work runs when this thread enters the
/// kernel to wait (DEFER_TASKRUN, which needs SINGLE_ISSUER) instead of
/// interrupting it. Without, the default setup, to measure what they bring.
fn ring(deferred: bool) -> io::Result<IoUring> {
    if !deferred {
        return IoUring::new(8);
    }
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
}

impl RingWire {
    pub fn new(stream: TcpStream, deferred: bool) -> io::Result<Self> {
        // io_uring waits on the socket itself; a blocking descriptor keeps
        // it from ever handing EAGAIN back.
        stream.set_nonblocking(false)?;
        Ok(RingWire {
            ring: ring(deferred)?,
            stream,
            out: OutQueue::default(),
            syscalls: 0,
        })
    }

    /// Submits what is queued and waits for `want` completions or `until`;
    /// false when the time ran out first.
    fn enter(&mut self, want: usize, until: Option<Instant>) -> io::Result<bool> {
        self.syscalls += 1;
        let result = match until {
            Some(until) => {
                let ts = timespec(until.saturating_duration_since(Instant::now()));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submitter().submit_and_wait(want),
        };
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// Queues `entry`. A turn pushes at most four entries into a queue of
/// eight that the previous turn left empty, so this cannot fail; if it did,
/// returning would leave the entries pushed before it in the queue, to be
/// submitted by a later turn with pointers into a frame that is gone, so
/// the process aborts instead.
///
/// # Safety
///
/// As for `SubmissionQueue::push`: what `entry` points to must stay valid
/// until its completion is reaped.
unsafe fn push(ring: &mut IoUring, entry: &io_uring::squeue::Entry) {
    // SAFETY: passed on to the caller.
    if unsafe { ring.submission().push(entry) }.is_err() {
        eprintln!("transport_ab: the io_uring submission queue is full");
        std::process::abort();
    }
}

impl Wire for RingWire {
    fn turn(&mut self, conn: &mut Connection<u32>, until: Instant) -> io::Result<()> {
        let fd = types::Fd(self.stream.as_raw_fd());
        self.out.fill(conn);
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        if !self.out.is_empty() {
            count = self.out.slices(&mut slices);
        }
        if count > 0 {
            let writev = opcode::Writev::new(fd, slices.as_ptr().cast(), count as u32)
                .build()
                .user_data(SEND);
            // SAFETY: `slices` and the queue they borrow stay untouched
            // until the SEND completion is reaped below.
            unsafe { push(&mut self.ring, &writev) };
        }
        let mut buf = conn.receive_buffer();
        let chunk = buf.chunk_mut();
        let (target, asked) = (chunk.as_mut_ptr(), chunk.len());
        let recv = opcode::Recv::new(fd, target, asked as u32)
            .build()
            .user_data(RECV);
        // SAFETY: see the module's docs: the buffer stays where it is until
        // the RECV completion is reaped, before this function returns.
        unsafe { push(&mut self.ring, &recv) };

        let (mut sent, mut received, mut failure) = (None, None, None);
        let mut cancelled_at = None;
        while sent.is_none() && count > 0 || received.is_none() {
            let want = usize::from(sent.is_none() && count > 0) + usize::from(received.is_none());
            let limit = cancelled_at.map_or(until, |at: Instant| at + CANCEL_LIMIT);
            let in_time = match self.enter(want, Some(limit)) {
                Ok(in_time) => in_time,
                Err(e) => {
                    failure.get_or_insert(e);
                    false
                }
            };
            for cqe in self.ring.completion() {
                match cqe.user_data() {
                    SEND => sent = Some(cqe.result()),
                    RECV => received = Some(cqe.result()),
                    _ => {}
                }
            }
            let left = usize::from(sent.is_none() && count > 0) + usize::from(received.is_none());
            if !in_time && left > 0 {
                if cancelled_at.is_some() {
                    // The kernel may still write into the buffer.
                    eprintln!("transport_ab: an io_uring operation ignored its cancellation");
                    std::process::abort();
                }
                cancelled_at = Some(Instant::now());
                for op in [SEND, RECV] {
                    let cancel = opcode::AsyncCancel::new(op).build().user_data(CANCEL);
                    // SAFETY: a cancellation refers to no memory.
                    unsafe { push(&mut self.ring, &cancel) };
                }
            }
        }
        if let Some(n) = sent {
            if n < 0 && n != -libc::ECANCELED {
                failure.get_or_insert(io::Error::from_raw_os_error(-n));
            } else if n > 0 {
                self.out.consume(n as usize);
            }
        }
        match received {
            Some(n) if n > 0 => {
                let n = n as usize;
                // SAFETY: the kernel wrote `n <= asked` bytes at `target`,
                // the start of this same, unmoved chunk.
                unsafe { buf.advance_mut(n) };
                conn.handle_received(Instant::now());
            }
            Some(0) => {
                failure.get_or_insert(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the target closed the connection",
                ));
            }
            Some(n) if n == -libc::ECANCELED => {}
            Some(n) => {
                failure.get_or_insert(io::Error::from_raw_os_error(-n));
            }
            None => unreachable!("the loop ends with the RECV reaped"),
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn syscalls(&self) -> u64 {
        self.syscalls
    }
}
