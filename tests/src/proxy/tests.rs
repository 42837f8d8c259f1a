//! Each proxy mode proven against a local echo server.

use super::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Generous bound for things that must happen; never used as an upper bound on a
/// delay measurement.
const PATIENCE: Duration = Duration::from_secs(5);

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// Echoes every connection on its own thread; counts connections.
struct Echo {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Echo { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.listen_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends `msg` and reads the echo back.
fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).unwrap();
    let mut buf = vec![0; msg.len()];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Asserts nothing arrives on `stream` for [`QUIET`].
fn assert_silent(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
}

fn read_error_kind(stream: &mut TcpStream) -> ErrorKind {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(n) => panic!("expected an error, read {n} bytes"),
        Err(e) => e.kind(),
    }
}

#[test]
fn forwards_both_ways_and_counts() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    assert!(proxy.listen_addr().ip().is_loopback());
    assert_eq!(proxy.target_addr(), echo.addr);
    let mut client = connect(&proxy);
    assert_eq!(round_trip(&mut client, b"hello"), b"hello");
    assert!(proxy.wait_for(PATIENCE, |s| s.bytes_to_client == 5));
    let stats = proxy.stats();
    assert_eq!(
        (stats.accepted, stats.active, stats.bytes_to_target),
        (1, 1, 5)
    );
}

#[test]
fn half_close_is_forwarded() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut client = connect(&proxy);
    client.write_all(b"bye").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye");
    assert!(proxy.wait_for(PATIENCE, |s| s.active == 0));
}

#[test]
fn reset_is_seen_as_connection_reset() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut client = connect(&proxy);
    round_trip(&mut client, b"ping");
    proxy.reset();
    assert_eq!(read_error_kind(&mut client), ErrorKind::ConnectionReset);
    assert!(proxy.wait_for(PATIENCE, |s| s.resets == 1 && s.active == 0));
    // Only the connections open at the time are reset.
    let mut fresh = connect(&proxy);
    assert_eq!(round_trip(&mut fresh, b"again"), b"again");
}

#[test]
fn black_hole_holds_traffic_until_resume() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut old = connect(&proxy);
    round_trip(&mut old, b"warm");
    proxy.black_hole();
    assert_eq!(proxy.mode(), ProxyMode::BlackHole);

    old.write_all(b"lost?").unwrap();
    assert_silent(&mut old);
    // New connections are accepted but never reach the target.
    let mut new = connect(&proxy);
    new.write_all(b"new").unwrap();
    assert_silent(&mut new);
    assert_eq!(echo.connections(), 1);
    assert!(proxy.wait_for(PATIENCE, |s| s.accepted == 2));

    proxy.resume();
    let mut buf = [0u8; 5];
    old.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"lost?");
    let mut buf = [0u8; 3];
    new.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new");
    assert_eq!(echo.connections(), 2);
}

/// What a client sent into a black hole and then gave up on (reset) never
/// reaches the target when the black hole ends: a cut link drops it.
#[test]
fn black_hole_drops_what_a_reset_client_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let sink = sink.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    let proxy = FaultProxy::start(target).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut client = tokio::net::TcpStream::connect(proxy.listen_addr())
            .await
            .unwrap();
        client.write_all(b"before").await.unwrap();
        assert!(proxy.wait_for(PATIENCE, |s| s.bytes_to_target >= 6));
        proxy.black_hole();
        client.write_all(b"stale").await.unwrap();
        tokio::time::sleep(QUIET).await;
        // Reset, as an initiator that gave up on the connection does.
        client.set_zero_linger().unwrap();
        drop(client);
    });
    thread::sleep(QUIET);
    proxy.resume();
    thread::sleep(QUIET);
    assert_eq!(&received.lock().unwrap()[..], b"before");
}

#[test]
fn delay_adds_at_least_the_delay_each_way() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut client = connect(&proxy);
    round_trip(&mut client, b"warm");
    let delay = Duration::from_millis(100);
    proxy.delay(delay);
    assert_eq!(proxy.current_delay(), delay);
    let started = Instant::now();
    round_trip(&mut client, b"slow");
    // Lower bound only: one delay out, one back. Never assert an upper bound.
    assert!(
        started.elapsed() >= 2 * delay,
        "took {:?}",
        started.elapsed()
    );
    proxy.resume();
    assert_eq!(proxy.current_delay(), Duration::ZERO);
}

#[test]
fn refuse_resets_new_connections_only() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let mut existing = connect(&proxy);
    round_trip(&mut existing, b"one");
    proxy.refuse();
    let mut refused = connect(&proxy);
    assert_eq!(read_error_kind(&mut refused), ErrorKind::ConnectionReset);
    assert_eq!(proxy.stats().refused, 1);
    assert_eq!(round_trip(&mut existing, b"two"), b"two");
    proxy.resume();
    let mut fresh = connect(&proxy);
    assert_eq!(round_trip(&mut fresh, b"three"), b"three");
}

#[test]
fn unreachable_target_resets_the_client() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = FaultProxy::start(closed).unwrap();
    let mut client = connect(&proxy);
    assert_eq!(read_error_kind(&mut client), ErrorKind::ConnectionReset);
}

#[test]
fn drop_stops_listening_and_closes_connections() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let addr = proxy.listen_addr();
    let mut client = connect(&proxy);
    round_trip(&mut client, b"x");
    let control = proxy.control();
    drop(proxy);
    let mut buf = [0u8; 1];
    assert_eq!(client.read(&mut buf).unwrap(), 0, "connection not closed");
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    // A handle outliving the proxy is harmless.
    control.reset();
    control.black_hole();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_async_code() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr).unwrap();
    let control = proxy.control();
    let mut client = tokio::net::TcpStream::connect(proxy.listen_addr())
        .await
        .unwrap();
    client.write_all(b"async").await.unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"async");
    control.reset();
    let err = client.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    drop(proxy);
}
