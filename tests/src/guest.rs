//! A real Linux kernel for tests: Debian 12's cloud kernel booted under qemu (TCG)
//! with a busybox initramfs, so a test can run a shell script next to a kernel
//! that has the NBD driver (this machine's kernel has none).
//!
//! The guest is built from Debian packages downloaded with `apt-get download` and
//! cached under [`cache_root`]: the kernel and its modules
//! (`linux-image-cloud-amd64`'s versioned dependency), `busybox-static`, and
//! `nbd-client`; `mkfs.ext4`, `fsck.ext4` and every shared library these need come
//! from the host. Each run appends a second cpio archive holding the script and the
//! files the test asked for (host binaries with their libraries), boots, and reads
//! the script's output and exit status from the serial console.
//!
//! Inside the guest: the network is qemu's user networking, the guest is
//! [`GUEST_ADDR`] and reaches the host's `127.0.0.1:PORT` at [`HOST_ADDR`]`:PORT`;
//! `/dev/nbd0..15` exist; `PATH` has busybox, `nbd-client`, `mkfs.ext4`,
//! `fsck.ext4`; `/mnt` and `/tmp` are free to use.
//!
//! ```no_run
//! use std::time::Duration;
//! use riscsi_tests::guest::{Guest, GuestFile};
//!
//! let image = Guest::image()?;
//! let run = image.run(
//!     "uname -r; /opt/true && echo ran",
//!     &[GuestFile::host("/bin/true", "/opt/true")],
//!     Duration::from_secs(120),
//! )?;
//! assert_eq!(run.exit_status, 0, "{}", run.console);
//! assert!(run.output.ends_with("ran\n"));
//! # Ok::<(), riscsi_tests::FixtureError>(())
//! ```

mod cpio;
mod initramfs;
mod packages;

use std::env;
use std::fs::{self, File};
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::command::{drain, join_drain, wait_until};
use crate::error::{FixtureError, Result};
use crate::net::random_u64;
use crate::spawn::spawn_tied;
use crate::temp::temp_dir;
use crate::tools::require_tool;
use initramfs::Entries;

/// The guest's address on qemu's user network.
pub const GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// The host as the guest sees it: connections to it reach the host's loopback.
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// Environment variable overriding where the guest is cached.
pub const CACHE_ENV: &str = "RISCSI_GUEST_CACHE";

/// Default guest memory, enough for a few page caches of test volumes.
pub const DEFAULT_MEMORY_MIB: u32 = 1024;

/// Markers the init script prints around the test script's output.
const BEGIN_MARKER: &str = "@@riscsi-guest: begin@@\n";
const END_MARKER: &str = "\n@@riscsi-guest: end ";
const SETUP_FAILED_MARKER: &str = "@@riscsi-guest: setup failed: ";

/// How much of the console an error quotes.
const CONSOLE_TAIL: usize = 16 * 1024;

/// Entry point: the guest image of this machine, built on first use.
#[derive(Debug, Clone, Copy)]
pub struct Guest;

impl Guest {
    /// The guest image, downloaded and assembled on first use and reused from the
    /// cache afterwards. Reuse still takes most of a second, once per process:
    /// `apt-cache` is asked which package versions are current, and the host
    /// tools' libraries are listed again so that a host upgrade rebuilds the
    /// initramfs.
    ///
    /// Callers in one process share one build; parallel processes may each build
    /// but never see a half-built cache (everything is renamed into place).
    pub fn image() -> Result<GuestImage> {
        static IMAGE: Mutex<Option<GuestImage>> = Mutex::new(None);
        let mut image = IMAGE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(image) = image.as_ref() {
            return Ok(image.clone());
        }
        let built = build_image()?;
        *image = Some(built.clone());
        Ok(built)
    }
}

/// Where guest images are cached: `$RISCSI_GUEST_CACHE`, else
/// `$CARGO_TARGET_DIR/riscsi-guest`, else `<workspace>/target/riscsi-guest` (a
/// relative `CARGO_TARGET_DIR` is taken relative to the workspace). Inside, one
/// directory per set of package versions.
pub fn cache_root() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    if let Some(dir) = env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    workspace.join(target).join("riscsi-guest")
}

/// A bootable guest: a kernel and the initramfs every run starts from.
#[derive(Debug, Clone)]
pub struct GuestImage {
    kernel: PathBuf,
    initramfs: PathBuf,
    release: String,
    packages: Vec<(String, String)>,
}

impl GuestImage {
    /// The guest kernel's release (`uname -r` inside), e.g. `6.1.0-57-cloud-amd64`.
    pub fn kernel_release(&self) -> &str {
        &self.release
    }

    /// The kernel image.
    pub fn kernel(&self) -> &Path {
        &self.kernel
    }

    /// The base initramfs (each run appends its own archive to a copy).
    pub fn initramfs(&self) -> &Path {
        &self.initramfs
    }

    /// The Debian packages (name, version) the image was built from.
    pub fn packages(&self) -> &[(String, String)] {
        &self.packages
    }

    /// A run of `script` (busybox `sh`) to configure before starting it.
    pub fn command(&self, script: &str) -> GuestCommand<'_> {
        GuestCommand {
            image: self,
            script: script.to_owned(),
            files: Vec::new(),
            timeout: Duration::from_secs(120),
            memory_mib: DEFAULT_MEMORY_MIB,
            qemu_args: Vec::new(),
        }
    }

    /// Boots, runs `script` with `files` in place, powers off; fails only when the
    /// guest could not run the script or report its exit status (timeout, panic,
    /// qemu failure). A non-zero exit status is returned in [`GuestRun`].
    pub fn run(&self, script: &str, files: &[GuestFile], timeout: Duration) -> Result<GuestRun> {
        self.command(script)
            .files(files.iter().cloned())
            .timeout(timeout)
            .run()
    }

    /// Like [`run`](Self::run), but a non-zero exit status is an error quoting the
    /// console.
    pub fn run_ok(&self, script: &str, files: &[GuestFile], timeout: Duration) -> Result<GuestRun> {
        self.run(script, files, timeout)?.success()
    }
}

/// A file to put into the guest for one run.
#[derive(Debug, Clone)]
pub struct GuestFile {
    guest_path: String,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Host(PathBuf),
    Bytes { data: Vec<u8>, mode: u32 },
}

impl GuestFile {
    /// The host file `host` at `guest_path` (absolute), with its permissions. A
    /// dynamically linked executable brings the libraries `ldd` names and the
    /// dynamic loader, at their host paths, so it runs in the guest.
    pub fn host(host: impl Into<PathBuf>, guest_path: impl Into<String>) -> Self {
        GuestFile {
            guest_path: guest_path.into(),
            source: Source::Host(host.into()),
        }
    }

    /// A file holding `data` at `guest_path` (absolute), with permission bits `mode`
    /// (e.g. `0o644`).
    pub fn bytes(guest_path: impl Into<String>, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        GuestFile {
            guest_path: guest_path.into(),
            source: Source::Bytes {
                data: data.into(),
                mode,
            },
        }
    }
}

/// One guest run being configured; [`run`](Self::run) starts it.
#[derive(Debug, Clone)]
pub struct GuestCommand<'a> {
    image: &'a GuestImage,
    script: String,
    files: Vec<GuestFile>,
    timeout: Duration,
    memory_mib: u32,
    qemu_args: Vec<String>,
}

impl GuestCommand<'_> {
    /// Adds a file.
    pub fn file(mut self, file: GuestFile) -> Self {
        self.files.push(file);
        self
    }

    /// Adds several files.
    pub fn files(mut self, files: impl IntoIterator<Item = GuestFile>) -> Self {
        self.files.extend(files);
        self
    }

    /// Deadline from qemu's start to its exit (default 120 s); past it qemu is killed
    /// and the run fails with the console so far.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Guest memory (default [`DEFAULT_MEMORY_MIB`]).
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// An extra qemu argument (e.g. another `-device`).
    pub fn qemu_arg(mut self, arg: impl Into<String>) -> Self {
        self.qemu_args.push(arg.into());
        self
    }

    /// Boots the guest, runs the script and powers off. See [`GuestImage::run`].
    pub fn run(&self) -> Result<GuestRun> {
        let qemu = require_tool("qemu-system-x86_64")?;
        let dir = temp_dir("guest")?;
        let initrd = dir.path().join("initrd");
        self.write_initrd(&initrd)?;

        let mut command = Command::new(&qemu);
        command
            .args(["-accel", "tcg", "-nodefaults", "-no-user-config"])
            .args(["-display", "none", "-no-reboot", "-serial", "stdio"])
            .args(["-smp", "1", "-m", &self.memory_mib.to_string()])
            .arg("-kernel")
            .arg(&self.image.kernel)
            .arg("-initrd")
            .arg(&initrd)
            // panic=-1 reboots at once on a panic, which -no-reboot turns into an exit.
            // no_timer_check: under TCG on a busy host the kernel's IO-APIC timer
            // check can miss its ticks and panic ("IO-APIC + timer doesn't work").
            .args(["-append", "console=ttyS0 quiet panic=-1 no_timer_check"])
            .args(["-netdev", "user,id=n0"])
            // romfile= : no iPXE boot ROM (we boot the kernel directly; the ROM
            // package may not even be installed).
            .args(["-device", "virtio-net-pci,netdev=n0,romfile="])
            .args(&self.qemu_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = spawn_tied(command)
            .map_err(|e| FixtureError::io(format!("cannot start {}", qemu.display()), e))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let waited = wait_until(&mut child, started + self.timeout);
        if !matches!(waited, Ok(Some(_))) {
            // Killing closes the pipes, which ends the drain threads.
            let _ = child.kill();
            let _ = child.wait();
        }
        let elapsed = started.elapsed();
        let console = join_drain(stdout).replace('\r', "");
        let qemu_stderr = join_drain(stderr);
        let with_stderr = |console: &str| {
            if qemu_stderr.trim().is_empty() {
                console.to_owned()
            } else {
                format!("{console}\n--- qemu stderr ---\n{}", qemu_stderr.trim())
            }
        };
        let status = match waited {
            Ok(Some(status)) => status,
            Ok(None) => {
                return Err(FixtureError::Guest {
                    problem: format!("did not power off within {:?}", self.timeout),
                    console: tail(&with_stderr(&console)),
                });
            }
            Err(e) => return Err(FixtureError::io("waiting for qemu", e)),
        };
        match parse_console(&console) {
            Ok((output, exit_status)) => Ok(GuestRun {
                output,
                exit_status,
                console,
                elapsed,
            }),
            Err(problem) => Err(FixtureError::Guest {
                problem: format!("{problem} (qemu exited: {status})"),
                console: tail(&with_stderr(&console)),
            }),
        }
    }

    /// The base initramfs followed by this run's archive (the kernel unpacks
    /// concatenated archives in turn, later entries replacing earlier ones).
    fn write_initrd(&self, initrd: &Path) -> Result<()> {
        let context = || format!("cannot write the guest initrd {}", initrd.display());
        fs::copy(&self.image.initramfs, initrd).map_err(|e| FixtureError::io(context(), e))?;
        let mut entries = Entries::default();
        entries.bytes("/run.sh", self.script.as_bytes().to_vec(), 0o755)?;
        for file in &self.files {
            match &file.source {
                Source::Host(host) => entries.host_file(&file.guest_path, host)?,
                Source::Bytes { data, mode } => {
                    entries.bytes(&file.guest_path, data.clone(), *mode)?
                }
            }
        }
        let out = fs::OpenOptions::new()
            .append(true)
            .open(initrd)
            .map_err(|e| FixtureError::io(context(), e))?;
        entries
            .write(BufWriter::new(out))
            .map_err(|e| FixtureError::io(context(), e))
    }
}

/// What a guest run printed and how its script exited.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// What the script printed (stdout and stderr, as they reached the console;
    /// kernel warnings may be mixed in).
    pub output: String,
    /// The script's exit status.
    pub exit_status: i32,
    /// The whole serial console: kernel messages, setup, the output, the end.
    pub console: String,
    /// From qemu's start to its exit.
    pub elapsed: Duration,
}

impl GuestRun {
    /// `self` if the script exited 0, else an error quoting the console.
    pub fn success(self) -> Result<GuestRun> {
        if self.exit_status == 0 {
            Ok(self)
        } else {
            Err(FixtureError::Guest {
                problem: format!("script exited with status {}", self.exit_status),
                console: tail(&self.console),
            })
        }
    }
}

/// Splits the console into the script's output and exit status, or says why the
/// guest did not get that far.
fn parse_console(console: &str) -> std::result::Result<(String, i32), String> {
    if let Some(at) = console.find(SETUP_FAILED_MARKER) {
        let reason = console[at + SETUP_FAILED_MARKER.len()..]
            .split("@@")
            .next()
            .unwrap_or("");
        return Err(format!("setup failed: {reason}"));
    }
    let Some(begin) = console.find(BEGIN_MARKER) else {
        return Err("stopped before running the script".to_owned());
    };
    let body = &console[begin + BEGIN_MARKER.len()..];
    let Some(end) = body.rfind(END_MARKER) else {
        return Err("stopped without reporting the script's exit status".to_owned());
    };
    let status = body[end + END_MARKER.len()..]
        .split("@@")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "printed an unreadable exit status".to_owned())?;
    Ok((body[..end].to_owned(), status))
}

/// The last [`CONSOLE_TAIL`] bytes of `text`, on a character boundary.
fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(CONSOLE_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Finds or builds the image: packages, then the base initramfs named by the
/// fingerprint of its contents.
fn build_image() -> Result<GuestImage> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb", "ldd"] {
        require_tool(tool)?;
    }
    let packages = packages::ensure_packages(&cache_root())?;
    let kernel = packages
        .tree("kernel")
        .join(format!("boot/vmlinuz-{}", packages.release));
    if !kernel.is_file() {
        return Err(FixtureError::InvalidConfig(format!(
            "the kernel package has no {}",
            kernel.display()
        )));
    }
    let entries = initramfs::base_entries(&packages)?;
    let initramfs = packages
        .dir
        .join(format!("initramfs-{:016x}.cpio", entries.fingerprint()?));
    if !initramfs.is_file() {
        let temp = packages
            .dir
            .join(format!(".initramfs-{:016x}", random_u64()));
        let context = || format!("cannot write the guest initramfs {}", temp.display());
        let out = File::create(&temp).map_err(|e| FixtureError::io(context(), e))?;
        entries
            .write(BufWriter::new(out))
            .map_err(|e| FixtureError::io(context(), e))?;
        fs::rename(&temp, &initramfs).map_err(|e| FixtureError::io(context(), e))?;
    }
    Ok(GuestImage {
        kernel,
        initramfs,
        release: packages.release,
        packages: packages
            .list
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_with_markers_parses() {
        let console = format!(
            "[    0.1] booting\n{BEGIN_MARKER}hello\nworld{END_MARKER}3@@\n[    2.0] reboot: Power down\n"
        );
        let (output, status) = parse_console(&console).unwrap();
        assert_eq!(output, "hello\nworld");
        assert_eq!(status, 3);
    }

    #[test]
    fn console_without_end_is_an_error() {
        let console = format!("{BEGIN_MARKER}partial output\nKernel panic");
        let err = parse_console(&console).unwrap_err();
        assert!(err.contains("without reporting"), "{err}");
        assert!(
            parse_console("Kernel panic")
                .unwrap_err()
                .contains("before running")
        );
    }

    #[test]
    fn setup_failure_is_reported() {
        let console = format!("{SETUP_FAILED_MARKER}insmod nbd@@\n");
        assert_eq!(
            parse_console(&console).unwrap_err(),
            "setup failed: insmod nbd"
        );
    }
}
