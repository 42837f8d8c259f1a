//! `riscsi copy FILE|- VOLUME`: what lands on the volume, byte for byte,
//! including a partial last block (the rest of that block keeps what the
//! volume held) and input that does not fit.

use riscsi_tests::ExportedLun;
use riscsi_tests::prelude::*;

use crate::support::{assert_same_bytes, payload, riscsi, sha256_file, volume_url, write_file};

const LUN_SIZE: u64 = 8 << 20;

/// The LUN's initial contents with `data` written at `offset`.
fn expected_after_write(lun: &ExportedLun, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut image = lun.initial_bytes(0, lun.size as usize);
    image[offset as usize..offset as usize + data.len()].copy_from_slice(data);
    image
}

/// Compares the whole backing file with `expected`.
#[track_caller]
fn assert_backing(lun: &ExportedLun, expected: &[u8]) {
    let what = format!("LUN {} ({}-byte blocks)", lun.number, lun.block_size);
    assert_same_bytes(
        &lun.read_backing(0, lun.size as usize).unwrap(),
        expected,
        &what,
    );
}

fn fixture_512_and_4096(seed: u64) -> Tgt {
    Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(seed))
        .lun(LunSpec::new(LUN_SIZE).block_size(4096).pattern(seed + 1))
        .start()
        .unwrap()
}

#[test]
fn files_land_exactly_whole_blocks_or_not() {
    let tgt = fixture_512_and_4096(21);
    let dir = tempfile::tempdir().unwrap();
    for lun in &tgt.target().luns {
        let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
        // Whole blocks at offset 1 MiB, then 1 MiB + 123 bytes at 4 MiB: the
        // last block is partial and must keep the pattern after byte 123.
        let whole = payload(lun.number, 2 << 20);
        let ragged = payload(lun.number + 100, (1 << 20) + 123);
        let mut expected = lun.initial_bytes(0, LUN_SIZE as usize);
        for (name, offset, data) in [("whole", 1u64 << 20, &whole), ("ragged", 4 << 20, &ragged)] {
            let file = write_file(&dir, &format!("{name}-{}", lun.number), data);
            let out = riscsi(["copy", file.to_str().unwrap(), &url])
                .args(["--offset", &offset.to_string(), "--io-size", "256k"])
                .run()
                .success();
            assert_eq!(out.stderr, format!("copied {} bytes\n", data.len()));
            expected[offset as usize..offset as usize + data.len()].copy_from_slice(data);
            assert_backing(lun, &expected);
        }
        let end = (4 << 20) + ragged.len();
        let block_end = end.next_multiple_of(lun.block_size as usize);
        assert_eq!(
            lun.read_backing(end as u64, block_end - end).unwrap(),
            lun.initial_bytes(end as u64, block_end - end),
            "the tail of the partial block"
        );
    }
}

#[test]
fn stdin_from_a_pipe_and_from_a_file_at_an_offset() {
    let tgt = fixture_512_and_4096(31);
    let dir = tempfile::tempdir().unwrap();
    for lun in &tgt.target().luns {
        let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
        let piped = payload(lun.number + 200, 300_001);
        let out = riscsi(["copy", "-", &url, "--offset", "512k"])
            .stdin_pipe(piped.clone())
            .run()
            .success();
        assert_eq!(out.stderr, format!("copied {} bytes\n", piped.len()));
        let mut expected = expected_after_write(lun, 512 << 10, &piped);
        assert_backing(lun, &expected);

        let redirected = payload(lun.number + 300, 200_000);
        let file = write_file(&dir, &format!("redirected-{}", lun.number), &redirected);
        riscsi(["copy", "-", &url, "--offset", "6m"])
            .stdin_file(&file)
            .run()
            .success();
        expected[6 << 20..(6 << 20) + redirected.len()].copy_from_slice(&redirected);
        assert_backing(lun, &expected);
    }
}

#[test]
fn a_file_larger_than_the_volume_is_refused_untouched() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(41))
        .start()
        .unwrap();
    let lun = tgt.first_lun();
    let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
    let before = sha256_file(&lun.path);
    let dir = tempfile::tempdir().unwrap();

    let too_big = write_file(&dir, "too-big.img", &payload(1, LUN_SIZE as usize + 512));
    let message = riscsi(["copy", too_big.to_str().unwrap(), &url])
        .run()
        .one_error_line();
    for size in [LUN_SIZE + 512, LUN_SIZE] {
        assert!(
            message.contains(&size.to_string()),
            "{size} not in: {message}"
        );
    }
    assert!(message.contains("too-big.img"), "{message}");

    // Fits the volume, not the room after the offset.
    let one_mib = write_file(&dir, "one-mib.img", &payload(2, 1 << 20));
    let message = riscsi(["copy", one_mib.to_str().unwrap(), &url, "--offset", "7680k"])
        .run()
        .one_error_line();
    for size in [1u64 << 20, 512 << 10] {
        assert!(
            message.contains(&size.to_string()),
            "{size} not in: {message}"
        );
    }
    assert_eq!(sha256_file(&lun.path), before, "the volume was written to");
}

#[test]
fn a_pipe_that_overflows_fails_after_filling_the_room() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(51))
        .start()
        .unwrap();
    let lun = tgt.first_lun();
    let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
    let data = payload(3, (1 << 20) + 1);
    let message = riscsi(["copy", "-", &url, "--offset", "7m"])
        .stdin_pipe(data.clone())
        .run()
        .one_error_line();
    assert!(message.contains("1048576"), "{message}");
    // As the message says, the room was filled (and flushed) before failing.
    assert_backing(lun, &expected_after_write(lun, 7 << 20, &data[..1 << 20]));

    // Exactly the room is no overflow.
    let exact = payload(4, 1 << 20);
    let out = riscsi(["copy", "-", &url, "--offset", "7m"])
        .stdin_pipe(exact.clone())
        .run()
        .success();
    assert_eq!(out.stderr, format!("copied {} bytes\n", exact.len()));
    assert_backing(lun, &expected_after_write(lun, 7 << 20, &exact));
}
