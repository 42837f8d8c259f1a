//! `riscsi copy VOLUME FILE|-`: the bytes out equal the backing file, whole
//! or from `--offset` for `--length`.

use riscsi_tests::prelude::*;

use crate::support::{riscsi, sha256, sha256_file, volume_url};

const LUN_SIZE: u64 = 8 << 20;

#[test]
fn whole_volume_to_a_file_and_to_stdout() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(11))
        .start()
        .unwrap();
    let lun = tgt.first_lun();
    let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
    let backing = sha256_file(&lun.path);
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("volume.img");

    let to_file = riscsi(["copy", &url, out_file.to_str().unwrap()])
        .run()
        .success();
    assert!(to_file.stdout.is_empty());
    assert_eq!(to_file.stderr, format!("copied {LUN_SIZE} bytes\n"));
    assert_eq!(std::fs::metadata(&out_file).unwrap().len(), LUN_SIZE);
    assert_eq!(sha256_file(&out_file), backing);

    let to_stdout = riscsi(["copy", &url, "-"]).run().success();
    assert_eq!(to_stdout.stdout.len() as u64, LUN_SIZE);
    assert_eq!(sha256(&to_stdout.stdout), backing);
}

#[test]
fn offset_and_length_select_a_range() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(12))
        .lun(LunSpec::new(LUN_SIZE).block_size(4096).pattern(13))
        .start()
        .unwrap();
    for lun in &tgt.target().luns {
        let url = volume_url(tgt.portals()[0], tgt.iqn(), lun.number);
        // Small I/Os so the range takes several commands and a short last one.
        let (offset, length) = (3 << 20, (1 << 20) + 3 * 4096);
        let out = riscsi(["copy", &url, "-", "--offset", "3m"])
            .args(["--length", &length.to_string(), "--io-size", "256k"])
            .run()
            .success();
        assert_eq!(
            sha256(&out.stdout),
            sha256(&lun.read_backing(offset, length as usize).unwrap()),
            "LUN {} ({}-byte blocks)",
            lun.number,
            lun.block_size
        );
        // From an offset to the end, no length.
        let tail = riscsi(["copy", &url, "-", "--offset", "7m"])
            .run()
            .success();
        assert_eq!(tail.stdout, lun.read_backing(7 << 20, 1 << 20).unwrap());
    }
}

#[test]
fn misaligned_or_out_of_range_requests_are_refused() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).block_size(4096))
        .start()
        .unwrap();
    let url = volume_url(tgt.portals()[0], tgt.iqn(), tgt.first_lun().number);
    for extra in [
        &["--offset", "512"][..],
        &["--length", "1000"],
        &["--offset", "9m"],
        &["--offset", "7m", "--length", "2m"],
    ] {
        let message = riscsi(["copy", &url, "-"])
            .args(extra.iter().copied())
            .run()
            .one_error_line();
        assert!(
            message.contains("--offset") || message.contains("--length"),
            "{extra:?}: {message}"
        );
    }
}

#[test]
fn header_digest_from_the_url() {
    let tgt = Tgt::builder()
        .lun(LunSpec::new(LUN_SIZE).pattern(14))
        .start()
        .unwrap();
    tgt.require_crc32c(true, false).unwrap();
    let lun = tgt.first_lun();
    let url = format!(
        "{}?header_digest=crc32c",
        volume_url(tgt.portals()[0], tgt.iqn(), lun.number)
    );
    let report = riscsi(["inquiry", "--json", &url]).run().success().json();
    assert_eq!(report["session"]["header_digest"], "CRC32C");
    let out = riscsi(["copy", &url, "-"]).run().success();
    assert_eq!(sha256(&out.stdout), sha256_file(&lun.path));
}
