//! Delay and loss on a link, netem-style, without `sch_netem` (this kernel
//! has none): an iptables rule in the namespace hands every packet arriving
//! on the link's namespace end to an NFQUEUE, and a thread of ours, whose
//! netlink socket lives in that namespace, drops a share of them at once and
//! lets the others through `delay` after they arrived. The kernel holds each
//! packet until its verdict, so TCP sees exactly what a netem qdisc on the
//! host end would do to it: a longer round trip, and losses it must repair.
//!
//! The netlink messages are built by hand (nfnetlink_queue, `linux/netfilter/
//! nfnetlink_queue.h`): bind a queue, copy metadata only, fail open when the
//! queue is full, then one verdict per packet.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use super::{Link, NETNS_DIR, TOOL_TIMEOUT, command_in};
use crate::error::{FixtureError, Result};
use crate::net::random_u64;

/// What an impaired link does to each packet the host sends over it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Added to every packet let through.
    pub delay: Duration,
    /// Share of packets dropped, 0.0 to 1.0.
    pub loss: f64,
}

impl Impairment {
    /// Every packet `delay` late.
    pub fn delay(delay: Duration) -> Self {
        Impairment { delay, loss: 0.0 }
    }

    /// `loss` (0.0 to 1.0) of the packets dropped.
    pub fn loss(loss: f64) -> Self {
        Impairment {
            delay: Duration::ZERO,
            loss,
        }
    }
}

/// What an impairment did, from its start to its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairmentStats {
    /// Packets that went through the queue.
    pub packets: u64,
    /// Of those, dropped.
    pub dropped: u64,
}

/// nfnetlink subsystem of the queue (`NFNL_SUBSYS_QUEUE`).
const SUBSYS_QUEUE: u16 = 3;
const MSG_PACKET: u16 = SUBSYS_QUEUE << 8;
const MSG_VERDICT: u16 = (SUBSYS_QUEUE << 8) | 1;
const MSG_CONFIG: u16 = (SUBSYS_QUEUE << 8) | 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// Attribute types (`NFQA_*`, `NFQA_CFG_*`).
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// Packets the kernel may hold for us (its default, 1024, is a few hundred
/// milliseconds of a busy iSCSI connection).
const QUEUE_MAXLEN: u32 = 65536;
/// Our socket's receive buffer: packet notices we miss are packets held
/// until the queue closes.
const RCVBUF: usize = 16 << 20;
/// The longest sleep of the verdict loop (how fast it notices a stop).
const TICK: Duration = Duration::from_millis(20);

/// A running impairment of one link: the rule and the verdict thread.
#[derive(Debug)]
pub(crate) struct Shaper {
    settings: Arc<Mutex<Impairment>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<ImpairmentStats>>>,
    /// The namespace's name (not a handle: the namespace owns its shapers).
    ns: String,
    rule: Vec<String>,
}

impl Shaper {
    /// Binds NFQUEUE `queue` in `ns`, then sends the packets arriving on
    /// `link`'s namespace end to it.
    pub fn start(ns: &str, link: &Link, queue: u16, impairment: Impairment) -> Result<Shaper> {
        if !(0.0..=1.0).contains(&impairment.loss) {
            return Err(FixtureError::InvalidConfig(format!(
                "loss is a share from 0 to 1, not {}",
                impairment.loss
            )));
        }
        // Checked before the thread: a missing iptables fails with its package.
        let iptables = command_in(ns, "iptables")?;
        let settings = Arc::new(Mutex::new(impairment));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = channel();
        let path = PathBuf::from(NETNS_DIR).join(ns);
        let thread = thread::Builder::new()
            .name(format!("nfqueue-{ns}-{queue}"))
            .spawn({
                let (settings, stop) = (settings.clone(), stop.clone());
                move || serve(path, queue, settings, stop, ready)
            })
            .map_err(|e| FixtureError::io("cannot start the NFQUEUE thread", e))?;
        let mut shaper = Shaper {
            settings,
            stop,
            thread: Some(thread),
            ns: ns.to_owned(),
            rule: Vec::new(),
        };
        let failed = |problem: String| FixtureError::Netns {
            name: ns.to_owned(),
            problem,
        };
        match started.recv_timeout(TOOL_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(failed(format!("cannot bind NFQUEUE {queue}: {e}"))),
            Err(_) => return Err(failed(format!("NFQUEUE {queue} not bound in time"))),
        }
        let rule: Vec<String> = [
            "INPUT",
            "-i",
            &link.target_if,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue.to_string(),
            // Without a listener (ours gone), packets pass instead of dropping.
            "--queue-bypass",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        iptables
            .args(["-w", "5", "-I"])
            .args(rule.iter().cloned())
            .run_ok(TOOL_TIMEOUT)?;
        shaper.rule = rule;
        Ok(shaper)
    }

    /// Changes what the link does (`tc qdisc change`): packets already held
    /// keep the delay they were given.
    pub fn change(&self, impairment: Impairment) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = impairment;
    }

    /// Removes the rule, lets every held packet through and ends the thread.
    pub fn stop(mut self) -> Result<ImpairmentStats> {
        self.finish()
    }

    fn finish(&mut self) -> Result<ImpairmentStats> {
        let removed = if self.rule.is_empty() {
            Ok(())
        } else {
            let rule = std::mem::take(&mut self.rule);
            command_in(&self.ns, "iptables")
                .and_then(|c| c.args(["-w", "5", "-D"]).args(rule).run_ok(TOOL_TIMEOUT))
                .map(drop)
        };
        self.stop.store(true, Ordering::Relaxed);
        let stats = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(stats))) => Ok(stats),
            Some(Ok(Err(e))) => Err(FixtureError::io("the NFQUEUE thread failed", e)),
            Some(Err(_)) => Err(FixtureError::Netns {
                name: self.ns.clone(),
                problem: "the NFQUEUE thread panicked".into(),
            }),
            None => Ok(ImpairmentStats::default()),
        };
        removed.and(stats)
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The verdict thread: enters the namespace, binds the queue, reports on
/// `ready`, then serves until `stop`.
fn serve(
    ns_path: PathBuf,
    queue: u16,
    settings: Arc<Mutex<Impairment>>,
    stop: Arc<AtomicBool>,
    ready: Sender<io::Result<()>>,
) -> io::Result<ImpairmentStats> {
    let mut q = match enter(&ns_path).and_then(|()| Queue::open(queue)) {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(ImpairmentStats::default());
        }
    };
    let mut stats = ImpairmentStats::default();
    let mut held: VecDeque<(Instant, u32)> = VecDeque::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let now = Instant::now();
        while let Some(&(due, id)) = held.front() {
            if due > now && !stopping {
                break;
            }
            q.verdict(id, NF_ACCEPT)?;
            held.pop_front();
        }
        if stopping {
            return Ok(stats);
        }
        let wait = held
            .front()
            .map_or(TICK, |(due, _)| due.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), TICK);
        let arrived = q.receive(&mut buf, wait)?;
        let Impairment { delay, loss } = *settings.lock().unwrap_or_else(|e| e.into_inner());
        let arrival = Instant::now();
        for id in arrived {
            stats.packets += 1;
            // A uniform draw in [0, 1).
            if (random_u64() >> 11) as f64 / (1u64 << 53) as f64 > loss {
                if delay.is_zero() && held.is_empty() {
                    q.verdict(id, NF_ACCEPT)?;
                } else {
                    held.push_back((arrival + delay, id));
                }
            } else {
                stats.dropped += 1;
                q.verdict(id, NF_DROP)?;
            }
        }
    }
}

/// Moves this thread (only this one: network namespaces are per thread) into
/// the namespace at `path`, so the sockets it opens live there.
fn enter(path: &PathBuf) -> io::Result<()> {
    let file = File::open(path)?;
    setns(file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// A netlink socket bound to one NFQUEUE.
struct Queue {
    fd: OwnedFd,
    queue: u16,
    seq: u32,
}

impl Queue {
    fn open(queue: u16) -> io::Result<Queue> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        // Root may exceed rmem_max; fall back to what the limit allows.
        if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            setsockopt(&fd, sockopt::RcvBuf, &RCVBUF)?;
        }
        let mut q = Queue { fd, queue, seq: 0 };
        q.configure(&[(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])])?;
        let mut params = 0u32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        q.configure(&[
            (NFQA_CFG_PARAMS, &params),
            (NFQA_CFG_QUEUE_MAXLEN, &QUEUE_MAXLEN.to_be_bytes()),
            (NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
            (NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
        ])?;
        Ok(q)
    }

    /// A config message, acknowledged by the kernel.
    fn configure(&mut self, attrs: &[(u16, &[u8])]) -> io::Result<()> {
        self.seq += 1;
        let seq = self.seq;
        self.send(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs)?;
        let mut buf = vec![0u8; 8192];
        let deadline = Instant::now() + TOOL_TIMEOUT;
        while Instant::now() < deadline {
            setsockopt(&self.fd, sockopt::ReceiveTimeout, &timeval(TICK))?;
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e.into()),
            };
            for (kind, msg_seq, payload) in messages(&buf[..n]) {
                if kind == NLMSG_ERROR && msg_seq == seq {
                    let code = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer to an NFQUEUE config message",
        ))
    }

    fn verdict(&mut self, id: u32, verdict: u32) -> io::Result<()> {
        let mut hdr = verdict.to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        self.send(MSG_VERDICT, NLM_F_REQUEST, &[(NFQA_VERDICT_HDR, &hdr)])
    }

    /// Packet ids that arrived within `wait`, in arrival order.
    fn receive(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Vec<u32>> {
        setsockopt(&self.fd, sockopt::ReceiveTimeout, &timeval(wait))?;
        let n = match recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
            Ok(n) => n,
            // Timeout; or notices lost to a full buffer: those packets stay
            // held until the queue closes, and TCP retransmits them.
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(messages(&buf[..n])
            .filter(|(kind, _, _)| *kind == MSG_PACKET)
            .filter_map(|(_, _, payload)| packet_id(payload))
            .collect())
    }

    /// One nfnetlink message to the kernel: header, nfgenmsg, attributes.
    fn send(&mut self, kind: u16, flags: u16, attrs: &[(u16, &[u8])]) -> io::Result<()> {
        let mut msg = Vec::with_capacity(64);
        msg.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, the queue number (big endian).
        msg.extend_from_slice(&[0, 0]);
        msg.extend_from_slice(&self.queue.to_be_bytes());
        for (kind, value) in attrs {
            let len = 4 + value.len();
            msg.extend_from_slice(&(len as u16).to_ne_bytes());
            msg.extend_from_slice(&kind.to_ne_bytes());
            msg.extend_from_slice(value);
            msg.resize(align4(msg.len()), 0);
        }
        let len = msg.len() as u32;
        msg[..4].copy_from_slice(&len.to_ne_bytes());
        sendto(
            self.fd.as_raw_fd(),
            &msg,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        Ok(())
    }
}

fn timeval(d: Duration) -> TimeVal {
    TimeVal::new(d.as_secs() as _, d.subsec_micros() as _)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages in `buf`: (type, sequence number, payload after the
/// 16-byte header).
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let header = buf.get(offset..offset + 16)?;
        let len = u32::from_ne_bytes(header[..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(header[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(header[8..12].try_into().ok()?);
        let payload = buf.get(offset + 16..offset + len)?;
        offset += align4(len.max(16));
        Some((kind, seq, payload))
    })
}

/// The packet id of an `NFQNL_MSG_PACKET` payload (after its nfgenmsg).
fn packet_id(payload: &[u8]) -> Option<u32> {
    let mut attrs = payload.get(4..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes(attrs[..2].try_into().ok()?) as usize;
        // The top two bits are flags (nested, network byte order).
        let kind = u16::from_ne_bytes(attrs[2..4].try_into().ok()?) & 0x3fff;
        if len < 4 {
            return None;
        }
        if kind == NFQA_PACKET_HDR {
            return attrs
                .get(4..8)
                .map(|id| u32::from_be_bytes(id.try_into().expect("4 bytes")));
        }
        attrs = attrs.get(align4(len)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_are_found_among_attributes() {
        // nfgenmsg, then a 12-byte attribute of another type, then the
        // packet header (id 0x01020304, hw protocol, hook: 7 bytes + pad).
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(&12u16.to_ne_bytes());
        payload.extend_from_slice(&9u16.to_ne_bytes());
        payload.extend_from_slice(&[0; 8]);
        payload.extend_from_slice(&11u16.to_ne_bytes());
        payload.extend_from_slice(&NFQA_PACKET_HDR.to_ne_bytes());
        payload.extend_from_slice(&[1, 2, 3, 4, 8, 0, 1, 0]);
        assert_eq!(packet_id(&payload), Some(0x0102_0304));
        assert_eq!(packet_id(&payload[..16]), None);
    }

    #[test]
    fn messages_split_a_buffer() {
        let mut buf = Vec::new();
        for (kind, seq, body) in [(2u16, 7u32, &[1u8, 2, 3][..]), (5, 8, &[][..])] {
            let len = 16 + body.len();
            buf.extend_from_slice(&(len as u32).to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(&0u16.to_ne_bytes());
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(body);
            buf.resize(align4(buf.len()), 0);
        }
        let got: Vec<_> = messages(&buf).collect();
        assert_eq!(got, [(2, 7, &[1u8, 2, 3][..]), (5, 8, &[][..])]);
    }
}
