//! `riscsi attach` against the NBD clients people use (nbdinfo, nbdcopy,
//! qemu-io and qemu-img, nbdsh, fio's nbd engine) and against a raw client
//! that sends what they never would. Each test has its own tgtd and its own
//! attach; data is always compared with the LUN's backing file.
//!
//! The `riscsi` binary is the workspace's own build (see
//! `riscsi_tests::riscsi_binary`). A missing client tool fails the test.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use riscsi_tests::nbd_client::{NbdClient, NbdStream, proto::*, read_greeting};
use riscsi_tests::prelude::*;
use riscsi_tests::{Attach, ToolCommand, free_port, pattern, require_tool, spawn_tied};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// One client tool run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Waiting for a state the server reaches by itself.
const SETTLE: Duration = Duration::from_secs(10);

/// A one-portal tgtd exporting `lun`.
fn tgt(lun: LunSpec) -> Tgt {
    Tgt::builder().lun(lun).start().expect("tgtd starts")
}

/// The fixture's connection_info (lists form), `data` edited by `edit`.
fn info(tgt: &Tgt, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut info = tgt.connection_info(ConnectionInfoForm::Lists);
    edit(info["data"].as_object_mut().expect("data is an object"));
    info
}

fn attach(info: &Value, args: &[&str]) -> Attach {
    Attach::start(info, args).expect("riscsi attach serves the volume")
}

/// A raw client on the attach's unix socket, default export.
fn raw(attach: &Attach, structured: bool) -> NbdClient {
    NbdClient::unix(attach.nbd_socket().expect("a unix socket"), "", structured)
        .expect("the handshake succeeds")
}

fn tool(name: &str) -> ToolCommand {
    ToolCommand::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// nbdsh runs `python3 -m nbd`: the system python has the module, a python
/// earlier on PATH (pyenv) may not.
fn nbdsh() -> ToolCommand {
    let path = std::env::var("PATH").unwrap_or_default();
    tool("nbdsh").env("PATH", format!("/usr/bin:/bin:{path}"))
}

fn run(command: ToolCommand) -> String {
    match command.run_ok(TOOL_TIMEOUT) {
        Ok(out) => out.stdout,
        Err(e) => panic!("{e}"),
    }
}

fn backing(tgt: &Tgt, offset: u64, len: u64) -> Vec<u8> {
    tgt.first_lun()
        .read_backing(offset, len as usize)
        .expect("the backing file reads")
}

/// Bytes no fixture starts with.
fn payload(seed: u64, len: u64) -> Vec<u8> {
    pattern::bytes(seed ^ 0x6e62_6400_0000_0000, 0, len as usize)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equal bytes, or the first differing offset (never megabytes of dump).
#[track_caller]
fn assert_same(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let at = actual.iter().zip(expected).position(|(a, e)| a != e);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {at:?}",
            actual.len(),
            expected.len()
        );
    }
}

/// `nbdinfo --json URI`'s one export.
fn nbdinfo(uri: &str) -> Value {
    let text = run(tool("nbdinfo").args(["--json", uri]));
    let json: Value = serde_json::from_str(&text).expect("nbdinfo prints JSON");
    let exports = json["exports"].as_array().expect("an exports list");
    assert_eq!(exports.len(), 1, "{json:#}");
    assert_eq!(json["protocol"], "newstyle-fixed", "{json:#}");
    exports[0].clone()
}

#[track_caller]
fn assert_flags(export: &Value, expected: &[(&str, bool)]) {
    for (key, value) in expected {
        assert_eq!(export[*key], *value, "{key} in {export:#}");
    }
}

/// The clean stop, which every test ends with.
fn stop(attach: Attach) {
    attach.stop().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn nbdinfo_shows_size_block_sizes_and_flags() {
    let size = 16 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(11));
    let attach = attach(&info(&tgt, |_| {}), &["--export", "vol"]);
    assert!(
        attach.uri().starts_with("nbd+unix:///vol?socket="),
        "{}",
        attach.uri()
    );

    let export = nbdinfo(attach.uri());
    assert_eq!(export["export-name"], "vol");
    assert_eq!(export["export-size"], size);
    assert_eq!(export["block_size_minimum"], 512);
    assert_eq!(export["block_size_maximum"], 33_554_432);
    let preferred = export["block_size_preferred"].as_u64().expect("a number");
    assert!(
        preferred.is_power_of_two() && (512..=33_554_432).contains(&preferred),
        "{export:#}"
    );
    assert_flags(
        &export,
        &[
            ("is_read_only", false),
            ("can_flush", true),
            ("can_fua", true),
            ("can_multi_conn", true),
            ("can_zero", true),
            ("can_cache", true),
            // No `discard: true` in the connection_info.
            ("can_trim", false),
        ],
    );

    // The listing names the export and describes the volume.
    let list = run(tool("nbdinfo").args(["--list", attach.uri()]));
    assert!(list.contains("export=\"vol\":"), "{list}");
    let description = list
        .lines()
        .find_map(|l| l.trim().strip_prefix("description: "))
        .unwrap_or_else(|| panic!("no description in:\n{list}"));
    assert!(description.contains("connection_info"), "{list}");

    // The default export "" is the same volume.
    let mut client = raw(&attach, false);
    assert_eq!(client.info.size, size);
    assert_eq!(client.info.block_sizes.map(|b| b.0), Some(512));
    let data = client
        .read(size - 4096, 4096)
        .unwrap()
        .expect("a read at the end");
    assert_same(&data, &backing(&tgt, size - 4096, 4096), "the last 4 KiB");
    client.disconnect().unwrap();
    stop(attach);
}

/// A 4096-byte-block LUN, attached read-only and served over TCP.
#[test]
fn a_read_only_4k_export_over_tcp() {
    let size = 8 * MIB;
    let tgt = tgt(LunSpec::new(size).block_size(4096).pattern(12));
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let port = free_port(loopback).expect("a free port");
    let listen = SocketAddr::new(loopback, port).to_string();
    let info = info(&tgt, |d| {
        d.insert("access_mode".into(), "ro".into());
    });
    let attach = attach(&info, &["--export", "ro-vol", "--nbd-listen", &listen]);
    assert_eq!(attach.uri(), format!("nbd://{listen}/ro-vol"));
    assert!(attach.nbd_socket().is_none());

    let export = nbdinfo(attach.uri());
    assert_eq!(export["export-size"], size);
    assert_eq!(export["block_size_minimum"], 4096);
    assert_eq!(export["block_size_maximum"], 33_554_432);
    assert_flags(
        &export,
        &[
            ("is_read_only", true),
            ("can_trim", false),
            ("can_flush", true),
        ],
    );
    let list = run(tool("nbdinfo").args(["--list", attach.uri()]));
    assert!(list.contains("export=\"ro-vol\":"), "{list}");

    // Writes of every kind are refused with EPERM; reads work.
    let before = backing(&tgt, 0, size);
    let mut client = NbdClient::tcp(SocketAddr::new(loopback, port), "ro-vol", true)
        .expect("the handshake succeeds");
    assert_ne!(client.info.flags & FLAG_READ_ONLY, 0);
    assert_eq!(client.write(0, &[0xee; 4096], 0).unwrap(), EPERM);
    for command in [CMD_WRITE_ZEROES, CMD_TRIM] {
        let reply = client.call(command, 0, 0, 4096, &[]).unwrap();
        assert_eq!(reply.error, EPERM, "command {command}: {reply:?}");
        assert!(!reply.message.is_empty(), "a structured error says why");
    }
    // A 512-byte read is misaligned on a 4096-byte LU.
    assert_eq!(client.read(512, 512).unwrap(), Err(EINVAL));
    assert_eq!(client.read(4096, 512).unwrap(), Err(EINVAL));
    let data = client.read(4096, 8192).unwrap().expect("an aligned read");
    assert_same(
        &data,
        &before[4096..12288],
        "read through a read-only export",
    );
    assert_eq!(client.call(CMD_FLUSH, 0, 0, 0, &[]).unwrap().error, 0);
    client.disconnect().unwrap();
    stop(attach);
    assert_same(&backing(&tgt, 0, size), &before, "the read-only LU");
}

/// An export name and a socket path with characters URIs reserve: the URI
/// attach prints must still lead clients to that export on that socket.
#[test]
fn the_uri_survives_reserved_characters() {
    let tgt = tgt(LunSpec::new(4 * MIB).pattern(20));
    let dir = tempfile::Builder::new()
        .prefix("riscsi nbd ")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("my sock#1.nbd");
    let name = "my vol?x=1#2%";
    let attach = attach(
        &info(&tgt, |_| {}),
        &["--export", name, "--nbd-unix", socket.to_str().unwrap()],
    );
    assert_eq!(attach.nbd_socket(), Some(socket.as_path()));
    assert!(!attach.uri().contains(' '), "{}", attach.uri());
    let export = nbdinfo(attach.uri());
    assert_eq!(export["export-name"], name);
    let out = run(tool("qemu-io").args(["-f", "raw", "-c", "read -v 0 512", attach.uri()]));
    assert!(out.contains("read 512/512"), "qemu-io:\n{out}");
    let mut c = NbdClient::unix(&socket, name, true).expect("the named export");
    let data = c.read(0, 512).unwrap().expect("a read");
    assert_same(&data, &backing(&tgt, 0, 512), "the first block");
    c.disconnect().unwrap();
    stop(attach);
}

#[test]
fn nbdcopy_a_file_in_and_out() {
    let size = 32 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(13));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.img");
    let output = dir.path().join("out.img");
    let data = payload(13, size);
    std::fs::write(&input, &data).unwrap();

    run(tool("nbdcopy").args([input.to_str().unwrap(), attach.uri()]));
    assert_same(&backing(&tgt, 0, size), &data, "the LU after nbdcopy in");
    run(tool("nbdcopy").args([attach.uri(), output.to_str().unwrap()]));
    let copied = std::fs::read(&output).unwrap();
    assert_eq!(sha256(&copied), sha256(&data), "nbdcopy out");
    assert_eq!(sha256(&backing(&tgt, 0, size)), sha256(&data));
    // SIGTERM (what a service manager sends) stops it as cleanly as SIGINT.
    attach
        .stop_with(Signal::SIGTERM)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn qemu_io_and_qemu_img_convert() {
    let size = 16 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(14));
    let attach = attach(&info(&tgt, |_| {}), &["--export", "q"]);
    let uri = attach.uri().to_owned();

    // Asynchronous writes of patterns at a few offsets (the last one ends at
    // the end of the export), a flush, then reads that verify the patterns;
    // a zero write too.
    let writes = [
        (0u64, MIB, 0xabu8),
        (3 * MIB + 512, 512 * 1024, 0xcd),
        (size - MIB, MIB, 0xef),
    ];
    let mut command = tool("qemu-io").args(["-f", "raw"]);
    for (offset, len, byte) in writes {
        command = command.args([
            "-c".into(),
            format!("aio_write -P {byte:#x} {offset} {len}"),
        ]);
    }
    command = command.args(["-c", "aio_flush", "-c", "write -z 8M 1M"]);
    for (offset, len, byte) in writes {
        command = command.args(["-c".into(), format!("read -P {byte:#x} {offset} {len}")]);
    }
    command = command.args(["-c", "read -P 0 8M 1M", &uri]);
    let out = run(command);
    assert!(
        !out.contains("failed") && !out.contains("error"),
        "qemu-io:\n{out}"
    );
    assert_eq!(
        out.matches("read ").count(),
        writes.len() + 1,
        "qemu-io:\n{out}"
    );

    let mut expected = tgt.first_lun().initial_bytes(0, size as usize);
    for (offset, len, byte) in writes {
        expected[offset as usize..(offset + len) as usize].fill(byte);
    }
    expected[8 << 20..9 << 20].fill(0);
    assert_same(&backing(&tgt, 0, size), &expected, "the LU after qemu-io");

    // qemu-img convert a file into the export (-n: it exists) and back out.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.raw");
    let output = dir.path().join("out.raw");
    let mut data = payload(14, size);
    // A zero stretch, which qemu-img sends as zero writes rather than data.
    data[4 << 20..6 << 20].fill(0);
    std::fs::write(&input, &data).unwrap();
    run(tool("qemu-img")
        .args(["convert", "-n", "-f", "raw", "-O", "raw"])
        .args([input.to_str().unwrap(), &uri]));
    assert_eq!(
        sha256(&backing(&tgt, 0, size)),
        sha256(&data),
        "the LU after qemu-img convert"
    );
    run(tool("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw"])
        .args([&uri, output.to_str().unwrap()]));
    assert_eq!(
        sha256(&std::fs::read(&output).unwrap()),
        sha256(&data),
        "qemu-img convert out"
    );
    stop(attach);
}

/// TRIM, WRITE_ZEROES (with and without NO_HOLE), FLUSH, FUA and CACHE
/// through libnbd, on a thin-provisioned LU (tgtd's thin_provisioning=1
/// answers UNMAP by punching holes in the backing file; LBPRZ=1).
#[test]
fn nbdsh_trim_zero_flush_fua_cache() {
    let size = 8 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(15));
    tgt.tgtadm(&[
        "--op",
        "update",
        "--mode",
        "logicalunit",
        "--tid",
        "1",
        "--lun",
        "1",
        "--params",
        "thin_provisioning=1",
    ])
    .expect("tgtd makes the LU thin");
    let info = info(&tgt, |d| {
        d.insert("discard".into(), true.into());
    });
    let attach = attach(&info, &[]);
    let path = tgt.first_lun().path.display().to_string();
    let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
    assert_eq!(
        allocated, size,
        "the pattern-filled backing file is fully allocated"
    );

    // st_blocks of the backing file shows what was deallocated: TRIM must
    // punch, NO_HOLE must not.
    let script = format!(
        r#"
import os
M = 1 << 20
def allocated():
    return os.stat({path:?}).st_blocks * 512
for f in ("can_trim", "can_zero", "can_flush", "can_fua", "can_cache", "can_multi_conn"):
    assert getattr(h, f)(), f
assert not h.is_read_only()
h.trim(M, 0)
assert allocated() == 7 * M, ("trim deallocates", allocated())
assert h.pread(M, 0) == bytes(M)
h.zero(M, M, nbd.CMD_FLAG_NO_HOLE)
assert allocated() == 7 * M, ("NO_HOLE keeps blocks allocated", allocated())
assert h.pread(M, M) == bytes(M)
h.zero(M, 2 * M)
assert h.pread(M, 2 * M) == bytes(M)
h.flush()
data = bytes(range(256)) * 16
h.pwrite(data, 4 * M, nbd.CMD_FLAG_FUA)
with open({path:?}, "rb") as f:
    f.seek(4 * M)
    assert f.read(4096) == data, "a FUA write is on the target when acknowledged"
h.zero(4096, 4 * M + 8192, nbd.CMD_FLAG_FUA)
h.trim(8192, 5 * M, nbd.CMD_FLAG_FUA)
h.cache(M, 6 * M)
h.flush()
assert h.pread(4096, 4 * M) == data
print("ok")
"#
    );
    let out = run(nbdsh().args(["-u", attach.uri(), "-c", &script]));
    assert_eq!(out.trim(), "ok");

    let mut expected = tgt.first_lun().initial_bytes(0, size as usize);
    let m = MIB as usize;
    expected[..3 * m].fill(0);
    expected[4 * m..4 * m + 4096].copy_from_slice(&ramp_4k());
    expected[4 * m + 8192..4 * m + 12288].fill(0);
    expected[5 * m..5 * m + 8192].fill(0);
    assert_same(&backing(&tgt, 0, size), &expected, "the LU after nbdsh");

    // What libnbd would not send: empty and out-of-range TRIM and zeroes.
    let mut c = raw(&attach, true);
    assert_ne!(c.info.flags & FLAG_SEND_TRIM, 0);
    for (what, command, offset, length, errno) in [
        ("empty trim", CMD_TRIM, 4096, 0, 0),
        ("empty zeroes", CMD_WRITE_ZEROES, 4096, 0, 0),
        ("misaligned trim", CMD_TRIM, 4096 + 100, 512, EINVAL),
        // The spec: EINVAL for a read or trim beyond the end.
        ("trim across the end", CMD_TRIM, size - 512, 1024, EINVAL),
        ("trim at the end", CMD_TRIM, size, 512, EINVAL),
        (
            "zeroes across the end",
            CMD_WRITE_ZEROES,
            size - 512,
            1024,
            ENOSPC,
        ),
        (
            "zeroes at 2^64 - 512",
            CMD_WRITE_ZEROES,
            u64::MAX - 511,
            1024,
            ENOSPC,
        ),
    ] {
        let reply = c.call(command, 0, offset, length, &[]).unwrap();
        assert_eq!(reply.error, errno, "{what}: {reply:?}");
    }
    c.disconnect().unwrap();
    assert_same(
        &backing(&tgt, 0, size),
        &expected,
        "the LU after refused requests",
    );
    stop(attach);
}

fn ramp_4k() -> Vec<u8> {
    (0..4096).map(|i| (i % 256) as u8).collect()
}

/// Requests no well-behaved client sends, through the raw client, with
/// simple and with structured replies: each gets its error, the connection
/// stays usable and nothing reaches the LU.
#[test]
fn bad_requests_get_errors_and_the_connection_lives_on() {
    // Larger than 32 MiB, so that an oversized READ is in range.
    let size = 40 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(16));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let before = backing(&tgt, 0, size);
    for structured in [false, true] {
        let mut c = raw(&attach, structured);
        assert_eq!(c.info.size, size);
        assert_eq!(c.info.flags & FLAG_SEND_TRIM, 0, "no discard: no TRIM");
        let check = |c: &mut NbdClient, what: &str| {
            let data = c.read(MIB, 4096).unwrap().unwrap_or_else(|e| {
                panic!("after {what} (structured {structured}): read failed with {e}")
            });
            assert_same(&data, &before[MIB as usize..MIB as usize + 4096], what);
        };
        let cases: &[(&str, u16, u16, u64, u32, u32)] = &[
            // what, command, flags, offset, length, errno
            ("read at the end", CMD_READ, 0, size, 512, EINVAL),
            ("read across the end", CMD_READ, 0, size - 512, 1024, EINVAL),
            (
                "read at 2^64 - 512",
                CMD_READ,
                0,
                u64::MAX - 511,
                1024,
                EINVAL,
            ),
            ("misaligned read offset", CMD_READ, 0, 100, 512, EINVAL),
            ("misaligned read length", CMD_READ, 0, 0, 100, EINVAL),
            ("oversized read", CMD_READ, 0, 0, (32 << 20) + 512, EINVAL),
            (
                "write zeroes across the end",
                CMD_WRITE_ZEROES,
                0,
                size - 512,
                1024,
                ENOSPC,
            ),
            (
                "misaligned write zeroes",
                CMD_WRITE_ZEROES,
                0,
                512,
                100,
                EINVAL,
            ),
            ("TRIM not offered", CMD_TRIM, 0, 0, 4096, EINVAL),
            ("unknown command", 99, 0, 0, 4096, EINVAL),
            (
                "NO_HOLE on a read",
                CMD_READ,
                CMD_FLAG_NO_HOLE,
                0,
                512,
                EINVAL,
            ),
            ("unknown flag", CMD_FLUSH, 1 << 12, 0, 0, EINVAL),
            (
                "cache across the end",
                CMD_CACHE,
                0,
                size - 512,
                1024,
                EINVAL,
            ),
        ];
        for &(what, command, flags, offset, length, errno) in cases {
            let reply = c.call(command, flags, offset, length, &[]).unwrap();
            assert_eq!(
                reply.error, errno,
                "{what} (structured {structured}): {reply:?}"
            );
            assert!(reply.data.is_empty(), "{what}: an error carries no data");
            if structured {
                assert!(
                    !reply.message.is_empty(),
                    "{what}: a structured error says why"
                );
            }
            check(&mut c, what);
        }
        // Writes carry a payload, which the server must consume to stay in step.
        let writes: &[(&str, u64, usize, u32)] = &[
            ("write at the end", size, 512, ENOSPC),
            ("write across the end", size - 512, 1024, ENOSPC),
            ("misaligned write offset", 100, 512, EINVAL),
            ("misaligned write length", 0, 100, EINVAL),
            ("oversized write", 0, (32 << 20) + 512, EINVAL),
        ];
        for &(what, offset, len, errno) in writes {
            let data = vec![0xee; len];
            assert_eq!(
                c.write(offset, &data, 0).unwrap(),
                errno,
                "{what} (structured {structured})"
            );
            check(&mut c, what);
        }
        // Zero-length requests succeed and do nothing.
        assert_eq!(c.read(0, 0).unwrap(), Ok(Vec::new()));
        assert_eq!(c.write(4096, &[], 0).unwrap(), 0);
        assert_eq!(c.call(CMD_WRITE_ZEROES, 0, 4096, 0, &[]).unwrap().error, 0);
        assert_eq!(c.call(CMD_CACHE, 0, 4096, 0, &[]).unwrap().error, 0);
        c.disconnect().unwrap();
    }
    assert_same(
        &backing(&tgt, 0, size),
        &before,
        "the LU after refused requests",
    );

    // Exactly the maximum: one 32 MiB write and one 32 MiB read.
    let mut c = raw(&attach, true);
    let big = payload(16, 32 * MIB);
    assert_eq!(c.write(4 * MIB, &big, 0).unwrap(), 0);
    let back = c.read(4 * MIB, 32 << 20).unwrap().expect("a 32 MiB read");
    assert_same(&back, &big, "32 MiB read back");
    assert_same(&backing(&tgt, 4 * MIB, 32 * MIB), &big, "32 MiB on the LU");
    c.disconnect().unwrap();
    stop(attach);
}

/// Writes a fio job file and runs fio; its JSON report.
fn fio(dir: &Path, job: &str) -> Value {
    let file = dir.join("job.fio");
    std::fs::write(&file, job).unwrap();
    let text = run(tool("fio").args(["--output-format=json", file.to_str().unwrap()]));
    serde_json::from_str(&text[text.find('{').expect("a JSON report")..]).expect("fio's JSON")
}

/// Every fio job finished without error, having written and verified `bytes`.
#[track_caller]
fn assert_fio_clean(report: &Value, jobs: usize, bytes: u64) {
    let list = report["jobs"].as_array().expect("jobs");
    assert_eq!(list.len(), jobs, "{report:#}");
    for job in list {
        assert_eq!(job["error"], 0, "{job:#}");
        assert_eq!(job["write"]["io_bytes"], bytes, "{job:#}");
        assert_eq!(job["read"]["io_bytes"], bytes, "verify reads: {job:#}");
    }
}

/// The whole export through the raw client, compared with the backing file.
fn assert_export_matches_backing(attach: &Attach, tgt: &Tgt, size: u64) {
    let mut c = raw(attach, true);
    let mut at = 0;
    while at < size {
        let n = (4 * MIB).min(size - at);
        let data = c.read(at, n as u32).unwrap().expect("a read");
        assert_same(
            &data,
            &backing(tgt, at, n),
            &format!("export vs backing at {at}"),
        );
        at += n;
    }
    c.disconnect().unwrap();
}

#[test]
fn fio_verifies_on_two_connections_at_once() {
    let size = 32 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(17));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let dir = tempfile::tempdir().unwrap();
    let report = fio(
        dir.path(),
        &format!(
            "[global]\nioengine=nbd\nuri={}\nrw=randwrite\nbs=64k\niodepth=16\nsize=16M\n\
             verify=crc32c\nverify_fatal=1\ndo_verify=1\nverify_state_save=0\n\
             [low]\noffset=0\n\
             [high]\noffset=16M\n",
            attach.uri()
        ),
    );
    assert_fio_clean(&report, 2, 16 * MIB);
    assert_export_matches_backing(&attach, &tgt, size);
    stop(attach);
}

/// fio writes and verifies through the NBD export while the main path is
/// reset and then refused: the secondary carries the I/O, fio sees nothing.
#[test]
fn fio_verifies_while_the_main_path_is_cut() {
    let size = 64 * MIB;
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(size).pattern(18))
        .start()
        .expect("tgtd starts");
    let main = FaultProxy::start(tgt.portals()[0]).unwrap();
    let (target, listen) = (tgt.portals()[0], main.listen_addr());
    let info = tgt
        .connection_info_spec()
        .map_portals(|p| if p == target { listen } else { p })
        .to_json(ConnectionInfoForm::Lists);
    let attach = attach(&info, &[]);
    let status = attach
        .wait_status(SETTLE, |s| {
            s["volume"]["paths"][0]["state"] == "active"
                && s["volume"]["paths"][1]["state"] == "standby"
        })
        .unwrap_or_else(|s| panic!("both paths up: {s:#}"));
    let main_portal = status["volume"]["paths"][0]["portal"]
        .as_str()
        .unwrap()
        .to_owned();

    // ~3 s of writes (rate-limited), then the verify pass reads it all back.
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.fio");
    std::fs::write(
        &job,
        format!(
            "[cut]\nioengine=nbd\nuri={}\nrw=write\nbs=64k\niodepth=8\nsize=48M\nrate=,16m\n\
             verify=crc32c\nverify_fatal=1\ndo_verify=1\nverify_state_save=0\n",
            attach.uri()
        ),
    )
    .unwrap();
    let mut command = Command::new(require_tool("fio").unwrap_or_else(|e| panic!("{e}")));
    command
        .args(["--output-format=json", job.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let fio = spawn_tied(command).expect("fio starts");
    let output = thread::spawn(move || fio.wait_with_output());

    // Cut the main path once fio has written through it for a while.
    let started = main.stats().bytes_to_target;
    assert!(
        main.wait_for(SETTLE, |s| s.bytes_to_target > started + 12 * MIB),
        "fio writes through the main path: {:?}",
        main.stats()
    );
    main.refuse();
    main.reset();

    let deadline = Instant::now() + TOOL_TIMEOUT;
    while !output.is_finished() {
        assert!(
            Instant::now() < deadline,
            "fio still running after {TOOL_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let output = output.join().unwrap().expect("fio ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fio failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&stdout[stdout.find('{').expect("a JSON report")..]).unwrap();
    assert_fio_clean(&report, 1, 48 * MIB);

    let status = attach.status().unwrap();
    let paths = &status["volume"]["paths"];
    assert_eq!(paths[0]["portal"], main_portal.as_str());
    assert!(
        paths[1]["completed"].as_u64().unwrap() > 0,
        "the secondary carried I/O: {status:#}"
    );
    assert_ne!(
        paths[0]["state"], "active",
        "the main path is cut: {status:#}"
    );
    assert!(main.stats().resets > 0, "{:?}", main.stats());
    assert_export_matches_backing(&attach, &tgt, size);
    stop(attach);
}

/// Several clients at once (nbdcopy fed through a pipe, a raw client), and
/// misbehaving ones in the middle: each of those is dropped, the others
/// never notice.
#[test]
fn misbehaving_clients_are_dropped_without_harming_the_others() {
    let size = 48 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(19));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let socket = attach.nbd_socket().unwrap().to_owned();
    let copied = 32 * MIB;
    let data = payload(19, copied);

    let mut good = raw(&attach, true);
    // A client that connects and says nothing, for the whole test.
    let mut silent = NbdStream::unix(&socket).unwrap();
    read_greeting(&mut silent).unwrap();

    // nbdcopy reads stdin: the test decides when it has data, so the bad
    // clients surely come while it is connected and copying.
    let mut command = Command::new(require_tool("nbdcopy").unwrap_or_else(|e| panic!("{e}")));
    command
        .args(["-", attach.uri()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut nbdcopy = spawn_tied(command).expect("nbdcopy starts");
    let mut pipe = nbdcopy.stdin.take().unwrap();
    pipe.write_all(&data[..(copied / 2) as usize]).unwrap();
    attach
        // The good client and the silent one count as soon as admitted.
        .wait_status(SETTLE, |s| s["nbd_clients"].as_u64().unwrap_or(0) >= 3)
        .unwrap_or_else(|s| panic!("nbdcopy connected: {s:#}"));

    let dropped = |what: &str, stream: &mut NbdStream| {
        let (closed, _) = stream.read_until_closed(SETTLE).unwrap();
        assert!(closed, "{what}: the server keeps the connection");
    };
    // Garbage after a complete handshake.
    let mut garbage = raw(&attach, false);
    garbage
        .send_bytes(b"GET / HTTP/1.1\r\nHost: nbd\r\n\r\n0123456789abcdef")
        .unwrap();
    let (_, mut rx) = garbage.into_split();
    dropped("garbage in transmission", rx.stream_mut());
    // A bad option magic in the handshake.
    let mut bad = NbdStream::unix(&socket).unwrap();
    read_greeting(&mut bad).unwrap();
    bad.write_all(&(FLAG_FIXED_NEWSTYLE as u32).to_be_bytes())
        .unwrap();
    bad.write_all(b"IHAVEOPX\0\0\0\x07\0\0\0\0").unwrap();
    dropped("bad option magic", &mut bad);
    // Client flags nobody defined.
    let mut flags = NbdStream::unix(&socket).unwrap();
    read_greeting(&mut flags).unwrap();
    flags.write_all(&0xffff_ffffu32.to_be_bytes()).unwrap();
    dropped("unknown client flags", &mut flags);
    // Half a request, then gone.
    let mut half = raw(&attach, false);
    half.send_bytes(&REQUEST_MAGIC.to_be_bytes()).unwrap();
    half.send_bytes(&[0, 0, 0, 1, 0, 0]).unwrap();
    drop(half);
    // A write whose payload never comes: the server waits for it, then the
    // client leaves.
    let mut short = raw(&attach, false);
    short.send(CMD_WRITE, 0, 0, 65536, &[]).unwrap();
    short.send_bytes(&[0xee; 1000]).unwrap();
    drop(short);

    // The good client is still served, on a range nbdcopy does not touch.
    let mine = payload(191, MIB);
    assert_eq!(good.write(40 * MIB, &mine, 0).unwrap(), 0);
    assert_same(
        &good.read(40 * MIB, MIB as u32).unwrap().unwrap(),
        &mine,
        "the good client",
    );
    assert!(
        nbdcopy.try_wait().unwrap().is_none(),
        "nbdcopy waits for the rest of its input"
    );

    pipe.write_all(&data[(copied / 2) as usize..]).unwrap();
    drop(pipe);
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = nbdcopy.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "nbdcopy still running");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "nbdcopy failed: {status}");
    good.disconnect().unwrap();
    drop(silent);
    attach
        .wait_status(SETTLE, |s| s["nbd_clients"] == 0)
        .unwrap_or_else(|s| panic!("every client is gone: {s:#}"));

    assert_same(&backing(&tgt, 0, copied), &data, "what nbdcopy wrote");
    assert_same(
        &backing(&tgt, 40 * MIB, MIB),
        &mine,
        "what the good client wrote",
    );
    let untouched = 32 * MIB..40 * MIB;
    assert_same(
        &backing(&tgt, untouched.start, untouched.end - untouched.start),
        &tgt.first_lun()
            .initial_bytes(untouched.start, (untouched.end - untouched.start) as usize),
        "the range nobody wrote",
    );
    stop(attach);
}

/// SIGINT while a client has writes in flight: attach answers what it had
/// started, refuses the rest with ESHUTDOWN, exits 0 and removes its sockets;
/// every write it acknowledged is on the target.
#[test]
fn sigint_with_writes_in_flight_keeps_every_acknowledged_write() {
    let size = 64 * MIB;
    let tgt = tgt(LunSpec::new(size));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let chunk = 256 * 1024u64;
    let count = size / chunk;
    let seed = 0x51_6e47;

    // Made beforehand: the writer must do nothing but send, so that the
    // server, not the writer, is what the requests wait for.
    let data = Arc::new(pattern::bytes(seed, 0, size as usize));
    let (mut tx, mut rx) = raw(&attach, true).into_split();
    // handle -> offset, recorded before each send (a reply may come back
    // before `send` returns).
    let sent: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let writer = {
        let (sent, data) = (sent.clone(), data.clone());
        thread::spawn(move || {
            for i in 0..count {
                let offset = i * chunk;
                sent.lock().unwrap().push((tx.next_handle(), offset));
                let piece = &data[offset as usize..(offset + chunk) as usize];
                if tx.send(CMD_WRITE, 0, offset, chunk as u32, piece).is_err() {
                    // The server closed the connection while stopping.
                    return;
                }
            }
        })
    };
    let replies: Arc<Mutex<Vec<(u64, u32)>>> = Arc::default();
    let reader = {
        let replies = replies.clone();
        thread::spawn(move || {
            while let Ok(reply) = rx.receive() {
                replies.lock().unwrap().push((reply.handle, reply.error));
            }
        })
    };
    let deadline = Instant::now() + SETTLE;
    while replies.lock().unwrap().len() < 8 {
        assert!(Instant::now() < deadline, "no write was answered");
        thread::sleep(Duration::from_millis(1));
    }
    let at_signal = replies.lock().unwrap().len();
    let sent_at_signal = sent.lock().unwrap().len();
    assert!(sent_at_signal > at_signal, "writes are in flight at SIGINT");
    stop(attach);
    writer.join().unwrap();
    reader.join().unwrap();

    let replies = replies.lock().unwrap();
    let sent = sent.lock().unwrap();
    let mut acknowledged = 0;
    for &(handle, error) in replies.iter() {
        let offset = sent
            .iter()
            .find(|(h, _)| *h == handle)
            .map(|(_, o)| *o)
            .unwrap_or_else(|| panic!("a reply for handle {handle}, never sent"));
        match error {
            0 => {
                acknowledged += 1;
                assert_same(
                    &backing(&tgt, offset, chunk),
                    &data[offset as usize..(offset + chunk) as usize],
                    &format!("acknowledged write at {offset}"),
                );
            }
            ESHUTDOWN => {}
            other => panic!("write at {offset} failed with {other} at shutdown"),
        }
    }
    eprintln!(
        "{sent_at_signal} sent and {at_signal} answered at SIGINT; at exit {} sent, {} answered, \
         {acknowledged} acknowledged",
        sent.len(),
        replies.len()
    );
    assert!(
        acknowledged >= at_signal,
        "writes answered before the signal were acknowledged"
    );
}

/// A client that connected but never finished its handshake (a port scan,
/// a hung client) has nothing in flight: SIGINT must not wait for it.
#[test]
fn sigint_does_not_wait_for_a_client_stuck_in_its_handshake() {
    let tgt = tgt(LunSpec::new(4 * MIB));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let mut stuck = NbdStream::unix(attach.nbd_socket().unwrap()).unwrap();
    read_greeting(&mut stuck).unwrap();
    attach
        .wait_status(SETTLE, |s| s["nbd_clients"] == 1)
        .unwrap_or_else(|s| panic!("the client is admitted: {s:#}"));
    let started = Instant::now();
    stop(attach);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
    let (closed, _) = stuck.read_until_closed(SETTLE).unwrap();
    assert!(closed, "the stuck client is disconnected");
}

/// Option haggling as the protocol document has it, on raw sockets: the
/// options a server refuses (STARTTLS, unknown, too large, malformed, a
/// wrong export name) are answered and the negotiation goes on; LIST and
/// INFO answer; a non-fixed-newstyle client still gets in with
/// NBD_OPT_EXPORT_NAME (and the 124 zero bytes it did not waive).
#[test]
fn option_haggling_refuses_and_goes_on() {
    let size = 4 * MIB;
    let tgt = tgt(LunSpec::new(size).pattern(21));
    let attach = attach(&info(&tgt, |_| {}), &["--export", "disk"]);
    let socket = attach.nbd_socket().unwrap().to_owned();

    let mut s = NbdStream::unix(&socket).unwrap();
    let flags = read_greeting(&mut s).unwrap();
    assert_eq!(flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES), 3);
    s.write_all(&1u32.to_be_bytes()).unwrap();
    let name_info = |name: &str| {
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&0u16.to_be_bytes());
        d
    };
    const REP_ERR_UNSUP: u32 = (1 << 31) | 1;
    const REP_ERR_POLICY: u32 = (1 << 31) | 2;
    const REP_ERR_INVALID: u32 = (1 << 31) | 3;
    const REP_ERR_UNKNOWN: u32 = (1 << 31) | 6;
    const REP_ERR_TOO_BIG: u32 = (1 << 31) | 9;
    for (what, option, data, expected) in [
        ("STARTTLS", 5, vec![], REP_ERR_POLICY),
        ("an unknown option", 0x7777, vec![1, 2, 3], REP_ERR_UNSUP),
        ("LIST with data", 3, vec![0], REP_ERR_INVALID),
        ("INFO, truncated", 6, vec![0, 0], REP_ERR_INVALID),
        (
            "INFO, no such export",
            6,
            name_info("nope"),
            REP_ERR_UNKNOWN,
        ),
        ("GO, no such export", 7, name_info("nope"), REP_ERR_UNKNOWN),
        (
            "a 100 KiB option",
            0x7778,
            vec![0; 100 << 10],
            REP_ERR_TOO_BIG,
        ),
    ] {
        let replies = haggle(&mut s, option, &data);
        assert_eq!(replies.len(), 1, "{what}: {replies:?}");
        assert_eq!(replies[0].0, expected, "{what}: {replies:?}");
        assert!(!replies[0].1.is_empty(), "{what}: an error message");
    }
    let list = haggle(&mut s, 3, &[]);
    assert_eq!(list.len(), 2, "one export, then ACK: {list:?}");
    assert_eq!(list[0].0, 2, "NBD_REP_SERVER");
    assert_eq!(&list[0].1[..8], &[0, 0, 0, 4, b'd', b'i', b's', b'k']);
    assert_eq!(list[1].0, REP_ACK);
    for name in ["disk", ""] {
        let info = haggle(&mut s, 6, &name_info(name));
        assert_eq!(info.last().map(|r| r.0), Some(REP_ACK), "{info:?}");
        let export = info
            .iter()
            .find(|(kind, d)| *kind == REP_INFO && d[..2] == [0, 0])
            .expect("NBD_INFO_EXPORT");
        assert_eq!(&export.1[2..10], &size.to_be_bytes(), "INFO for {name:?}");
    }
    // And the same connection still gets in.
    let mut c = NbdClient::negotiate_after_flags(s, "disk", true).expect("GO after all that");
    let data = c.read(0, 4096).unwrap().expect("a read");
    assert_same(&data, &backing(&tgt, 0, 4096), "after option haggling");
    c.disconnect().unwrap();

    // Non-fixed newstyle: only NBD_OPT_EXPORT_NAME; size, flags, 124 zeroes.
    let mut s = NbdStream::unix(&socket).unwrap();
    read_greeting(&mut s).unwrap();
    s.write_all(&0u32.to_be_bytes()).unwrap();
    send_option(&mut s, 1, b"disk");
    let mut answer = [0u8; 8 + 2 + 124];
    std::io::Read::read_exact(&mut s, &mut answer).unwrap();
    assert_eq!(&answer[..8], &size.to_be_bytes());
    assert!(answer[10..].iter().all(|&b| b == 0), "124 zero bytes");
    let mut c = NbdClient::from_transmission(s, size, false);
    let data = c.read(size - 512, 512).unwrap().expect("a read");
    assert_same(&data, &backing(&tgt, size - 512, 512), "after EXPORT_NAME");
    c.disconnect().unwrap();

    // EXPORT_NAME of an unknown export cannot be answered: the server hangs up.
    let mut s = NbdStream::unix(&socket).unwrap();
    read_greeting(&mut s).unwrap();
    s.write_all(&3u32.to_be_bytes()).unwrap();
    send_option(&mut s, 1, b"nope");
    let (closed, got) = s.read_until_closed(SETTLE).unwrap();
    assert!(
        closed && got.is_empty(),
        "closed without an answer: {got:?}"
    );
    stop(attach);
}

fn send_option(s: &mut NbdStream, option: u32, data: &[u8]) {
    let mut out = IHAVEOPT.to_be_bytes().to_vec();
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    s.write_all(&out).unwrap();
}

/// Sends an option and reads its replies up to the final one (an ACK or
/// an error): `(reply type, data)` each.
fn haggle(s: &mut NbdStream, option: u32, data: &[u8]) -> Vec<(u32, Vec<u8>)> {
    send_option(s, option, data);
    let mut replies = Vec::new();
    loop {
        let mut header = [0u8; 20];
        std::io::Read::read_exact(s, &mut header).unwrap();
        assert_eq!(&header[..8], &REPLY_MAGIC.to_be_bytes());
        assert_eq!(&header[8..12], &option.to_be_bytes());
        let kind = u32::from_be_bytes(header[12..16].try_into().unwrap());
        let len = u32::from_be_bytes(header[16..20].try_into().unwrap());
        let mut data = vec![0; len as usize];
        std::io::Read::read_exact(s, &mut data).unwrap();
        let last = kind == REP_ACK || kind & (1 << 31) != 0;
        replies.push((kind, data));
        if last {
            return replies;
        }
    }
}

/// NBD_CMD_DISC with writes in flight: each is answered and on the target
/// before the server closes the connection.
#[test]
fn disconnect_answers_the_requests_in_flight_first() {
    let size = 16 * MIB;
    let tgt = tgt(LunSpec::new(size));
    let attach = attach(&info(&tgt, |_| {}), &[]);
    let mut c = raw(&attach, true);
    let data = payload(22, 8 * MIB);
    let mut handles = Vec::new();
    for (i, piece) in data.chunks(MIB as usize).enumerate() {
        handles.push(
            c.send(CMD_WRITE, 0, i as u64 * MIB, MIB as u32, piece)
                .unwrap(),
        );
    }
    c.send(CMD_DISC, 0, 0, 0, &[]).unwrap();
    let (_, mut rx) = c.into_split();
    let mut answered = Vec::new();
    for _ in &handles {
        let reply = rx.receive().expect("a reply before the close");
        assert_eq!(reply.error, 0, "{reply:?}");
        answered.push(reply.handle);
    }
    answered.sort_unstable();
    assert_eq!(answered, handles);
    let (closed, rest) = rx.stream_mut().read_until_closed(SETTLE).unwrap();
    assert!(
        closed && rest.is_empty(),
        "then the server closes: {rest:?}"
    );
    assert_same(&backing(&tgt, 0, 8 * MIB), &data, "the writes before DISC");
    stop(attach);
}
