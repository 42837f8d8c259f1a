//! An io_uring transport against epoll, on the same sans-IO connection
//! (`iscsi_session::Connection`) and the same loop: the only difference
//! between the two is how bytes reach and leave the socket. The
//! `transport_ab` example times them (`scripts/bench-transport`); the
//! `transport_ab` test checks what they read against the backing file.
//!
//! - [`Transport::Epoll`]: what the session driver does through tokio,
//!   without tokio: an edge-triggered epoll set, `writev` of the queued
//!   PDUs, `recv` straight into the connection's receive buffer (three
//!   system calls per command at queue depth 1).
//! - [`Transport::Uring`]: one `io_uring_enter` per turn submits the
//!   `writev` and the `recv` (into the same buffer) and waits for both; the
//!   ring is set up with SINGLE_ISSUER and DEFER_TASKRUN (completion work
//!   done when the loop waits, not by interrupting it);
//!   [`Transport::UringPlain`] without them.
//! - [`Transport::EpollNagle`]: the epoll wire with Nagle's algorithm left
//!   on (no TCP_NODELAY), to measure what the session's TCP_NODELAY buys.
//!
//! Written for reads: a turn waits for its sends, which a read workload's
//! 48-byte commands never make wait. The session keeps epoll
//! (BENCHMARKS.md says why).

mod epoll;
mod outq;
mod ring;

use std::io;
use std::net::TcpStream;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::Cdb;
use iscsi_session::{
    Command, CommandOutcome, Connection, ConnectionEvent, Direction, Portal, SessionConfig,
};

/// How bytes move between a connection and its socket.
pub trait Wire {
    /// Sends what `conn` has queued, waits for the socket (until `until` at
    /// the latest) and hands what it read to the connection.
    fn turn(&mut self, conn: &mut Connection<u32>, until: Instant) -> io::Result<()>;
    /// System calls made so far.
    fn syscalls(&self) -> u64;
}

/// Which [`Wire`] to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Epoll,
    EpollNagle,
    Uring,
    UringPlain,
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "epoll" => Ok(Transport::Epoll),
            "epoll-nagle" => Ok(Transport::EpollNagle),
            "uring" => Ok(Transport::Uring),
            "uring-plain" => Ok(Transport::UringPlain),
            other => Err(format!(
                "no transport {other:?} (epoll, epoll-nagle, uring or uring-plain)"
            )),
        }
    }
}

/// What went wrong, in one line.
pub type Failure = Box<dyn std::error::Error>;

/// A connected, logged-in connection on the chosen transport.
pub struct Path {
    pub conn: Connection<u32>,
    pub wire: Box<dyn Wire>,
}

impl std::fmt::Debug for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Path")
            .field("state", &self.conn.state())
            .finish()
    }
}

impl Path {
    /// Connects to `config.portal` and logs in.
    pub fn log_in(config: SessionConfig, transport: Transport) -> Result<Path, Failure> {
        let stream = connect(&config.portal, transport != Transport::EpollNagle)?;
        let wire: Box<dyn Wire> = match transport {
            Transport::Epoll | Transport::EpollNagle => Box::new(epoll::EpollWire::new(stream)?),
            Transport::Uring => Box::new(ring::RingWire::new(stream, true)?),
            Transport::UringPlain => Box::new(ring::RingWire::new(stream, false)?),
        };
        let conn = Connection::with_token(Arc::new(config), 0, Instant::now());
        let mut path = Path { conn, wire };
        path.drive(Duration::from_secs(15), |event| {
            Ok(matches!(event, ConnectionEvent::LoggedIn { .. }).then_some(()))
        })?;
        Ok(path)
    }

    /// One turn of the wire, then the connection's timers.
    pub fn turn(&mut self, until: Instant) -> Result<(), Failure> {
        let until = self.conn.poll_timeout().map_or(until, |t| t.min(until));
        self.wire.turn(&mut self.conn, until)?;
        if self
            .conn
            .poll_timeout()
            .is_some_and(|t| t <= Instant::now())
        {
            self.conn.handle_timeout(Instant::now());
        }
        Ok(())
    }

    /// Turns until `done` sees the event it waits for, for `limit` at most.
    fn drive<T>(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(ConnectionEvent<u32>) -> Result<Option<T>, Failure>,
    ) -> Result<T, Failure> {
        let give_up = Instant::now() + limit;
        loop {
            if Instant::now() >= give_up {
                return Err(format!("no answer within {limit:?}").into());
            }
            self.turn(give_up)?;
            while let Some(event) = self.conn.poll_event() {
                if let ConnectionEvent::Closed { error, .. } = event {
                    return Err(format!("connection closed: {error:?}").into());
                }
                if let Some(t) = done(event)? {
                    return Ok(t);
                }
            }
        }
    }

    /// Queues a command under `token`.
    pub fn submit(&mut self, command: Command, token: u32) -> Result<(), Failure> {
        self.conn
            .submit(command, token, Instant::now())
            .map(drop)
            .map_err(|refused| format!("command not accepted: {}", refused.error).into())
    }

    /// One command, waited for.
    pub fn command(&mut self, command: Command) -> Result<CommandOutcome, Failure> {
        self.submit(command, 0)?;
        self.drive(Duration::from_secs(30), |event| match event {
            ConnectionEvent::CommandComplete { result, .. } => {
                Ok(Some(result.map_err(|e| e.to_string())?))
            }
            _ => Ok(None),
        })
    }

    /// (blocks, block size), from READ CAPACITY(16).
    pub fn read_capacity(&mut self, lun: Lun) -> Result<(u64, u32), Failure> {
        let read = || {
            let cdb = Cdb::read_capacity16(32);
            Command::new(lun, cdb, Direction::Read { expected_len: 32 })
        };
        let mut outcome = self.command(read())?;
        // The first commands of a new session meet UNIT ATTENTIONs (power
        // on, reset): CHECK CONDITION until each has been reported once.
        for _ in 0..4 {
            if outcome.is_good() {
                break;
            }
            outcome = self.command(read())?;
        }
        let data = outcome.data.to_bytes();
        if !outcome.is_good() || data.len() < 12 {
            return Err(format!("READ CAPACITY(16) failed: status {:#x}", outcome.status).into());
        }
        let last = u64::from_be_bytes(data[..8].try_into()?);
        let size = u32::from_be_bytes(data[8..12].try_into()?);
        Ok((last + 1, size))
    }
}

fn connect(portal: &Portal, nodelay: bool) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect((portal.host.as_str(), portal.port))?;
    stream.set_nodelay(nodelay)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}
