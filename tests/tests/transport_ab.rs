//! The transports of the io_uring experiment (`riscsi_tests::transport_ab`,
//! timed by `scripts/bench-transport`) read what the target holds: each one
//! logs in to tgtd and reads the whole LU with pipelined reads of sizes
//! that take both receive paths (segments read into the shared buffer, and
//! long ones into buffers of their own), checked against the backing file.
//! The io_uring wire writes into the connection's buffer through raw
//! pointers; this is the test that would see it write in the wrong place.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::Cdb;
use iscsi_session::{Command, ConnectionEvent, Direction, Portal, SessionConfig};
use riscsi_tests::prelude::*;
use riscsi_tests::transport_ab::{Path, Transport};

const LU_SIZE: u64 = 24 << 20;
const DEPTH: usize = 8;

fn read_everything(transport: Transport) {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LU_SIZE).pattern(11))
        .start()
        .unwrap();
    let exported = tgt.first_lun();
    let config = SessionConfig::new(
        Portal::from(tgt.portals()[0]),
        tgt.iqn(),
        "iqn.2026-11.io.riscsi.test:transport-ab",
    );
    let mut path = Path::log_in(config, transport).expect("login");
    let lun = Lun::from_number(exported.number as u16).unwrap();
    let (blocks, block_size) = path.read_capacity(lun).unwrap();
    assert_eq!((blocks, block_size), (LU_SIZE / 512, 512));

    // 4 KiB, 68 KiB and 256 KiB reads in turn, up to the end of the LU.
    let sizes = [8u64, 136, 512];
    let mut reads = Vec::new();
    let mut lba = 0;
    for size in sizes.iter().cycle() {
        let size = (*size).min(blocks - lba);
        reads.push((lba, size));
        lba += size;
        if lba == blocks {
            break;
        }
    }
    let mut queued = reads.iter().enumerate();
    let mut in_flight: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut checked = 0;
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        while in_flight.len() < DEPTH {
            let Some((token, &(lba, count))) = queued.next() else {
                break;
            };
            let cdb = Cdb::read(lba, count as u32, false);
            let expected_len = (count * 512) as u32;
            path.submit(
                Command::new(lun, cdb, Direction::Read { expected_len }),
                token as u32,
            )
            .unwrap();
            in_flight.insert(token as u32, (lba, count));
        }
        if in_flight.is_empty() {
            break;
        }
        assert!(Instant::now() < give_up, "{transport:?}: reads stalled");
        path.turn(Instant::now() + Duration::from_secs(1)).unwrap();
        while let Some(event) = path.conn.poll_event() {
            let ConnectionEvent::CommandComplete { token, result, .. } = event else {
                continue;
            };
            let (lba, count) = in_flight.remove(&token).expect("a token sent once");
            let outcome = result.unwrap();
            assert!(
                outcome.is_good(),
                "{transport:?}: status {:#x}",
                outcome.status
            );
            let data = outcome.data.to_bytes();
            let on_disk = exported
                .read_backing(lba * 512, (count * 512) as usize)
                .unwrap();
            assert!(
                data[..] == on_disk[..],
                "{transport:?}: {} bytes at block {lba} differ from the backing file",
                count * 512
            );
            checked += 1;
        }
    }
    assert_eq!(checked, reads.len());
}

#[test]
fn epoll_reads_what_the_target_holds() {
    read_everything(Transport::Epoll);
}

#[test]
fn epoll_with_nagle_reads_what_the_target_holds() {
    read_everything(Transport::EpollNagle);
}

#[test]
fn io_uring_reads_what_the_target_holds() {
    read_everything(Transport::Uring);
}

#[test]
fn plain_io_uring_reads_what_the_target_holds() {
    read_everything(Transport::UringPlain);
}
