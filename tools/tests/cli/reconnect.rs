//! A connection cut in the middle of `riscsi copy`: the session logs in
//! again, replays what was in flight, and the copy completes intact.

use std::thread;
use std::time::{Duration, Instant};

use riscsi_tests::prelude::*;
use riscsi_tests::{ProxyStats, portal_string};

use crate::support::{Running, assert_same_bytes, payload, riscsi, write_file};

const LUN_SIZE: u64 = 16 << 20;
/// Cut once this much has gone through: well into the copy, far from its end.
const CUT_AFTER: u64 = 4 << 20;
/// Per chunk of up to 64 KiB, so the copy lasts most of a second however
/// fast the machine is.
const CHUNK_DELAY: Duration = Duration::from_millis(1);

/// Resets every connection through `proxy` once `moved` says enough went
/// through, while `copy` is still running.
fn cut_mid_copy(proxy: &FaultProxy, copy: &mut Running, moved: impl Fn(&ProxyStats) -> u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while moved(&proxy.stats()) < CUT_AFTER {
        assert!(
            !copy.has_exited(),
            "the copy ended before the cut: {:?}",
            proxy.stats()
        );
        assert!(Instant::now() < deadline, "no traffic: {:?}", proxy.stats());
        thread::sleep(Duration::from_millis(2));
    }
    proxy.reset();
}

/// The session came back on a new connection, and only once.
#[track_caller]
fn assert_reconnected_once(proxy: &FaultProxy) {
    let stats = proxy.stats();
    assert_eq!(stats.resets, 1, "{stats:?}");
    assert_eq!(stats.accepted, 2, "one login, one reconnect: {stats:?}");
}

fn fixture_behind_a_proxy(seed: u64) -> (Tgt, FaultProxy, String) {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(seed))
        .start()
        .unwrap();
    let proxy = FaultProxy::start(tgt.portals()[0]).unwrap();
    proxy.delay(CHUNK_DELAY);
    let url = format!(
        "iscsi://{}/{}/{}",
        portal_string(proxy.listen_addr()),
        tgt.iqn(),
        tgt.first_lun().number
    );
    (tgt, proxy, url)
}

#[test]
fn reading_copy_survives_a_connection_reset() {
    let (tgt, proxy, url) = fixture_behind_a_proxy(71);
    let mut copy = riscsi(["copy", &url, "-"]).spawn();
    cut_mid_copy(&proxy, &mut copy, |s| s.bytes_to_client);
    let out = copy.wait().success();
    let backing = tgt.first_lun().read_backing(0, LUN_SIZE as usize).unwrap();
    assert_same_bytes(&out.stdout, &backing, "copied volume");
    assert_reconnected_once(&proxy);
}

#[test]
fn writing_copy_survives_a_connection_reset() {
    let (tgt, proxy, url) = fixture_behind_a_proxy(72);
    let dir = tempfile::tempdir().unwrap();
    let data = payload(7, LUN_SIZE as usize);
    let image = write_file(&dir, "image", &data);
    let mut copy = riscsi(["copy", image.to_str().unwrap(), &url]).spawn();
    cut_mid_copy(&proxy, &mut copy, |s| s.bytes_to_target);
    copy.wait().success();
    let backing = tgt.first_lun().read_backing(0, LUN_SIZE as usize).unwrap();
    assert_same_bytes(&backing, &data, "volume after the copy");
    assert_reconnected_once(&proxy);
}
