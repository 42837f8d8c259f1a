//! The ownership properties at the multipath level, under random path
//! faults (resets, black holes, refusals, delays) on all paths but one
//! chosen at random: every command is answered exactly once and without an
//! error while that path lives, a read returns the last acknowledged write,
//! and at the end every block on the target holds its last acknowledged
//! generation: no write lost, none stale, none misplaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iscsi_multipath::MultipathVolume;
use iscsi_session::BlockDevice;
use proptest::prelude::*;
use riscsi_tests::prelude::*;
use riscsi_tests::volume::{fast_options, open};

/// Blocks of 4 KiB the workload writes, each owned by one worker.
const BLOCKS: u64 = 64;
const WORKERS: u64 = 8;
const BLOCK: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Reset,
    BlackHole,
    Refuse,
    Delay(u64),
    Resume,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Reset),
        Just(Fault::BlackHole),
        Just(Fault::Refuse),
        (1u64..30).prop_map(Fault::Delay),
        Just(Fault::Resume),
    ]
}

/// A block stamped with its LBA, its generation and a checksum of both.
fn stamp(block: u64, generation: u64) -> Vec<u8> {
    let mut data = riscsi_tests::pattern::bytes(block ^ (generation << 32), 0, BLOCK);
    data[..8].copy_from_slice(&block.to_le_bytes());
    data[8..16].copy_from_slice(&generation.to_le_bytes());
    data
}

fn read_stamp(data: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(data[..8].try_into().unwrap()),
        u64::from_le_bytes(data[8..16].try_into().unwrap()),
    )
}

/// One worker: writes new generations of its own blocks and reads them back.
async fn worker(
    volume: MultipathVolume,
    id: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    issued: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
) -> Result<Vec<(u64, u64)>, String> {
    let sectors = (BLOCK as u32) / volume.geometry().block_size;
    let own: Vec<u64> = (0..BLOCKS).filter(|b| b % WORKERS == id).collect();
    let mut acked = vec![0u64; own.len()];
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let slot = round % own.len();
        round += 1;
        let block = own[slot];
        let lba = block * u64::from(sectors);
        let generation = acked[slot] + 1;
        issued.fetch_add(2, Ordering::Relaxed);
        volume
            .write(lba, Bytes::from(stamp(block, generation)), false)
            .await
            .map_err(|e| format!("write of block {block} gen {generation}: {e}"))?;
        answered.fetch_add(1, Ordering::Relaxed);
        acked[slot] = generation;
        let back = volume
            .read(lba, sectors)
            .await
            .map_err(|e| format!("read of block {block}: {e}"))?
            .to_bytes();
        answered.fetch_add(1, Ordering::Relaxed);
        if back[..] != stamp(block, generation)[..] {
            return Err(format!(
                "block {block}: read {:?}, last acknowledged gen {generation}",
                read_stamp(&back)
            ));
        }
    }
    Ok(own.into_iter().zip(acked).collect())
}

async fn run_case(schedule: Vec<(u64, usize, Fault)>, spared: usize) -> Result<(), String> {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .portal("127.0.0.3")
        .lun(LunSpec::new(BLOCKS * BLOCK as u64))
        .start()
        .map_err(|e| e.to_string())?;
    let proxies: Vec<FaultProxy> = tgt
        .portals()
        .iter()
        .map(|p| FaultProxy::start(*p).unwrap())
        .collect();
    let routes: Vec<_> = proxies
        .iter()
        .map(|p| (p.target_addr(), p.listen_addr()))
        .collect();
    let info = tgt.connection_info_spec().map_portals(|p| {
        routes
            .iter()
            .find(|(t, _)| *t == p)
            .map(|(_, l)| *l)
            .unwrap()
    });
    let volume = open(&info, ConnectionInfoForm::Lists, fast_options()).await;
    let answered = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for id in 0..WORKERS {
        workers.spawn(worker(
            volume.clone(),
            id,
            stop.clone(),
            issued.clone(),
            answered.clone(),
        ));
    }
    let faults = async {
        for (at_ms, target, fault) in schedule {
            tokio::time::sleep(Duration::from_millis(at_ms)).await;
            // One path, chosen by the case, is never faulted: I/O must flow.
            let proxy = &proxies[if target >= spared { target + 1 } else { target }];
            match fault {
                Fault::Reset => proxy.reset(),
                Fault::BlackHole => proxy.black_hole(),
                Fault::Refuse => {
                    proxy.refuse();
                    proxy.reset();
                }
                Fault::Delay(ms) => proxy.delay(Duration::from_millis(ms)),
                Fault::Resume => proxy.resume(),
            }
        }
        for p in &proxies {
            p.resume();
        }
        // Some more I/O with every path back, then stop.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let ((), results) = tokio::join!(faults, async {
        let mut all = Vec::new();
        while let Some(r) = workers.join_next().await {
            all.push(r.map_err(|e| e.to_string()).and_then(|r| r));
        }
        all
    });
    volume.close().await;
    // Each block's last acknowledged generation, from its owner.
    let mut acked = vec![0u64; BLOCKS as usize];
    for result in results {
        for (block, generation) in result? {
            acked[block as usize] = generation;
        }
    }
    let expected = issued.load(Ordering::Relaxed);
    let got = answered.load(Ordering::Relaxed);
    if got != expected {
        return Err(format!("{got} answers for {expected} commands"));
    }
    let lun = tgt.first_lun();
    for block in 0..BLOCKS {
        let have = lun
            .read_backing(block * BLOCK as u64, BLOCK)
            .map_err(|e| e.to_string())?;
        let (at, generation) = read_stamp(&have);
        if have != stamp(block, acked[block as usize]) {
            return Err(format!(
                "block {block} on the target holds block {at} gen {generation}, last acknowledged gen {}",
                acked[block as usize]
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 5,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn random_path_faults_lose_nothing(
        schedule in prop::collection::vec((50u64..500, 0usize..2, fault()), 4..10),
        spared in 0usize..3,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(run_case(schedule, spared));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
