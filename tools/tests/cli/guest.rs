//! `riscsi attach` with a real kernel's NBD driver, in a guest booted under
//! qemu (the harness in riscsi_tests::guest): the guest's nbd-client on an
//! export served from the host, and `riscsi attach --device /dev/nbd0` inside
//! the guest with the main path cut from the host while ext4 is written.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use riscsi_tests::guest::{Guest, GuestFile, HOST_ADDR};
use riscsi_tests::prelude::*;
use riscsi_tests::{Attach, ConnectionInfo, free_port, require_tool};

use sha2::{Digest, Sha256};

const GUEST_TIMEOUT: Duration = Duration::from_secs(300);
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:guest";

/// Files the guest writes: (name, size); each a pattern the host can check.
const FILES: [(&str, usize); 4] = [
    ("/mnt/a.bin", 300_000),
    ("/mnt/b.bin", 1_000_000),
    ("/mnt/dir/c.bin", 4096),
    ("/mnt/d.bin", 2_500_000),
];

/// The `key=value` value of `key` in the guest's output.
fn field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

/// A shell loop writing FILES with fsync (busybox has no fsync applet: dd's
/// conv=fsync, then syncfs for the metadata), printing each file's sha256
/// only once both succeeded.
fn write_files_script(pause: &str) -> String {
    let mut s = String::from("mkdir -p /mnt/dir\n");
    for (i, (name, size)) in FILES.iter().enumerate() {
        s.push_str(&format!(
            "dd if=/dev/urandom of={name} bs={size} count=1 conv=fsync 2>/dev/null && sync -f {name} \
             && echo sum{i}=$(sha256sum {name} | cut -d' ' -f1)\n{pause}\n"
        ));
    }
    s
}

/// Reads a file out of an ext4 image with debugfs; its sha256.
fn file_sum(image: &Path, name: &str) -> String {
    let debugfs = require_tool("debugfs").unwrap();
    let inside = name.strip_prefix("/mnt").unwrap();
    let out = Command::new(debugfs)
        .args(["-R", &format!("cat {inside}")])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debugfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex(&Sha256::digest(&out.stdout))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the guest's sums against the files as riscsi reads them back
/// from the volume on the host.
fn check_files(ci: &Path, output: &str, dir: &Path) {
    let image = dir.join("volume.img");
    let out = Command::new(env!("CARGO_BIN_EXE_riscsi"))
        .args(["copy", "--initiator-name", INITIATOR])
        .arg(format!("@{}", ci.display()))
        .arg(&image)
        .env("RISCSI_STATE_DIR", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, (name, _)) in FILES.iter().enumerate() {
        let guest =
            field(output, &format!("sum{i}")).unwrap_or_else(|| panic!("sum{i} in {output}"));
        assert_eq!(
            file_sum(&image, name),
            guest,
            "{name} read back on the host"
        );
    }
}

fn write_ci(info: &ConnectionInfo, dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, info.to_json(ConnectionInfoForm::Lists).to_string()).unwrap();
    path
}

/// (a) The guest kernel's nbd-client attaches `riscsi attach --nbd-listen`
/// on the host; ext4 is made and written in the guest; the host reads the
/// files back through riscsi.
#[test]
fn a_guest_nbd_client_uses_the_export_of_riscsi_attach() {
    let image = Guest::image().unwrap();
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(64 << 20))
        .start()
        .unwrap();
    let dir = riscsi_tests::temp_dir("guest-nbd").unwrap();
    let ci = write_ci(&tgt.connection_info_spec(), dir.path(), "ci.json");
    let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let attach = Attach::start_in(
        dir.path(),
        &format!("@{}", ci.display()),
        &["--nbd-listen", &listen, "--export", "vol"],
    )
    .unwrap();
    let uri = attach.uri().to_owned();
    assert_eq!(uri, format!("nbd://127.0.0.1:{port}/vol"));
    let script = format!(
        "nbd-client {HOST_ADDR} {port} /dev/nbd0 -N vol || exit 10\n\
         mkfs.ext4 -q /dev/nbd0 || exit 11\n\
         mount /dev/nbd0 /mnt || exit 12\n\
         {files}\
         umount /mnt || exit 13\n\
         fsck.ext4 -n /dev/nbd0 >/dev/null && echo fsck=clean\n\
         nbd-client -d /dev/nbd0\n",
        files = write_files_script("")
    );
    let run = image.run_ok(&script, &[], GUEST_TIMEOUT).unwrap();
    assert_eq!(field(&run.output, "fsck"), Some("clean"), "{}", run.console);
    attach.stop().unwrap();
    check_files(&ci, &run.output, dir.path());
}

/// (b) `riscsi attach --device /dev/nbd0` inside the guest, against tgtd on
/// the host through two proxies (two paths); ext4 is written with fsync
/// while the main path is cut from the host; afterwards fsck is clean, the
/// attach exits 0, and the host finds every file intact.
#[test]
fn riscsi_attach_device_in_a_guest_survives_a_main_path_cut() {
    let image = Guest::image().unwrap();
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(64 << 20))
        .start()
        .unwrap();
    let proxies: Vec<FaultProxy> = tgt
        .portals()
        .iter()
        .map(|p| {
            let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            FaultProxy::start_on(listen, *p).unwrap()
        })
        .collect();
    // The guest reaches the host's loopback at HOST_ADDR.
    let ports: Vec<(SocketAddr, u16)> = proxies
        .iter()
        .map(|p| (p.target_addr(), p.listen_addr().port()))
        .collect();
    let guest_info = tgt.connection_info_spec().map_portals(|p| {
        let port = ports.iter().find(|(t, _)| *t == p).unwrap().1;
        SocketAddr::new(IpAddr::V4(HOST_ADDR), port)
    });
    let dir = riscsi_tests::temp_dir("guest-device").unwrap();
    let ci_text = guest_info.to_json(ConnectionInfoForm::Lists).to_string();
    let script = format!(
        "export RISCSI_STATE_DIR=/tmp RISCSI_RUN_DIR=/tmp/run\n\
         riscsi -v attach --initiator-name {INITIATOR} @/ci.json --device /dev/nbd0 \
           --nop-interval 1 --nop-timeout 1 >/tmp/ready 2>/tmp/attach.log &\n\
         A=$!\n\
         for i in $(seq 150); do [ -s /tmp/ready ] && break; sleep 0.2; done\n\
         echo ready=$(cat /tmp/ready)\n\
         mkfs.ext4 -q /dev/nbd0 || exit 11\n\
         mount /dev/nbd0 /mnt || exit 12\n\
         {files}\
         umount /mnt || exit 13\n\
         fsck.ext4 -n /dev/nbd0 >/dev/null && echo fsck=clean\n\
         kill -INT $A; wait $A; echo attach_exit=$?\n\
         echo failovers=$(grep -c 'failover: I/O leaves the main path' /tmp/attach.log)\n\
         echo netlink=$(grep -c 'kernel NBD device connected' /tmp/attach.log)\n\
         grep -E 'WARN|ERROR' /tmp/attach.log | tail -5\n",
        files = write_files_script("sleep 2")
    );
    let files = [
        GuestFile::host(env!("CARGO_BIN_EXE_riscsi"), "/bin/riscsi"),
        GuestFile::bytes("/ci.json", ci_text.into_bytes(), 0o644),
    ];
    // Cut the main path once the guest is writing through it: reset its
    // connections and refuse new ones for 3 s.
    let stop = Arc::new(AtomicBool::new(false));
    let cutter = {
        let main = proxies[0].control();
        let stop = stop.clone();
        thread::spawn(move || {
            let started = Instant::now();
            while main.stats().bytes_to_target < (4 << 20) {
                if stop.load(Ordering::Relaxed) || started.elapsed() > GUEST_TIMEOUT {
                    return false;
                }
                thread::sleep(Duration::from_millis(50));
            }
            thread::sleep(Duration::from_secs(2));
            main.refuse();
            main.reset();
            thread::sleep(Duration::from_secs(3));
            main.resume();
            true
        })
    };
    let run = image.run(&script, &files, GUEST_TIMEOUT).unwrap();
    stop.store(true, Ordering::Relaxed);
    let cut = cutter.join().unwrap();
    assert!(cut, "the main path carried I/O to cut: {}", run.console);
    assert!(proxies[0].stats().resets > 0, "the cut reset connections");
    assert_eq!(run.exit_status, 0, "{}", run.console);
    assert_eq!(
        field(&run.output, "ready"),
        Some("/dev/nbd0"),
        "{}",
        run.console
    );
    assert_eq!(field(&run.output, "fsck"), Some("clean"), "{}", run.console);
    assert_eq!(
        field(&run.output, "attach_exit"),
        Some("0"),
        "{}",
        run.console
    );
    assert_ne!(
        field(&run.output, "failovers"),
        Some("0"),
        "I/O failed over: {}",
        run.console
    );
    assert_eq!(field(&run.output, "netlink"), Some("1"), "{}", run.console);
    // The host reads the volume through the same two portals, directly.
    let host_ci = write_ci(&tgt.connection_info_spec(), dir.path(), "ci.json");
    check_files(&host_ci, &run.output, dir.path());
}

/// Files of the long workload: (name, size), written one after the other
/// with fsync while the faults run.
fn workload_files(rounds: usize) -> Vec<(String, usize)> {
    (0..rounds)
        .map(|i| (format!("/mnt/w/{i:02}.bin"), 64 * 1024 + i * 37_000))
        .collect()
}

/// (c) The issue-8 filesystem case: ext4 on `/dev/nbd0` in the guest (the
/// kernel's NBD driver over `riscsi attach --device`), files written with
/// fsync while the main path flaps every second and then tgtd is killed
/// with SIGKILL and restarted; afterwards `fsck.ext4 -n` is clean in the
/// guest and every fsynced file reads back intact on the host.
#[test]
fn ext4_survives_a_flapping_main_path_and_a_target_restart() {
    let image = Guest::image().unwrap();
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(64 << 20))
        .start()
        .unwrap();
    let proxies: Vec<FaultProxy> = tgt
        .portals()
        .iter()
        .map(|p| {
            let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            FaultProxy::start_on(listen, *p).unwrap()
        })
        .collect();
    let ports: Vec<(SocketAddr, u16)> = proxies
        .iter()
        .map(|p| (p.target_addr(), p.listen_addr().port()))
        .collect();
    let guest_info = tgt.connection_info_spec().map_portals(|p| {
        let port = ports.iter().find(|(t, _)| *t == p).unwrap().1;
        SocketAddr::new(IpAddr::V4(HOST_ADDR), port)
    });
    let host_info = tgt.connection_info_spec();
    let dir = riscsi_tests::temp_dir("guest-ext4-faults").unwrap();
    let files = workload_files(24);
    let mut writes = String::from("mkdir -p /mnt/w\n");
    for (i, (name, size)) in files.iter().enumerate() {
        writes.push_str(&format!(
            "dd if=/dev/urandom of={name} bs={size} count=1 conv=fsync 2>/dev/null \
             && sync -f {name} && echo wsum{i}=$(sha256sum {name} | cut -d' ' -f1)\n\
             sleep 1\n"
        ));
    }
    let script = format!(
        "export RISCSI_STATE_DIR=/tmp RISCSI_RUN_DIR=/tmp/run\n\
         riscsi -v attach --initiator-name {INITIATOR} @/ci.json --device /dev/nbd0 \
           --nop-interval 1 --nop-timeout 1 >/tmp/ready 2>/tmp/attach.log &\n\
         A=$!\n\
         for i in $(seq 150); do [ -s /tmp/ready ] && break; sleep 0.2; done\n\
         echo ready=$(cat /tmp/ready)\n\
         mkfs.ext4 -q /dev/nbd0 || exit 11\n\
         mount /dev/nbd0 /mnt || exit 12\n\
         {writes}\
         umount /mnt || exit 13\n\
         fsck.ext4 -n /dev/nbd0 >/dev/null && echo fsck=clean\n\
         kill -INT $A; wait $A; echo attach_exit=$?\n\
         grep -E 'WARN|ERROR' /tmp/attach.log | tail -5\n"
    );
    let ci_text = guest_info.to_json(ConnectionInfoForm::Lists).to_string();
    let guest_files = [
        GuestFile::host(env!("CARGO_BIN_EXE_riscsi"), "/bin/riscsi"),
        GuestFile::bytes("/ci.json", ci_text.into_bytes(), 0o644),
    ];
    // Once the guest writes through the main path: flap it (refused and
    // reset for 500 ms, open for 500 ms) ten times, then kill tgtd and
    // start it again on the same portals and backing file.
    let stop = Arc::new(AtomicBool::new(false));
    let faults = {
        let main = proxies[0].control();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut tgt = tgt;
            let started = Instant::now();
            while main.stats().bytes_to_target < (4 << 20) {
                if stop.load(Ordering::Relaxed) || started.elapsed() > GUEST_TIMEOUT {
                    return (tgt, false);
                }
                thread::sleep(Duration::from_millis(50));
            }
            thread::sleep(Duration::from_secs(2));
            for _ in 0..10 {
                main.refuse();
                main.reset();
                thread::sleep(Duration::from_millis(500));
                main.resume();
                thread::sleep(Duration::from_millis(500));
            }
            tgt.kill();
            thread::sleep(Duration::from_secs(2));
            let restarted = tgt.restart().is_ok();
            (tgt, restarted)
        })
    };
    let run = image.run(&script, &guest_files, GUEST_TIMEOUT).unwrap();
    stop.store(true, Ordering::Relaxed);
    let (tgt, faulted) = faults.join().unwrap();
    assert!(
        faulted,
        "the faults ran while the guest wrote: {}",
        run.console
    );
    assert!(proxies[0].stats().resets > 0, "the flaps reset connections");
    assert_eq!(run.exit_status, 0, "{}", run.console);
    assert_eq!(
        field(&run.output, "ready"),
        Some("/dev/nbd0"),
        "{}",
        run.console
    );
    assert_eq!(field(&run.output, "fsck"), Some("clean"), "{}", run.console);
    assert_eq!(
        field(&run.output, "attach_exit"),
        Some("0"),
        "{}",
        run.console
    );
    // Every file the guest fsynced, read back on the host through riscsi.
    let ci = write_ci(&host_info, dir.path(), "ci.json");
    let volume = dir.path().join("volume.img");
    let out = Command::new(env!("CARGO_BIN_EXE_riscsi"))
        .args(["copy", "--initiator-name", INITIATOR])
        .arg(format!("@{}", ci.display()))
        .arg(&volume)
        .env("RISCSI_STATE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, (name, _)) in files.iter().enumerate() {
        let guest = field(&run.output, &format!("wsum{i}"))
            .unwrap_or_else(|| panic!("wsum{i} (every write succeeded) in {}", run.console));
        assert_eq!(
            file_sum(&volume, name),
            guest,
            "{name} read back on the host"
        );
    }
    drop(tgt);
}
