//! The server: listeners (a unix socket, mode 0600, by default; TCP on
//! loopback unless asked otherwise), one task per client, a bound on
//! clients and on handshakes (see `admission`), and a shutdown that stops
//! accepting and lets in-flight requests finish.

use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iscsi_session::BlockDevice;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admission::{Admission, Admitted, Ticket};
use crate::connection::transmit;
use crate::export::{Export, ExportConfig};
use crate::handshake::{Negotiated, negotiate};

/// A flood of refused or evicted connections logs one line per this much
/// time, with the count of those it did not log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding or preparing the socket failed.
    #[error("cannot listen on {at}: {source}")]
    Io {
        /// The address or path.
        at: String,
        /// What the system said.
        source: io::Error,
    },
    /// Another server answers on the socket path.
    #[error("{0} is in use by another server")]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// A non-loopback address without the explicit permission.
    #[error(
        "refusing to serve NBD on {0}: not a loopback address, and NBD has no authentication (allow it explicitly)"
    )]
    NotLoopback(SocketAddr),
}

/// A unix socket client that is neither our user nor root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing a unix socket client of uid {uid}{}: only uid {ours} (ours) and root are served",
    .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
)]
pub struct PeerRefused {
    /// The client's user.
    pub uid: u32,
    /// Its process, when the kernel says.
    pub pid: Option<i32>,
    /// Ours.
    pub ours: u32,
}

/// Checks who is at the other end of an accepted unix socket (SO_PEERCRED):
/// our own user or root, else [`PeerRefused`]. The socket file is mode 0600
/// already; this holds even when its mode or its directory's is loosened,
/// and names the intruder in the log. Returns the peer's uid and pid.
pub fn check_unix_peer(stream: &tokio::net::UnixStream) -> io::Result<(u32, Option<i32>)> {
    let cred = stream.peer_cred()?;
    let ours = nix::unistd::geteuid().as_raw();
    let (uid, pid) = (cred.uid(), cred.pid());
    if uid != ours && uid != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            PeerRefused { uid, pid, ours },
        ));
    }
    Ok((uid, pid))
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket; the file is removed when the listener is dropped.
    Unix {
        /// The listening socket.
        listener: UnixListener,
        /// Its path.
        path: PathBuf,
    },
    /// A TCP socket.
    Tcp(TcpListener),
}

impl Listener {
    /// A unix socket at `path` (see [`bind_unix_private`]); the file is
    /// removed when the listener is dropped.
    pub fn unix(path: &Path) -> Result<Listener, ListenError> {
        Ok(Listener::Unix {
            listener: bind_unix_private(path)?,
            path: path.to_owned(),
        })
    }

    /// A TCP listener on `addr`; only loopback addresses unless
    /// `allow_remote`.
    pub async fn tcp(addr: SocketAddr, allow_remote: bool) -> Result<Listener, ListenError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(ListenError::NotLoopback(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ListenError::Io {
                at: addr.to_string(),
                source,
            })?;
        Ok(Listener::Tcp(listener))
    }

    /// The NBD URI of export `name` on this listener. The name and the
    /// socket path are percent-encoded: a space, `?`, `#` or `%` in either
    /// would otherwise make a URI that clients cannot parse or that names
    /// another export or socket.
    pub fn uri(&self, name: &str) -> String {
        let name = percent_encode(name.as_bytes());
        match self {
            Listener::Unix { path, .. } => {
                let socket = percent_encode(path.as_os_str().as_bytes());
                format!("nbd+unix:///{name}?socket={socket}")
            }
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => format!("nbd://{addr}/{name}"),
                Err(_) => format!("nbd://?/{name}"),
            },
        }
    }
}

/// RFC 3986 percent-encoding of every byte but the unreserved characters
/// and `/` (kept for readable paths; clients decode both forms alike).
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a unix socket at `path`, mode 0600 from the start (bound under a
/// temporary name, restricted, then renamed into place). A stale socket left
/// by a dead server is replaced; a live one, or a file that is not a
/// socket, is an error.
pub fn bind_unix_private(path: &Path) -> Result<UnixListener, ListenError> {
    let io_err = |source| ListenError::Io {
        at: path.display().to_string(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ListenError::NotASocket(path.to_owned()));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ListenError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "socket".into());
    let temporary = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).map_err(io_err)?;
    let restricted = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = restricted {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_err(e));
    }
    Ok(listener)
}

/// An NBD server exporting one block device.
#[derive(Debug)]
pub struct NbdServer<B> {
    export: Arc<Export<B>>,
    shutdown: watch::Sender<bool>,
    admission: Arc<Admission>,
}

impl<B> NbdServer<B>
where
    B: BlockDevice + Send + Sync + 'static,
{
    /// A server for `device`.
    pub fn new(device: B, config: ExportConfig) -> Self {
        let admission = Admission::new(config.max_clients, config.max_handshakes);
        NbdServer {
            export: Arc::new(Export::new(device, config)),
            shutdown: watch::Sender::new(false),
            admission,
        }
    }

    /// The export's settings.
    pub fn config(&self) -> &ExportConfig {
        &self.export.config
    }

    /// The export (size, block sizes, transmission flags).
    pub fn export(&self) -> &Export<B> {
        &self.export
    }

    /// Clients connected now (those still negotiating included).
    pub fn clients(&self) -> usize {
        self.admission.clients()
    }

    /// Clients still in their handshake now.
    pub fn negotiating(&self) -> usize {
        self.admission.negotiating()
    }

    /// Accepts clients on `listeners` until [`NbdServer::shutdown`] is
    /// called, then waits (up to `drain`) for every client's in-flight
    /// requests to be answered.
    pub async fn run(&self, listeners: Vec<Listener>, drain: Duration) {
        let mut connections = JoinSet::new();
        let mut accepting = JoinSet::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Incoming>(16);
        for listener in listeners {
            let (tx, mut stop) = (tx.clone(), self.shutdown.subscribe());
            accepting.spawn(async move {
                let listener = listener;
                loop {
                    let incoming = tokio::select! {
                        i = accept(&listener) => i,
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    match incoming {
                        Ok(i) => {
                            if tx.send(i).await.is_err() {
                                return;
                            }
                        }
                        // EMFILE and the like: back off instead of spinning.
                        Err(e) => {
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        drop(tx);
        let mut stop = self.shutdown.subscribe();
        let mut throttles = Throttles::default();
        loop {
            tokio::select! {
                incoming = rx.recv() => match incoming {
                    Some(incoming) => self.admit(incoming, &mut connections, &mut throttles),
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        accepting.abort_all();
        drop(rx);
        let drained = tokio::time::timeout(drain, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                left = connections.len(),
                "clients still busy after the drain timeout"
            );
            connections.abort_all();
        }
    }

    fn admit(&self, incoming: Incoming, connections: &mut JoinSet<()>, throttles: &mut Throttles) {
        let (stream, peer) = match incoming {
            Incoming::Client { stream, peer } => (stream, peer),
            Incoming::Refused(e) => {
                if let Some(skipped) = throttles.intruders.due() {
                    warn!(not_logged_since = skipped, "NBD: {e}");
                }
                return;
            }
        };
        let (max_clients, max_handshakes) = self.admission.limits();
        let (ticket, evict) = match self.admission.admit() {
            Admitted::Full => {
                // Dropping the stream closes it: the client reads EOF at once
                // instead of waiting on a connection nobody serves.
                if let Some(skipped) = throttles.refused.due() {
                    warn!(
                        %peer,
                        max_clients,
                        not_logged_since = skipped,
                        "NBD client turned away: {max_clients} clients are connected (the most allowed)"
                    );
                }
                return;
            }
            Admitted::Yes {
                ticket,
                evict,
                evicted: was_evicting,
            } => {
                if was_evicting && let Some(skipped) = throttles.evicted.due() {
                    warn!(
                        %peer,
                        max_handshakes,
                        not_logged_since = skipped,
                        "closed the oldest NBD client still in its handshake to make room \
                         ({max_handshakes} handshakes at once at most)"
                    );
                }
                (ticket, evict)
            }
        };
        let (export, shutdown) = (self.export.clone(), self.shutdown.subscribe());
        let span = info_span!("nbd client", %peer);
        connections.spawn(
            async move {
                match stream {
                    Stream::Unix(mut s) => {
                        serve_client(&mut s, export, shutdown, ticket, evict).await
                    }
                    Stream::Tcp(mut s) => {
                        let _ = s.set_nodelay(true);
                        serve_client(&mut s, export, shutdown, ticket, evict).await
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Serves one already-connected stream whose handshake is done elsewhere
    /// (the kernel's NBD driver speaks only the transmission phase).
    pub async fn serve_negotiated<S>(&self, stream: &mut S) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let _ticket = self.admission.admit_negotiated();
        transmit(
            stream,
            self.export.clone(),
            false,
            self.shutdown.subscribe(),
        )
        .await
    }

    /// Stops accepting; connections answer what is in flight (requests not
    /// started get ESHUTDOWN) and close.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve_client<S, B>(
    stream: &mut S,
    export: Arc<Export<B>>,
    shutdown: watch::Receiver<bool>,
    mut ticket: Ticket,
    evict: oneshot::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    B: BlockDevice,
{
    // A client still negotiating has nothing in flight: shutdown drops it
    // at once instead of letting it hold the drain for the handshake
    // timeout, and so does a newer connection that needs its slot.
    let mut stop = shutdown.clone();
    let timeout = export.config.handshake_timeout;
    let negotiated = tokio::select! {
        n = tokio::time::timeout(timeout, negotiate(stream, &export)) => n,
        _ = stop.wait_for(|s| *s) => {
            debug!("shutting down: dropping a client in its handshake");
            return;
        }
        _ = evict => {
            debug!("dropping a client in its handshake to make room for a newer one");
            return;
        }
    };
    let structured = match negotiated {
        Ok(Ok(Negotiated::Transmission { structured })) => structured,
        Ok(Ok(Negotiated::Ended)) => return,
        Ok(Err(e)) => {
            debug!(error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            debug!(?timeout, "handshake timed out");
            return;
        }
    };
    if !ticket.negotiated() {
        debug!("evicted as its handshake ended");
        return;
    }
    info!(structured, "client connected");
    match transmit(stream, export, structured, shutdown).await {
        Ok(()) => info!("client disconnected"),
        Err(e) => info!(error = %e, "client dropped"),
    }
}

/// One [`Throttle`] per kind of flood.
#[derive(Debug, Default)]
struct Throttles {
    /// Turned away: every slot taken.
    refused: Throttle,
    /// Oldest handshakes closed to make room.
    evicted: Throttle,
    /// Unix socket clients of another user.
    intruders: Throttle,
}

/// Rate limit for a warning that a flood would repeat: due at once, then
/// once per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttle {
    /// Whether to log now; if so, how many were not logged since the last.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            self.skipped += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

enum Incoming {
    Client {
        stream: Stream,
        peer: String,
    },
    /// A unix socket client of another user, closed already.
    Refused(io::Error),
}

async fn accept(listener: &Listener) -> io::Result<Incoming> {
    match listener {
        Listener::Unix { listener, .. } => {
            let (s, _) = listener.accept().await?;
            let peer = match check_unix_peer(&s) {
                Ok((uid, Some(pid))) => format!("unix uid {uid} pid {pid}"),
                Ok((uid, None)) => format!("unix uid {uid}"),
                Err(e) => return Ok(Incoming::Refused(e)),
            };
            Ok(Incoming::Client {
                stream: Stream::Unix(s),
                peer,
            })
        }
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            Ok(Incoming::Client {
                stream: Stream::Tcp(s),
                peer: peer.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_are_percent_encoded() {
        assert_eq!(percent_encode(b"vol-1_a.b~c/d"), "vol-1_a.b~c/d");
        assert_eq!(percent_encode(b"my vol?x=1#2%"), "my%20vol%3Fx%3D1%232%25");
        assert_eq!(percent_encode("é".as_bytes()), "%C3%A9");
        assert_eq!(percent_encode(b"\xff"), "%FF");
    }

    #[tokio::test]
    async fn our_own_user_passes_the_peer_check() {
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let (uid, pid) = check_unix_peer(&a).unwrap();
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
        assert_eq!(pid, Some(std::process::id() as i32));
    }

    #[test]
    fn a_refused_peer_is_named() {
        let e = PeerRefused {
            uid: 65534,
            pid: Some(42),
            ours: 0,
        };
        assert_eq!(
            e.to_string(),
            "refusing a unix socket client of uid 65534 (pid 42): only uid 0 (ours) and root are served"
        );
        let e = PeerRefused { pid: None, ..e };
        assert!(
            e.to_string()
                .starts_with("refusing a unix socket client of uid 65534: ")
        );
    }

    #[test]
    fn a_flood_logs_once_per_period_with_the_count_skipped() {
        let mut t = Throttle::default();
        assert_eq!(t.due(), Some(0), "the first is logged");
        for _ in 0..999 {
            assert_eq!(t.due(), None);
        }
        t.last = Some(Instant::now() - WARN_EVERY);
        assert_eq!(t.due(), Some(999), "then one line says how many were not");
        assert_eq!(t.due(), None);
    }

    #[tokio::test]
    async fn uris_name_the_listener_and_the_export() {
        let dir = std::env::temp_dir().join(format!("riscsi-nbd uri {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let unix = Listener::unix(&dir.join("a b.nbd")).unwrap();
        assert_eq!(
            unix.uri("x y"),
            format!(
                "nbd+unix:///x%20y?socket={}",
                percent_encode(dir.join("a b.nbd").as_os_str().as_bytes())
            )
        );
        assert!(unix.uri("").contains("%20b.nbd"), "{}", unix.uri(""));
        drop(unix);
        let _ = std::fs::remove_dir(&dir);
        let tcp = Listener::tcp("127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        let Listener::Tcp(l) = &tcp else { panic!() };
        let port = l.local_addr().unwrap().port();
        assert_eq!(tcp.uri("v#1"), format!("nbd://127.0.0.1:{port}/v%231"));
    }
}
