//! The guest-kernel harness: a real kernel's NBD driver against nbdkit on the host,
//! host binaries running inside the guest, and a hung guest failing in time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use riscsi_tests::guest::{Guest, GuestFile, HOST_ADDR};
use riscsi_tests::{FixtureError, Result, free_port, listening_addrs, require_tool, spawn_tied};
use sha2::{Digest, Sha256};

/// Boot, attach, mkfs, two mounts and power-off take ~10 s here; this leaves room
/// for a loaded machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// `nbdkit memory SIZE` on 127.0.0.1, killed on drop.
struct Nbdkit {
    child: Child,
    port: u16,
}

impl Nbdkit {
    fn memory(size: &str) -> Result<Nbdkit> {
        let nbdkit = require_tool("nbdkit")?;
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = free_port(loopback).map_err(|e| FixtureError::io("no free port", e))?;
        let mut command = Command::new(nbdkit);
        command
            .args(["--exit-with-parent", "-f", "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["memory", size])
            .stdin(Stdio::null());
        let child = spawn_tied(command).map_err(|e| FixtureError::io("cannot start nbdkit", e))?;
        let mut server = Nbdkit { child, port };
        let listening = SocketAddr::new(loopback, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server
                .child
                .try_wait()
                .map_err(|e| FixtureError::io("waiting for nbdkit", e))?
            {
                return Err(FixtureError::InvalidConfig(format!(
                    "nbdkit exited during startup ({status})"
                )));
            }
            if listening_addrs(server.child.id()).is_ok_and(|addrs| addrs.contains(&listening)) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let _ = server.child.kill();
                return Err(FixtureError::InvalidConfig(format!(
                    "nbdkit not listening on {listening} within 10 s"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nbdkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the `key=value` line `key` in `output`.
fn field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn guest_nbd_client_formats_writes_and_reads_back_an_nbdkit_export() -> Result<()> {
    let image = Guest::image()?;
    let nbdkit = Nbdkit::memory("64M")?;
    let content: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let expected = format!("{:x}", Sha256::digest(content.as_bytes()));
    let host = HOST_ADDR;
    let port = nbdkit.port;
    // Detach and attach again before reading back, so the checksum comes from the
    // server and not from the guest's page cache.
    let script = format!(
        r#"set -e
nbd-client {host} {port} /dev/nbd0 -N ''
mkfs.ext4 -q /dev/nbd0
mount -t ext4 /dev/nbd0 /mnt
cp /data.txt /mnt/data.txt
sync
umount /mnt
fsck.ext4 -n /dev/nbd0
nbd-client -d /dev/nbd0
nbd-client {host} {port} /dev/nbd0 -N ''
mount -t ext4 -o ro /dev/nbd0 /mnt
echo "sha256=$(sha256sum /mnt/data.txt | cut -d' ' -f1)"
umount /mnt
nbd-client -d /dev/nbd0
"#
    );
    let run = image.run_ok(
        &script,
        &[GuestFile::bytes("/data.txt", content, 0o644)],
        RUN_TIMEOUT,
    )?;
    eprintln!("boot-attach-mkfs-write-read-poweroff: {:?}", run.elapsed);
    assert_eq!(
        field(&run.output, "sha256"),
        Some(expected.as_str()),
        "{}",
        run.console
    );
    Ok(())
}

#[test]
fn host_binaries_run_in_the_guest_with_their_libraries() -> Result<()> {
    let image = Guest::image()?;
    // Dynamically linked coreutils: they only run if libc and the loader came along.
    let uname = require_tool("uname")?;
    let run = image.run(
        "/opt/host/uname -r; echo status=$?; exit 3",
        &[GuestFile::host(uname, "/opt/host/uname")],
        RUN_TIMEOUT,
    )?;
    eprintln!("boot-run-poweroff: {:?}", run.elapsed);
    assert_eq!(run.exit_status, 3, "{}", run.console);
    assert_eq!(
        run.output,
        format!("{}\nstatus=0\n", image.kernel_release()),
        "{}",
        run.console
    );
    Ok(())
}

#[test]
fn a_hung_guest_fails_with_its_console() -> Result<()> {
    let image = Guest::image()?;
    let started = Instant::now();
    let err = image
        .run(
            "echo about to hang; sleep 1000",
            &[],
            Duration::from_secs(30),
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(60));
    let FixtureError::Guest { problem, console } = &err else {
        panic!("unexpected error: {err}");
    };
    assert!(problem.contains("did not power off"), "{err}");
    assert!(console.contains("about to hang"), "{err}");
    Ok(())
}

/// The end marker follows everything the script printed, even when the console
/// is still busy with it at power-off.
#[test]
fn long_output_reaches_the_host_whole() -> Result<()> {
    let image = Guest::image()?;
    let run = image.run_ok("seq 1 20000", &[], RUN_TIMEOUT)?;
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert!(run.output == expected, "{}", run.console);
    Ok(())
}
