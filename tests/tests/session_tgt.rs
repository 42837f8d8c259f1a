//! One session end to end against real targets (tgtd, and istgt where they
//! differ): login with and without CHAP, digests, discovery, data integrity
//! against the backing file, a deep queue, logout, and a connection cut
//! followed by session reinstatement.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::text::Digest;
use iscsi_session::{
    BlockDevice, ChapConfig, ChapCredentials, Completion, CompletionQueue, DigestPreference, Error,
    Portal, ScsiExecutor, Session, SessionConfig, SessionLun, SessionState, discover,
};
use rand::{Rng, RngCore, SeedableRng};
use riscsi_tests::prelude::*;

const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:session";

fn config(portal: SocketAddr, iqn: &str) -> SessionConfig {
    let mut c = SessionConfig::new(Portal::from(portal), iqn, INITIATOR);
    c.timeouts.login = Duration::from_secs(10);
    c.timeouts.command = Duration::from_secs(20);
    c
}

fn chap(user: &str, secret: &str) -> ChapCredentials {
    ChapCredentials::new(user, secret)
}

async fn open(tgt: &impl Fixture, cfg: SessionConfig) -> (Session, SessionLun) {
    let session = Session::connect(cfg).await.expect("login");
    let lun = session
        .open_lun(tgt.first_lun().number as u16)
        .await
        .expect("open LUN");
    (session, lun)
}

#[tokio::test]
async fn plain_login_inquiry_capacity_and_logout() {
    let tgt = Tgt::builder().lun(LunSpec::new(8 << 20)).start().unwrap();
    let (session, lun) = open(&tgt, config(tgt.portals()[0], tgt.iqn())).await;
    assert_eq!(
        session.status().chap_algorithm,
        None,
        "no CHAP, no algorithm"
    );
    // The default offer is None,CRC32C: tgtd, which does not care, picks
    // None, so the default costs nothing.
    let params = session.params().unwrap();
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::None, Digest::None)
    );
    let inquiry = lun.inquiry().await.unwrap();
    assert_eq!(inquiry.vendor, "IET");
    let g = lun.geometry();
    assert_eq!((g.block_size, g.blocks), (512, (8 << 20) / 512));
    let serial = lun.unit_serial_number().await.unwrap();
    assert_eq!(serial.serial, tgt.first_lun().scsi_sn);
    session.logout().await.unwrap();
    let mut status = session.watch_status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == SessionState::Closed),
    )
    .await
    .expect("closed after logout")
    .unwrap();
    assert!(matches!(lun.read(0, 1).await, Err(Error::Closed { .. })));
}

#[tokio::test]
async fn one_way_chap_and_a_wrong_secret() {
    let tgt = Tgt::builder()
        .chap("alice", "alice-secret-1")
        .start()
        .unwrap();
    let mut good = config(tgt.portals()[0], tgt.iqn());
    good.chap = Some(ChapConfig::one_way(chap("alice", "alice-secret-1")));
    let (session, lun) = open(&tgt, good).await;
    lun.read(0, 8).await.unwrap();
    session.logout().await.unwrap();

    let mut bad = config(tgt.portals()[0], tgt.iqn());
    bad.chap = Some(ChapConfig::one_way(chap("alice", "not-the-secret-9")));
    let err = Session::connect(bad)
        .await
        .expect_err("wrong secret accepted");
    let line = err.to_string();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(!line.contains("not-the-secret-9") && !format!("{err:?}").contains("not-the-secret-9"));
    assert!(
        line.contains(tgt.iqn()),
        "the error names the target: {line}"
    );
    // tgtd refuses an unknown user and a wrong secret alike (bare 0201).
    assert!(
        line.ends_with("the target refused our user name \"alice\" or its secret (status 0201)"),
        "{line}"
    );
}

/// tgtd refuses a mutual CHAP login with the same bare 0201 whether our
/// secret is wrong or it has no outgoing account to answer our challenge
/// with (its log tells them apart, its answer does not): the session checks
/// our credentials with a second login that does not challenge the target,
/// and says which.
#[tokio::test]
async fn mutual_chap_against_a_target_without_an_outgoing_account() {
    let tgt = Tgt::builder()
        .chap("alice", "alice-secret-1")
        .start()
        .unwrap();
    let mutual = |secret: &str| {
        let mut cfg = config(tgt.portals()[0], tgt.iqn());
        cfg.chap = Some(ChapConfig::mutual(
            chap("alice", secret),
            chap("target-bob", "bob-secret-22"),
        ));
        cfg
    };
    let err = Session::connect(mutual("alice-secret-1"))
        .await
        .expect_err("the target cannot prove itself");
    let line = err.to_string();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(
        line,
        format!(
            "CHAP authentication with {} at {} failed: the target refused the login after we \
             challenged it for mutual CHAP, though it accepts our user name \"alice\" and \
             secret: it may have no outgoing (mutual) account for this target",
            tgt.iqn(),
            Portal::from(tgt.portals()[0])
        )
    );

    let err = Session::connect(mutual("not-the-secret-9"))
        .await
        .expect_err("wrong secret accepted");
    let line = err.to_string();
    assert!(
        line.ends_with("the target refused our user name \"alice\" or its secret (status 0201)"),
        "{line}"
    );
    for secret in ["not-the-secret-9", "bob-secret-22", "alice-secret-1"] {
        assert!(!format!("{line} {err:?}").contains(secret), "{line}");
    }
}

#[tokio::test]
async fn mutual_chap_verifies_the_target() {
    let tgt = Tgt::builder()
        .chap("alice", "alice-secret-1")
        .mutual_chap("target-bob", "bob-secret-22")
        .start()
        .unwrap();
    let mut good = config(tgt.portals()[0], tgt.iqn());
    good.chap = Some(ChapConfig::mutual(
        chap("alice", "alice-secret-1"),
        chap("target-bob", "bob-secret-22"),
    ));
    let (session, lun) = open(&tgt, good).await;
    lun.read(0, 8).await.unwrap();
    session.logout().await.unwrap();

    // The target does not know this secret: its answer to our challenge fails.
    let mut impostor = config(tgt.portals()[0], tgt.iqn());
    impostor.chap = Some(ChapConfig::mutual(
        chap("alice", "alice-secret-1"),
        chap("target-bob", "other-secret-33"),
    ));
    let err = Session::connect(impostor)
        .await
        .expect_err("impostor target accepted");
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(!err.to_string().contains("other-secret-33"));
}

#[tokio::test]
async fn crc32c_digests_carry_data_intact() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(16 << 20).pattern(3))
        .start()
        .unwrap();
    tgt.require_crc32c(true, true).unwrap();
    let mut cfg = config(tgt.portals()[0], tgt.iqn());
    cfg.operational.header_digest = DigestPreference::Crc32c;
    cfg.operational.data_digest = DigestPreference::Crc32c;
    let (session, lun) = open(&tgt, cfg).await;
    let params = session.params().unwrap();
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::Crc32c, Digest::Crc32c)
    );
    let exported = tgt.first_lun();
    let data = lun.read(0, 8192).await.unwrap().to_bytes();
    assert_eq!(&data[..], &exported.initial_bytes(0, 4 << 20)[..]);
    write_and_verify(&lun, exported, 1000, 3 << 20, 11).await;
    session.logout().await.unwrap();

    // A tgtd requiring a header digest only gets it from the default offer,
    // and keeps data digests off.
    let tgt = Tgt::builder().start().unwrap();
    tgt.require_crc32c(true, false).unwrap();
    let (session, lun) = open(&tgt, config(tgt.portals()[0], tgt.iqn())).await;
    let params = session.params().unwrap();
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::Crc32c, Digest::None)
    );
    write_and_verify(&lun, tgt.first_lun(), 7, 1 << 20, 12).await;
    session.logout().await.unwrap();
}

#[tokio::test]
async fn tgtd_discovery_answers_only_the_portal_asked() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .start()
        .unwrap();
    for &portal in tgt.portals() {
        let paths = discover(SessionConfig::discovery(Portal::from(portal), INITIATOR))
            .await
            .unwrap();
        assert_eq!(paths.len(), 1, "{paths:?}");
        assert_eq!(paths[0].portal, Portal::from(portal));
        assert_eq!(paths[0].target, tgt.iqn());
        assert_eq!(
            paths[0].to_string(),
            format!("{},1 {}", Portal::from(portal), tgt.iqn())
        );
    }
}

#[tokio::test]
async fn istgt_discovery_answers_every_portal() {
    let istgt = Istgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("::1")
        .start()
        .unwrap();
    let paths = discover(SessionConfig::discovery(
        Portal::from(istgt.portals()[0]),
        INITIATOR,
    ))
    .await
    .unwrap();
    let mut found: Vec<Portal> = paths
        .iter()
        .filter(|p| p.target == istgt.iqn())
        .map(|p| p.portal.clone())
        .collect();
    let mut expected: Vec<Portal> = istgt.portals().iter().map(|&p| Portal::from(p)).collect();
    found.sort_by_key(|p| p.to_string());
    expected.sort_by_key(|p| p.to_string());
    assert_eq!(found, expected);
}

#[tokio::test]
async fn discovery_chap() {
    let tgt = Tgt::builder()
        .discovery_chap("disco", "disco-secret-1")
        .start()
        .unwrap();
    let portal = Portal::from(tgt.portals()[0]);
    let mut cfg = SessionConfig::discovery(portal.clone(), INITIATOR);
    cfg.chap = Some(ChapConfig::one_way(chap("disco", "disco-secret-1")));
    let paths = discover(cfg).await.unwrap();
    assert_eq!(paths.len(), 1);
    let err = discover(SessionConfig::discovery(portal, INITIATOR))
        .await
        .expect_err("discovery without CHAP");
    assert!(!err.to_string().contains("disco-secret-1"));
}

/// Writes `len` random bytes at byte `offset`, reads them back through the
/// session and checks the backing file holds them too.
async fn write_and_verify(
    lun: &SessionLun,
    exported: &riscsi_tests::ExportedLun,
    offset_blocks: u64,
    len: usize,
    seed: u64,
) {
    let bs = lun.geometry().block_size as usize;
    assert_eq!(len % bs, 0);
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    let data = Bytes::from(data);
    lun.write(offset_blocks, data.clone(), false).await.unwrap();
    let back = lun
        .read(offset_blocks, (len / bs) as u32)
        .await
        .unwrap()
        .to_bytes();
    assert!(
        back == data,
        "read back differs ({len} bytes at block {offset_blocks})"
    );
    lun.flush().await.unwrap();
    let on_disk = exported
        .read_backing(offset_blocks * bs as u64, len)
        .unwrap();
    assert!(
        on_disk == data[..],
        "backing file differs ({len} bytes at block {offset_blocks})"
    );
}

async fn integrity(block_size: u32) {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(96 << 20).block_size(block_size).pattern(5))
        .start()
        .unwrap();
    let (session, lun) = open(&tgt, config(tgt.portals()[0], tgt.iqn())).await;
    let exported = tgt.first_lun();
    assert_eq!(lun.geometry().block_size, block_size);
    let bs = block_size as usize;
    // From one block to 32 MiB, at offsets and lengths that straddle bursts
    // (FirstBurstLength, MaxBurstLength, MaxRecvDataSegmentLength).
    let sizes = [
        bs,
        8 * bs,
        65536 + bs,
        262_144 - bs,
        262_144 + 3 * bs,
        (1 << 20) + bs,
        7 << 20,
        32 << 20,
    ];
    let mut offset = 3u64;
    for (i, &len) in sizes.iter().enumerate() {
        let len = len / bs * bs;
        write_and_verify(&lun, exported, offset, len, i as u64).await;
        offset += (len / bs) as u64 + 5;
    }
    // Untouched data is still the initial pattern.
    let tail_block = lun.geometry().blocks - 16;
    let tail = lun.read(tail_block, 16).await.unwrap().to_bytes();
    assert_eq!(
        &tail[..],
        &exported.initial_bytes(tail_block * bs as u64, 16 * bs)[..]
    );
    session.logout().await.unwrap();
}

#[tokio::test]
async fn data_integrity_512_byte_blocks() {
    integrity(512).await;
}

#[tokio::test]
async fn data_integrity_4096_byte_blocks() {
    integrity(4096).await;
}

#[tokio::test]
async fn many_commands_in_flight() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(64 << 20).pattern(9))
        .start()
        .unwrap();
    let (session, lun) = open(&tgt, config(tgt.portals()[0], tgt.iqn())).await;
    let exported = tgt.first_lun().clone();
    let mut tasks = Vec::new();
    for i in 0..128u64 {
        let lun = lun.clone();
        let exported = exported.clone();
        tasks.push(tokio::spawn(async move {
            let block = i * 512 + (i % 7);
            let data = lun.read(block, 64).await.unwrap().to_bytes();
            assert_eq!(
                &data[..],
                &exported.initial_bytes(block * 512, 64 * 512)[..],
                "read {i}"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = session.stats().await.unwrap();
    assert!(stats.commands_completed >= 128, "{stats:?}");
    assert!(
        stats.max_in_flight >= 32,
        "commands were pipelined: {stats:?}"
    );
    session.logout().await.unwrap();
}

/// Drains `queue` until `count` completions came, within 30 s each burst.
async fn completions(queue: &CompletionQueue<Error>, count: usize) -> Vec<Completion<Error>> {
    let mut all = Vec::new();
    while all.len() < count {
        tokio::time::timeout(Duration::from_secs(30), queue.drain(&mut all))
            .await
            .unwrap_or_else(|_| panic!("{} of {count} completions in 30 s", all.len()));
    }
    assert_eq!(all.len(), count, "one completion per command");
    all
}

/// The batched form: 96 writes in one batch, read back in another; every
/// tag comes back once, with the right data, the backing file agrees; a
/// read past the end fails on its own tag only; once logged out, a batch
/// is answered command by command with the closed error.
#[tokio::test]
async fn batched_submission_writes_reads_and_fails_per_command() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(16 << 20).pattern(3))
        .start()
        .unwrap();
    let (session, lun) = open(&tgt, config(tgt.portals()[0], tgt.iqn())).await;
    let exported = tgt.first_lun();
    let queue = CompletionQueue::new();
    let blocks = |tag: u64| 100 + tag * 9;
    let data = |tag: u64| {
        let mut d = vec![0u8; 8 * 512];
        rand::rngs::StdRng::seed_from_u64(tag).fill_bytes(&mut d);
        Bytes::from(d)
    };
    let writes = (0..96u64)
        .map(|tag| {
            (
                tag,
                lun.write_command_at(blocks(tag), data(tag), false).unwrap(),
            )
        })
        .collect();
    lun.submit_batch(writes, queue.sink()).await;
    for c in completions(&queue, 96).await {
        c.result.unwrap_or_else(|e| panic!("write {}: {e}", c.tag));
    }
    let end = lun.geometry().blocks;
    let mut reads: Vec<_> = (0..96u64)
        .map(|tag| (tag, lun.read_command_at(blocks(tag), 8)))
        .collect();
    reads.push((1000, lun.read_command_at(end, 1)));
    lun.submit_batch(reads, queue.sink()).await;
    let mut seen = std::collections::BTreeSet::new();
    for c in completions(&queue, 97).await {
        assert!(seen.insert(c.tag), "tag {} twice", c.tag);
        if c.tag == 1000 {
            let e = c.result.expect_err("a read past the end fails");
            assert!(e.is_illegal_request(), "{e}");
            continue;
        }
        let got = c.result.unwrap().data.to_bytes();
        assert!(got == data(c.tag), "read {} differs", c.tag);
    }
    lun.flush().await.unwrap();
    for tag in [0u64, 47, 95] {
        let on_disk = exported.read_backing(blocks(tag) * 512, 8 * 512).unwrap();
        assert!(
            on_disk == data(tag)[..],
            "backing file differs at write {tag}"
        );
    }
    session.logout().await.unwrap();
    let late = (0..3u64)
        .map(|tag| (tag, lun.read_command_at(0, 1)))
        .collect();
    lun.submit_batch(late, queue.sink()).await;
    for c in completions(&queue, 3).await {
        assert!(
            matches!(c.result, Err(Error::Closed { .. })),
            "{:?}",
            c.result
        );
    }
}

/// A connection cut (RST through the fault proxy) mid-I/O: the session logs in
/// again with the same ISID (reinstatement), replays what was in flight, and
/// every write lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_io_reconnects_and_replays() {
    let tgt = Tgt::builder().lun(LunSpec::new(64 << 20)).start().unwrap();
    let proxy = FaultProxy::start(tgt.portals()[0]).unwrap();
    let mut cfg = config(proxy.listen_addr(), tgt.iqn());
    cfg.timeouts.replacement = Duration::from_secs(30);
    let (session, lun) = open(&tgt, cfg).await;
    let exported = tgt.first_lun().clone();
    let writer = tokio::spawn({
        let lun = lun.clone();
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let mut written = Vec::new();
            for i in 0..200u64 {
                let mut data = vec![0u8; 64 * 1024];
                rng.fill_bytes(&mut data);
                let block = i * 256 + rng.gen_range(0..4);
                lun.write(block, Bytes::from(data.clone()), false)
                    .await
                    .expect("write survives the cut");
                written.push((block, data));
            }
            written
        }
    });
    // Cut while writes are in flight.
    assert!(proxy.wait_for(Duration::from_secs(10), |s| s.bytes_to_target > 2 << 20));
    proxy.reset();
    let written = writer.await.unwrap();
    let status = session.status();
    assert_eq!(status.state, SessionState::LoggedIn);
    assert!(status.reconnects >= 1, "{status:?}");
    assert!(proxy.stats().accepted >= 2);
    lun.flush().await.unwrap();
    for (block, data) in written {
        assert!(
            exported.read_backing(block * 512, data.len()).unwrap() == data,
            "block {block}"
        );
    }
    session.logout().await.unwrap();
}

/// The wire oracle on live traffic: a capture of login (with CHAP and CRC32C
/// digests), writes that need R2Ts, reads, NOPs and logout shows no
/// malformed PDU and no expert error in tshark, and tshark reads it as iSCSI.
#[tokio::test]
async fn tshark_finds_nothing_wrong_in_our_traffic() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(16 << 20).pattern(4))
        .chap("carol", "carol-secret-1")
        .start()
        .unwrap();
    tgt.require_crc32c(true, true).unwrap();
    let capture = riscsi_tests::tshark::Capture::start(tgt.portals()[0]);
    let mut cfg = config(tgt.portals()[0], tgt.iqn());
    cfg.chap = Some(ChapConfig::one_way(chap("carol", "carol-secret-1")));
    cfg.operational.header_digest = DigestPreference::Crc32c;
    cfg.operational.data_digest = DigestPreference::Crc32c;
    cfg.timeouts.nop_interval = Duration::from_millis(200);
    let (session, lun) = open(&tgt, cfg).await;
    let exported = tgt.first_lun();
    write_and_verify(&lun, exported, 7, 600 * 512, 21).await;
    write_and_verify(&lun, exported, 2000, 8 * 512, 22).await;
    let data = lun.read(4000, 300).await.unwrap().to_bytes();
    assert_eq!(
        &data[..],
        &exported.initial_bytes(4000 * 512, 300 * 512)[..]
    );
    // Idle long enough for our keepalive NOP-Out.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(session.stats().await.unwrap().nop_pings >= 1);
    session.logout().await.unwrap();
    let opcodes = tokio::task::spawn_blocking(move || capture.finish())
        .await
        .unwrap();
    for expected in [
        "0x03", "0x23", "0x01", "0x25", "0x21", "0x05", "0x31", "0x00", "0x20", "0x06", "0x26",
    ] {
        assert!(
            opcodes.iter().any(|o| o == expected),
            "no opcode {expected} in the capture: {opcodes:?}"
        );
    }
}

/// The same session against istgt: login, geometry, data both ways.
#[tokio::test]
async fn istgt_session_reads_and_writes() {
    let istgt = Istgt::builder()
        .lun(LunSpec::new(16 << 20).pattern(8))
        .start()
        .unwrap();
    let (session, lun) = open(&istgt, config(istgt.portals()[0], istgt.iqn())).await;
    let exported = istgt.first_lun();
    assert_eq!(
        lun.geometry().blocks * u64::from(lun.geometry().block_size),
        16 << 20
    );
    let data = lun.read(0, 256).await.unwrap().to_bytes();
    assert_eq!(&data[..], &exported.initial_bytes(0, 256 * 512)[..]);
    write_and_verify(&lun, exported, 300, 1 << 20, 31).await;
    session.logout().await.unwrap();
}

/// With SHA-256, SHA-1 and MD5 offered, tgtd (MD5 only) picks MD5.
#[tokio::test]
async fn chap_algorithm_list_against_tgtd() {
    let tgt = Tgt::builder()
        .chap("alice", "alice-secret-1")
        .start()
        .unwrap();
    let mut cfg = config(tgt.portals()[0], tgt.iqn());
    let mut chap_config = ChapConfig::one_way(chap("alice", "alice-secret-1"));
    chap_config.algorithms = vec![
        iscsi_session::ChapAlgorithm::Sha256,
        iscsi_session::ChapAlgorithm::Sha1,
        iscsi_session::ChapAlgorithm::Md5,
    ];
    cfg.chap = Some(chap_config);
    let (session, lun) = open(&tgt, cfg).await;
    assert_eq!(
        session.status().chap_algorithm,
        Some(iscsi_session::ChapAlgorithm::Md5)
    );
    lun.read(0, 1).await.unwrap();
    session.logout().await.unwrap();
}

/// §11.9.1: Asynchronous Messages slipped into a live tgtd connection by the
/// fault proxy: a logout request is obeyed (drain, log out, log in again)
/// and a dropped connection is logged in again after Time2Wait; the
/// session's commands keep working.
#[tokio::test]
async fn target_logout_requests_and_dropped_connections_are_followed() {
    use iscsi_proto::pdu::AsyncEvent;
    let tgt = Tgt::builder()
        .lun(LunSpec::new(4 << 20).pattern(2))
        .start()
        .unwrap();
    let proxy = FaultProxy::start(tgt.portals()[0]).unwrap();
    let mut cfg = config(proxy.listen_addr(), tgt.iqn());
    cfg.reconnect.first_delay = Duration::from_millis(50);
    let (session, lun) = open(&tgt, cfg).await;
    let mut events = session.target_events();
    for (event, p2, p3) in [
        (AsyncEvent::LogoutRequest, 0, 5),
        (AsyncEvent::DropConnection, 1, 0),
    ] {
        let before = session.status().reconnects;
        proxy.inject_async(event, 0, p2, p3);
        // Other events may come first (the UNIT ATTENTION after a reinstatement).
        let wanted = |seen: &iscsi_session::TargetEvent| {
            matches!(
                (&event, seen),
                (
                    AsyncEvent::LogoutRequest,
                    iscsi_session::TargetEvent::LogoutRequested { .. }
                ) | (
                    AsyncEvent::DropConnection,
                    iscsi_session::TargetEvent::DroppingConnection { .. }
                )
            )
        };
        tokio::time::timeout(Duration::from_secs(5), async {
            while !wanted(&events.recv().await.unwrap()) {}
        })
        .await
        .unwrap_or_else(|_| panic!("{event:?} reached the session"));
        let mut status = session.watch_status();
        tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| s.reconnects > before && s.state == SessionState::LoggedIn),
        )
        .await
        .expect("logged in again")
        .unwrap();
        let data = lun.read(0, 8).await.expect("commands work after it");
        assert_eq!(data.to_bytes(), tgt.first_lun().initial_bytes(0, 4096));
    }
}
