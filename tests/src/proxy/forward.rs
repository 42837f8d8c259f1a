//! Forwarding one proxied connection, obeying the live controls.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::sleep;

use super::control::{Counters, ProxyControl, ProxyMode, Settings};
use super::inject::{Injections, PduBoundaries};

/// Largest chunk read and forwarded at once (one delay per chunk).
const CHUNK: usize = 64 * 1024;

/// How a connection ended.
enum Outcome {
    /// Both directions closed cleanly (FIN forwarded each way).
    Finished,
    /// One side failed (e.g. reset by its peer): abort the other too.
    Failed,
    /// [`ProxyControl::reset`] was called.
    Reset,
}

/// Keeps the `active` counter right however the task ends (cancellation included).
struct Active<'a>(&'a Counters);

impl<'a> Active<'a> {
    fn new(counters: &'a Counters) -> Self {
        counters.active.fetch_add(1, Ordering::Relaxed);
        Active(counters)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes `stream` with RST instead of FIN.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Resolves when a reset is requested; never if the control is gone.
async fn reset_requested(resets: &mut watch::Receiver<u64>) {
    if resets.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves once traffic may flow (not black-holed); fails if the proxy stopped.
async fn flowing(settings: &mut watch::Receiver<Settings>) -> io::Result<()> {
    settings
        .wait_for(|s| s.mode != ProxyMode::BlackHole)
        .await
        .map(|_| ())
        .map_err(|_| io::Error::other("proxy stopped"))
}

/// As [`flowing`]; after a black hole, fails if `from` was reset meanwhile.
/// A cut link drops what a sender that gave up had in flight: forwarding it
/// when the link returns would deliver it long after its sender aborted the
/// connection (and, for an initiator, after it re-issued those commands on
/// another path), which no real network does.
async fn flowing_from(
    settings: &mut watch::Receiver<Settings>,
    from: &ReadHalf<'_>,
) -> io::Result<()> {
    let held = settings.borrow().mode == ProxyMode::BlackHole;
    flowing(settings).await?;
    if held && let Ok(Some(e)) = from.as_ref().take_error() {
        return Err(e);
    }
    Ok(())
}

/// Proxies `client` to the target until both sides close, one fails, or a reset
/// is requested.
pub(crate) async fn serve(client: TcpStream, control: ProxyControl) {
    let counters = control.counters.clone();
    let _active = Active::new(&counters);
    let mut resets = control.reset_epoch.subscribe();
    resets.mark_unchanged();
    let mut settings = control.settings.subscribe();

    // A black hole holds new connections too: no onward connection yet.
    tokio::select! {
        ready = flowing(&mut settings) => if ready.is_err() { return },
        _ = reset_requested(&mut resets) => {
            counters.resets.fetch_add(1, Ordering::Relaxed);
            abort(client);
            return;
        }
    }
    let mut upstream = tokio::select! {
        connected = TcpStream::connect(control.target) => match connected {
            Ok(stream) => stream,
            Err(_) => {
                // Target down: the client sees what it would see at the portal.
                abort(client);
                return;
            }
        },
        _ = reset_requested(&mut resets) => {
            counters.resets.fetch_add(1, Ordering::Relaxed);
            abort(client);
            return;
        }
    };
    let mut client = client;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let outcome = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let up = pump(
            client_read,
            upstream_write,
            settings.clone(),
            &counters.to_target,
        );
        let down = pump_down(
            upstream_read,
            client_write,
            settings,
            &counters.to_client,
            &control.injections,
        );
        run_both(up, down, &mut resets).await
    };
    match outcome {
        Outcome::Finished => {}
        Outcome::Failed => {
            abort(client);
            abort(upstream);
        }
        Outcome::Reset => {
            counters.resets.fetch_add(1, Ordering::Relaxed);
            abort(client);
            abort(upstream);
        }
    }
}

/// Drives both directions until both finish, one fails, or a reset comes.
async fn run_both(
    up: impl Future<Output = io::Result<()>>,
    down: impl Future<Output = io::Result<()>>,
    resets: &mut watch::Receiver<u64>,
) -> Outcome {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            result = &mut up, if !up_done => match result {
                Ok(()) => up_done = true,
                Err(_) => return Outcome::Failed,
            },
            result = &mut down, if !down_done => match result {
                Ok(()) => down_done = true,
                Err(_) => return Outcome::Failed,
            },
            _ = reset_requested(resets) => return Outcome::Reset,
        }
    }
    Outcome::Finished
}

/// Copies one direction chunk by chunk, waiting out black holes and delays, and
/// forwards the end of stream as a half-close.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut settings: watch::Receiver<Settings>,
    forwarded: &AtomicU64,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        flowing_from(&mut settings, &from).await?;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        let delay = settings.borrow().delay;
        if !delay.is_zero() {
            sleep(delay).await;
        }
        // A black hole that started meanwhile also holds data already read.
        flowing_from(&mut settings, &from).await?;
        to.write_all(&buf[..n]).await?;
        forwarded.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The target-to-initiator direction: as [`pump`], and Asynchronous
/// Messages queued with `ProxyControl::inject_async` go out at the next PDU
/// boundary (at once when the stream is idle at one).
async fn pump_down(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut settings: watch::Receiver<Settings>,
    forwarded: &AtomicU64,
    injections: &Injections,
) -> io::Result<()> {
    let mut boundaries = PduBoundaries::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        flowing_from(&mut settings, &from).await?;
        if boundaries.at_boundary() {
            while let Some(message) = injections.pop(&boundaries) {
                to.write_all(&message).await?;
            }
        }
        let idle_at_boundary = boundaries.at_boundary();
        let n = tokio::select! {
            n = from.read(&mut buf) => n?,
            _ = injections.notify.notified(), if idle_at_boundary => continue,
        };
        if n == 0 {
            return to.shutdown().await;
        }
        let delay = settings.borrow().delay;
        if !delay.is_zero() {
            sleep(delay).await;
        }
        flowing_from(&mut settings, &from).await?;
        let mut chunk = &buf[..n];
        if !injections.is_empty()
            && let Some(k) = boundaries.to_boundary(chunk)
        {
            to.write_all(&chunk[..k]).await?;
            boundaries.feed(&chunk[..k]);
            chunk = &chunk[k..];
            while let Some(message) = injections.pop(&boundaries) {
                to.write_all(&message).await?;
            }
        }
        to.write_all(chunk).await?;
        boundaries.feed(chunk);
        forwarded.fetch_add(n as u64, Ordering::Relaxed);
    }
}
