//! istgt configured to require digests (`UseDigest Header Data`), as a new
//! user first met it: it answers `Reject` to `HeaderDigest=None` and
//! `DataDigest=None` and frames its PDUs with digests anyway. riscsi's
//! default offer, `None,CRC32C`, lets it pick CRC32C, and the session carries
//! data intact under sustained and parallel I/O; an offer of None alone fails
//! the login at once with one line naming the key, instead of a session that
//! hangs. istgt answers each normal login after about a second, so these
//! tests keep logins few.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::text::Digest;
use iscsi_session::{
    BlockDevice, DigestPreference, Error, Portal, Session, SessionConfig, SessionLun,
};
use rand::{RngCore, SeedableRng};
use riscsi_tests::ExportedLun;
use riscsi_tests::prelude::*;

const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:istgt-digests";

fn config(portal: SocketAddr, iqn: &str) -> SessionConfig {
    let mut c = SessionConfig::new(Portal::from(portal), iqn, INITIATOR);
    c.timeouts.login = Duration::from_secs(10);
    c.timeouts.command = Duration::from_secs(20);
    c
}

fn istgt_requiring_digests(seed: u64) -> Istgt {
    Istgt::builder()
        .use_digest("Header Data")
        .lun(LunSpec::new(32 << 20).pattern(seed))
        .start()
        .unwrap()
}

fn random(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    Bytes::from(data)
}

/// Writes `len` random bytes at `block`, reads them back, and checks the
/// backing file after a flush.
async fn write_and_verify(lun: &SessionLun, exported: &ExportedLun, block: u64, len: usize) {
    let bs = lun.geometry().block_size as usize;
    let data = random(len, block);
    lun.write(block, data.clone(), false).await.unwrap();
    let back = lun.read(block, (len / bs) as u32).await.unwrap().to_bytes();
    assert!(back == data, "read back differs ({len} bytes at {block})");
    lun.flush().await.unwrap();
    let on_disk = exported.read_backing(block * bs as u64, len).unwrap();
    assert!(
        on_disk == data[..],
        "backing file differs ({len} bytes at {block})"
    );
}

/// UNH-IOL: Login #9.2, Login #9.3
#[tokio::test]
async fn the_default_offer_gets_crc32c_and_data_stays_intact() {
    let istgt = istgt_requiring_digests(12);
    let session = Session::connect(config(istgt.portals()[0], istgt.iqn()))
        .await
        .expect("login with the default digest offer");
    let params = session.params().unwrap();
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::Crc32c, Digest::Crc32c),
        "istgt picks CRC32C from None,CRC32C"
    );
    let lun = session.open_lun(0).await.unwrap();
    let exported = istgt.first_lun().clone();
    let data = lun.read(0, 256).await.unwrap().to_bytes();
    assert_eq!(&data[..], &exported.initial_bytes(0, 256 * 512)[..]);
    // Lengths that straddle istgt's bursts (FirstBurstLength and
    // MaxRecvDataSegmentLength 256 KiB, MaxBurstLength 1 MiB).
    let mut block = 3u64;
    for len in [512, 65536 + 512, 262_144 + 1536, (1 << 20) + 512, 7 << 20] {
        write_and_verify(&lun, &exported, block, len).await;
        block += (len / 512) as u64 + 5;
    }

    // Sustained and parallel, where libiscsi stalls against this target: 64
    // writes of 128 KiB in flight together over 8 MiB, then 64 reads back.
    let base = 16u64 << 11; // 16 MiB in 512-byte blocks
    let chunk = 128 << 10;
    let write = |i: u64| {
        let lun = lun.clone();
        tokio::spawn(async move {
            let at = base + i * (chunk as u64 / 512);
            lun.write(at, random(chunk, 1000 + i), false).await.unwrap();
        })
    };
    let writes: Vec<_> = (0..64).map(write).collect();
    for w in writes {
        w.await.unwrap();
    }
    let read = |i: u64| {
        let lun = lun.clone();
        tokio::spawn(async move {
            let at = base + i * (chunk as u64 / 512);
            let back = lun.read(at, (chunk / 512) as u32).await.unwrap().to_bytes();
            assert!(
                back == random(chunk, 1000 + i),
                "chunk {i} read back differs"
            );
        })
    };
    let reads: Vec<_> = (0..64).map(read).collect();
    for r in reads {
        r.await.unwrap();
    }
    lun.flush().await.unwrap();
    for i in 0..64u64 {
        let on_disk = exported
            .read_backing(base * 512 + i * chunk as u64, chunk)
            .unwrap();
        assert!(
            on_disk == random(chunk, 1000 + i)[..],
            "chunk {i} differs on disk"
        );
    }
    let stats = session.stats().await.unwrap();
    assert!(stats.max_in_flight >= 16, "pipelined: {stats:?}");
    assert_eq!(session.status().reconnects, 0, "no connection was lost");
    session.logout().await.unwrap();
}

/// An offer istgt refuses fails the login in one line naming the key, our
/// offer and its answer, within the login, not after a hang.
#[tokio::test]
async fn an_offer_of_none_alone_fails_the_login_naming_the_key() {
    let istgt = istgt_requiring_digests(13);
    for (header, data, says) in [
        (
            DigestPreference::None,
            DigestPreference::None,
            r#"HeaderDigest: we offered "None", the target answered "Reject""#,
        ),
        (
            DigestPreference::Crc32c,
            DigestPreference::None,
            r#"DataDigest: we offered "None", the target answered "Reject""#,
        ),
    ] {
        let mut cfg = config(istgt.portals()[0], istgt.iqn());
        cfg.operational.header_digest = header;
        cfg.operational.data_digest = data;
        let started = std::time::Instant::now();
        let err = Session::connect(cfg).await.expect_err("istgt refuses None");
        assert!(matches!(err, Error::Negotiation { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(says), "{msg}");
        assert!(msg.contains(istgt.iqn()), "{msg}");
        assert!(msg.contains("none_crc32c"), "the hint: {msg}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
