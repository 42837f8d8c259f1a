//! Digest negotiation as a new user meets it: istgt configured to require
//! header and data digests (`UseDigest Header Data`) answers `Reject` to
//! `None` and frames its PDUs with digests anyway. With no digest argument
//! riscsi offers `None,CRC32C`, istgt picks CRC32C, and `copy` moves the
//! bytes both ways intact; a URL asking for None alone fails at once with one
//! line naming the key, instead of hanging until its caller gives up.

use std::time::{Duration, Instant};

use riscsi_tests::prelude::*;

use crate::support::{payload, riscsi, sha256, sha256_file, volume_url, write_file};

const LUN_SIZE: u64 = 16 << 20;

fn istgt_requiring_digests(seed: u64) -> Istgt {
    Istgt::builder()
        .use_digest("Header Data")
        .lun(LunSpec::new(LUN_SIZE).pattern(seed))
        .start()
        .unwrap()
}

#[test]
fn copy_in_and_out_with_the_digests_istgt_requires() {
    let istgt = istgt_requiring_digests(51);
    let lun = istgt.first_lun();
    let url = volume_url(istgt.portals()[0], istgt.iqn(), lun.number);

    let report = riscsi(["inquiry", "--json", &url]).run().success().json();
    assert_eq!(report["session"]["header_digest"], "CRC32C");
    assert_eq!(report["session"]["data_digest"], "CRC32C");

    // In: a file over the whole volume, in I/Os over one burst.
    let dir = tempfile::tempdir().unwrap();
    let image = payload(52, LUN_SIZE as usize);
    let file = write_file(&dir, "image", &image);
    let out = riscsi(["copy", file.to_str().unwrap(), &url, "--io-size", "1m"])
        .run()
        .success();
    assert_eq!(out.stderr, format!("copied {LUN_SIZE} bytes\n"));
    assert_eq!(sha256_file(&lun.path), sha256(&image));

    // Out: the whole volume to stdout, checked against the backing file.
    let out = riscsi(["copy", &url, "-"]).run().success();
    assert_eq!(out.stdout.len() as u64, LUN_SIZE);
    assert_eq!(sha256(&out.stdout), sha256_file(&lun.path));

    // The libiscsi URL values name the same offer explicitly.
    let explicit = format!("{url}?header_digest=none_crc32c&data_digest=crc32c_none");
    let out = riscsi(["copy", &explicit, "-", "--length", "1m"])
        .run()
        .success();
    assert_eq!(sha256(&out.stdout), sha256(&image[..1 << 20]));
}

#[test]
fn none_alone_fails_at_once_naming_the_key() {
    let istgt = istgt_requiring_digests(53);
    let lun = istgt.first_lun();
    let url = volume_url(istgt.portals()[0], istgt.iqn(), lun.number);
    let before = sha256_file(&lun.path);
    for (args, key) in [
        ("header_digest=none", "HeaderDigest"),
        ("header_digest=crc32c&data_digest=none", "DataDigest"),
    ] {
        let started = Instant::now();
        let message = riscsi(["copy", &format!("{url}?{args}"), "-"])
            .run()
            .one_error_line();
        assert!(
            message.contains(&format!(
                r#"{key}: we offered "None", the target answered "Reject""#
            )),
            "{args}: {message}"
        );
        assert!(message.contains(istgt.iqn()), "{message}");
        assert!(message.contains("none_crc32c"), "the hint: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{args}: took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(sha256_file(&lun.path), before, "nothing was written");
}
