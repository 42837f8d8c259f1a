//! The live controls and counters of a fault proxy, shared by a cheap clonable
//! handle and the proxy's tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyMode {
    /// Forward both ways (after any configured delay).
    Forward,
    /// Forward nothing either way and close nothing; new connections are accepted
    /// but get nothing, as behind a dead link.
    BlackHole,
    /// Reset every new connection as soon as it is accepted; existing ones go on.
    Refuse,
}

/// Mode and delay, as one watched value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub mode: ProxyMode,
    pub delay: Duration,
}

impl Settings {
    pub const NORMAL: Settings = Settings {
        mode: ProxyMode::Forward,
        delay: Duration::ZERO,
    };
}

/// Counters updated by the proxy tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub active: AtomicU64,
    pub resets: AtomicU64,
    pub to_target: AtomicU64,
    pub to_client: AtomicU64,
}

/// A snapshot of a proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted since start (refused ones included).
    pub accepted: u64,
    /// Connections reset right after accept in [`ProxyMode::Refuse`].
    pub refused: u64,
    /// Connections currently open.
    pub active: u64,
    /// Connections aborted with RST by [`ProxyControl::reset`].
    pub resets: u64,
    /// Bytes forwarded client -> target.
    pub bytes_to_target: u64,
    /// Bytes forwarded target -> client.
    pub bytes_to_client: u64,
}

/// Commands and counters of one proxy; clone it freely, use it from sync or async
/// code (nothing here blocks or awaits).
#[derive(Clone, Debug)]
pub struct ProxyControl {
    pub(crate) settings: Arc<watch::Sender<Settings>>,
    pub(crate) reset_epoch: Arc<watch::Sender<u64>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) listen: SocketAddr,
    pub(crate) target: SocketAddr,
    pub(crate) injections: Arc<super::inject::Injections>,
}

impl ProxyControl {
    pub(crate) fn new(listen: SocketAddr, target: SocketAddr) -> Self {
        ProxyControl {
            settings: Arc::new(watch::Sender::new(Settings::NORMAL)),
            reset_epoch: Arc::new(watch::Sender::new(0)),
            counters: Arc::new(Counters::default()),
            listen,
            target,
            injections: Arc::default(),
        }
    }

    /// Sends an Asynchronous Message (RFC 7143 §11.9) to the initiator as if
    /// the target had: e.g. `AsyncEvent::LogoutRequest` with parameter 3 the
    /// seconds allowed, or `AsyncEvent::DropConnection` with parameter 2
    /// Time2Wait. It goes out at the next PDU boundary of a connection.
    pub fn inject_async(&self, event: iscsi_proto::pdu::AsyncEvent, p1: u16, p2: u16, p3: u16) {
        self.injections.push(event, p1, p2, p3);
    }

    /// Where initiators connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The portal traffic is forwarded to.
    pub fn target_addr(&self) -> SocketAddr {
        self.target
    }

    /// Aborts every connection open now with a TCP RST on both sides (SO_LINGER
    /// 0). Connections accepted afterwards are not affected.
    pub fn reset(&self) {
        self.reset_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Stops forwarding both ways without closing anything, and leaves new
    /// connections hanging (accepted, never connected onward).
    pub fn black_hole(&self) {
        self.settings.send_modify(|s| s.mode = ProxyMode::BlackHole);
    }

    /// Resets new connections right after accepting them.
    pub fn refuse(&self) {
        self.settings.send_modify(|s| s.mode = ProxyMode::Refuse);
    }

    /// Adds `delay` before forwarding each chunk, in both directions.
    pub fn delay(&self, delay: Duration) {
        self.settings.send_modify(|s| s.delay = delay);
    }

    /// Back to plain forwarding: no black hole, no refusal, no delay. Data held by
    /// a black hole flows again.
    pub fn resume(&self) {
        self.settings.send_replace(Settings::NORMAL);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        self.settings.borrow().mode
    }

    /// The current per-chunk delay.
    pub fn current_delay(&self) -> Duration {
        self.settings.borrow().delay
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            bytes_to_target: c.to_target.load(Ordering::Relaxed),
            bytes_to_client: c.to_client.load(Ordering::Relaxed),
        }
    }

    /// Polls the counters until `condition` holds (true) or `timeout` passes
    /// (false). Blocking: for sync tests.
    pub fn wait_for(&self, timeout: Duration, condition: impl Fn(&ProxyStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(&self.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}
