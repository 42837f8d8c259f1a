//! The `Netns` fixture itself: tgtd in a namespace of its own, reached over
//! one veth pair per portal; a cut link times out (no RST, no refusal) and
//! comes back; an impaired link delays or drops what the host sends; and
//! nothing is left behind.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use riscsi_tests::prelude::*;
use riscsi_tests::{Impairment, Netns};

fn tgt_in(ns: &Netns) -> Tgt {
    let mut builder = Tgt::builder().netns(ns);
    for link in ns.links() {
        builder = builder.portal_ip(link.target_ip.into());
    }
    builder.start().expect("tgtd in the namespace")
}

fn connect(portal: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&portal, timeout)
}

fn host_has_interface(name: &str) -> bool {
    Path::new(&format!("/sys/class/net/{name}")).exists()
}

#[test]
fn portals_listen_in_the_namespace_on_their_own_links() {
    let ns = Netns::create(2).expect("network namespace");
    let tgt = tgt_in(&ns);
    assert_eq!(tgt.portals().len(), 2);
    for (portal, link) in tgt.portals().iter().zip(ns.links()) {
        assert_eq!(portal.ip(), link.target_ip);
        assert_eq!(portal.port(), 3260);
        connect(*portal, Duration::from_secs(5)).expect("portal reachable");
    }
    // tgtadm reaches the daemon from inside the namespace.
    let out = tgt
        .tgtadm(&["--op", "show", "--mode", "target"])
        .expect("tgtadm in the namespace");
    assert!(out.stdout.contains(&tgt.target().iqn), "{}", out.stdout);
}

#[test]
fn a_cut_link_is_silent_and_comes_back() {
    let ns = Netns::create(2).expect("network namespace");
    let tgt = tgt_in(&ns);
    let (main, other) = (tgt.portals()[0], tgt.portals()[1]);
    let mut established = connect(main, Duration::from_secs(5)).expect("main portal");
    ns.set_link(0, false).expect("cut");
    // No refusal and no reset: a connect times out, a read sees nothing.
    let started = Instant::now();
    let err = connect(main, Duration::from_secs(2)).expect_err("connect through a cut link");
    assert!(
        matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    established
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let read = established.read(&mut [0u8; 16]);
    assert!(
        matches!(&read, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{read:?}"
    );
    // The other link does not care.
    connect(other, Duration::from_secs(5)).expect("other portal");
    ns.set_link(0, true).expect("restore");
    // The host's ARP entry for the portal may have failed during the cut: a
    // connect can then be told "no route to host" until it resolves again,
    // as after a real cable pull.
    let restored = Instant::now();
    loop {
        match connect(main, Duration::from_secs(2)) {
            Ok(_) => break,
            Err(e) if restored.elapsed() < Duration::from_secs(10) => {
                eprintln!("after {:?}: {e}", restored.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("main portal never came back: {e}"),
        }
    }
    eprintln!("main portal back after {:?}", restored.elapsed());
}

#[test]
fn an_impaired_link_delays_then_drops() {
    let ns = Netns::create(1).expect("network namespace");
    let tgt = tgt_in(&ns);
    let portal = tgt.portals()[0];
    ns.impair(0, Impairment::delay(Duration::from_millis(300)))
        .expect("delay");
    let started = Instant::now();
    connect(portal, Duration::from_secs(5)).expect("connect with a delay");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(280), "{took:?}");
    // Everything lost: a connect times out.
    ns.impair(0, Impairment::loss(1.0)).expect("change to loss");
    connect(portal, Duration::from_secs(1)).expect_err("connect through a lossy link");
    let stats = ns.clear(0).expect("clear");
    assert!(
        stats.dropped > 0 && stats.packets > stats.dropped,
        "{stats:?}"
    );
    // The fastest of a few connects, so a busy machine does not fake a delay.
    let fastest = (0..3)
        .map(|_| {
            let started = Instant::now();
            connect(portal, Duration::from_secs(5)).expect("connect after clear");
            started.elapsed()
        })
        .min()
        .unwrap();
    assert!(fastest < Duration::from_millis(100), "{fastest:?}");
}

#[test]
fn nothing_is_left_behind() {
    let ns = Netns::create(2).expect("network namespace");
    let name = ns.name().to_owned();
    let links = ns.links().to_vec();
    ns.impair(1, Impairment::loss(0.5)).expect("loss");
    let tgt = tgt_in(&ns);
    let pid = tgt.pid();
    assert!(Path::new(&format!("/run/netns/{name}")).exists());
    assert!(links.iter().all(|l| host_has_interface(&l.host_if)));
    // The daemon holds a handle: the namespace outlives it, then goes.
    drop(ns);
    assert!(Path::new(&format!("/run/netns/{name}")).exists());
    drop(tgt);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!Path::new(&format!("/run/netns/{name}")).exists());
    assert!(links.iter().all(|l| !host_has_interface(&l.host_if)));
}
