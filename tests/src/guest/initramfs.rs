//! What goes into the guest's initramfs: the base archive (busybox, init, kernel
//! modules, the NBD and ext4 tools with their libraries) and each run's additions.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::cpio::CpioWriter;
use super::packages::{Packages, QUICK_TIMEOUT, run_captured};
use super::{BEGIN_MARKER, END_MARKER, GUEST_ADDR, HOST_ADDR, SETUP_FAILED_MARKER};
use crate::command::ToolCommand;
use crate::error::{FixtureError, Result};
use crate::tools::require_tool;

/// Modules the guest loads (with their dependencies, in dependency order): the
/// network card and the NBD driver. ext4 is built into that kernel.
const MODULES: &[&str] = &["virtio_pci", "virtio_net", "nbd"];

/// Host tools copied into the guest, with their libraries: (host tool, guest path).
const HOST_TOOLS: &[(&str, &str)] = &[
    ("mkfs.ext4", "/sbin/mkfs.ext4"),
    ("fsck.ext4", "/sbin/fsck.ext4"),
];

/// Bumped whenever the layout of the base initramfs changes in a way its
/// fingerprint (the entries themselves) would not show.
const FORMAT: u32 = 1;

/// What goes into one cpio archive, by guest path (without the leading `/`).
#[derive(Default)]
pub(super) struct Entries {
    map: BTreeMap<String, Entry>,
}

enum Entry {
    Dir,
    Host { path: PathBuf, mode: u32 },
    Bytes { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

impl Entries {
    fn add(&mut self, guest_path: &str, entry: Entry) -> Result<()> {
        let path = relative_guest_path(guest_path)?;
        // Parents first, as the kernel creates entries in archive order; the map is
        // sorted, and a parent sorts before its children.
        let mut parent = Path::new(&path).parent();
        while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.map
                .entry(dir.to_string_lossy().into_owned())
                .or_insert(Entry::Dir);
            parent = dir.parent();
        }
        self.map.insert(path, entry);
        Ok(())
    }

    fn dir(&mut self, guest_path: &str) -> Result<()> {
        self.add(guest_path, Entry::Dir)
    }

    pub(super) fn bytes(&mut self, guest_path: &str, data: Vec<u8>, mode: u32) -> Result<()> {
        self.add(guest_path, Entry::Bytes { data, mode })
    }

    fn symlink(&mut self, guest_path: &str, target: &str) -> Result<()> {
        self.add(guest_path, Entry::Symlink(target.to_owned()))
    }

    /// The host file `host` at `guest_path`, plus its shared libraries at their
    /// host paths.
    pub(super) fn host_file(&mut self, guest_path: &str, host: &Path) -> Result<()> {
        let meta = fs::metadata(host)
            .map_err(|e| FixtureError::io(format!("cannot read {}", host.display()), e))?;
        if !meta.is_file() {
            return Err(FixtureError::InvalidConfig(format!(
                "{} is not a regular file",
                host.display()
            )));
        }
        for library in shared_libraries(host)? {
            let guest = library.to_string_lossy().into_owned();
            self.add(
                &guest,
                Entry::Host {
                    path: library,
                    mode: 0o755,
                },
            )?;
        }
        self.add(
            guest_path,
            Entry::Host {
                path: host.to_owned(),
                mode: meta.permissions().mode() & 0o7777,
            },
        )
    }

    /// A hash of everything that would be written (host files by path, size and
    /// modification time), naming the cached base initramfs.
    pub(super) fn fingerprint(&self) -> Result<u64> {
        let mut hash = Fnv::default();
        hash.write(&FORMAT.to_le_bytes());
        for (path, entry) in &self.map {
            hash.write(path.as_bytes());
            match entry {
                Entry::Dir => hash.write(b"d"),
                Entry::Host { path, mode } => {
                    let meta = fs::metadata(path).map_err(|e| {
                        FixtureError::io(format!("cannot read {}", path.display()), e)
                    })?;
                    hash.write(b"h");
                    hash.write(path.as_os_str().as_encoded_bytes());
                    hash.write(&meta.len().to_le_bytes());
                    hash.write(&meta.mtime().to_le_bytes());
                    hash.write(&meta.mtime_nsec().to_le_bytes());
                    hash.write(&mode.to_le_bytes());
                }
                Entry::Bytes { data, mode } => {
                    hash.write(b"b");
                    hash.write(data);
                    hash.write(&mode.to_le_bytes());
                }
                Entry::Symlink(target) => {
                    hash.write(b"l");
                    hash.write(target.as_bytes());
                }
                Entry::CharDevice { major, minor } => {
                    hash.write(b"c");
                    hash.write(&major.to_le_bytes());
                    hash.write(&minor.to_le_bytes());
                }
            }
            hash.write(&[0]);
        }
        Ok(hash.0)
    }

    pub(super) fn write<W: Write>(&self, out: W) -> std::io::Result<()> {
        let mut cpio = CpioWriter::new(out);
        for (path, entry) in &self.map {
            match entry {
                Entry::Dir => cpio.dir(path, 0o755)?,
                Entry::Host { path: host, mode } => {
                    let data = fs::read(host).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", host.display()))
                    })?;
                    cpio.file(path, *mode, &data)?
                }
                Entry::Bytes { data, mode } => cpio.file(path, *mode, data)?,
                Entry::Symlink(target) => cpio.symlink(path, target)?,
                Entry::CharDevice { major, minor } => {
                    cpio.char_device(path, 0o600, *major, *minor)?
                }
            }
        }
        cpio.finish()?.flush()
    }
}

/// `/a/b` as `a/b`; refuses relative paths and `..`, which would land outside the
/// place the test meant.
fn relative_guest_path(guest_path: &str) -> Result<String> {
    let path = Path::new(guest_path);
    let invalid = || FixtureError::InvalidConfig(format!("bad guest path {guest_path:?}"));
    if !path.is_absolute() {
        return Err(invalid());
    }
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir | Component::Prefix(_) => return Err(invalid()),
        }
    }
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(parts.join("/"))
}

/// The shared libraries (and dynamic loader) `ldd` lists for an ELF file; none for
/// a static binary or a non-ELF file.
fn shared_libraries(path: &Path) -> Result<Vec<PathBuf>> {
    let mut magic = [0u8; 4];
    let is_elf = File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF";
    if !is_elf {
        return Ok(Vec::new());
    }
    let ldd = ToolCommand::new("ldd")?.arg(path.to_string_lossy());
    let out = ldd.run(QUICK_TIMEOUT)?;
    let text = format!("{}{}", out.stdout, out.stderr);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(ldd.failure(&out));
    }
    parse_ldd(&out.stdout).map_err(|library| FixtureError::UnexpectedOutput {
        tool: ldd.display(),
        detail: format!(
            "{library} is not on this machine; ./scripts/install-deps installs the \
             libraries the guest's tools need"
        ),
    })
}

/// The paths in `ldd` output; `Err(name)` for a library ldd could not find.
fn parse_ldd(text: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim) {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
        // "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)".
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(name.trim().to_owned());
                }
                rest
            }
            None => line,
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// The base initramfs: busybox, init, modules, the NBD and ext4 tools.
pub(super) fn base_entries(packages: &Packages) -> Result<Entries> {
    let mut entries = Entries::default();
    for dir in [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/etc",
        "/proc",
        "/sys",
        "/dev",
        "/tmp",
        "/mnt",
        "/run",
        "/root",
    ] {
        entries.dir(dir)?;
    }
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    entries.add("/dev/console", Entry::CharDevice { major: 5, minor: 1 })?;

    let busybox = packages.tree("busybox").join("bin/busybox");
    entries.add(
        "/bin/busybox",
        Entry::Host {
            path: busybox.clone(),
            mode: 0o755,
        },
    )?;
    // The static busybox runs on the host too, and lists where its applets belong.
    let mut list = Command::new(&busybox);
    list.arg("--list-full");
    let applets = run_captured(
        list,
        &format!("{} --list-full", busybox.display()),
        QUICK_TIMEOUT,
    )?;
    for applet in applets.lines().map(str::trim) {
        // It lists itself too (bin/busybox), which as a symlink would loop.
        if !applet.is_empty() && applet != "linuxrc" && applet != "bin/busybox" {
            entries.symlink(&format!("/{applet}"), "/bin/busybox")?;
        }
    }

    let modules = module_load_order(&packages.tree("kernel"), &packages.release)?;
    for (name, path) in &modules {
        entries.add(
            &format!("/lib/modules/{name}.ko"),
            Entry::Host {
                path: path.clone(),
                mode: 0o644,
            },
        )?;
    }
    let names: Vec<&str> = modules.iter().map(|(name, _)| name.as_str()).collect();
    entries.bytes("/init", init_script(&names).into_bytes(), 0o755)?;

    entries.host_file(
        "/sbin/nbd-client",
        &packages.tree("nbd-client").join("sbin/nbd-client"),
    )?;
    for (tool, guest) in HOST_TOOLS {
        entries.host_file(guest, &require_tool(tool)?)?;
    }
    // mke2fs reads its defaults from here; without it ext4 gets odd old defaults.
    let mke2fs_conf = Path::new("/etc/mke2fs.conf");
    if mke2fs_conf.is_file() {
        entries.host_file("/etc/mke2fs.conf", mke2fs_conf)?;
    }
    Ok(entries)
}

/// [`MODULES`] and their dependencies (read from each module's `depends=` field;
/// the package ships no `modules.dep`), dependencies first.
fn module_load_order(kernel_tree: &Path, release: &str) -> Result<Vec<(String, PathBuf)>> {
    let modules_dir = kernel_tree.join("lib/modules").join(release);
    let mut files = BTreeMap::new();
    index_modules(&modules_dir.join("kernel"), &mut files)?;
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for module in MODULES {
        visit_module(module, &files, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// Maps module names (with `-` as `_`, like the kernel does) to their files.
fn index_modules(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    let read = fs::read_dir(dir)
        .map_err(|e| FixtureError::io(format!("cannot list {}", dir.display()), e))?;
    for entry in read {
        let path = entry
            .map_err(|e| FixtureError::io(format!("cannot list {}", dir.display()), e))?
            .path();
        if path.is_dir() {
            index_modules(&path, files)?;
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            files.insert(name.replace('-', "_"), path.clone());
        }
    }
    Ok(())
}

fn visit_module(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let path = files.get(name).ok_or_else(|| {
        FixtureError::InvalidConfig(format!(
            "the guest kernel has no module {name} (compressed modules are not supported)"
        ))
    })?;
    let data = fs::read(path)
        .map_err(|e| FixtureError::io(format!("cannot read {}", path.display()), e))?;
    for dep in module_depends(&data) {
        visit_module(&dep, files, seen, order)?;
    }
    order.push((name.to_owned(), path.clone()));
    Ok(())
}

/// The `depends=a,b` string of a module's `.modinfo` section (NUL-separated
/// `key=value` strings), found by scanning rather than parsing the ELF.
fn module_depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let value = &module[at + KEY.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|dep| !dep.is_empty())
        .map(|dep| dep.replace('-', "_"))
        .collect()
}

/// The guest's `/init`: mounts, modules, network, the script between markers,
/// power off. Runs as PID 1, so it must never exit: every path ends in `poweroff`.
fn init_script(modules: &[&str]) -> String {
    let modules = modules.join(" ");
    format!(
        r#"#!/bin/sh
# Generated by riscsi-tests (tests/src/guest.rs).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
finish() {{
    # Output still queued in the console's tty would be lost at power-off:
    # setting the same line settings again waits for it to drain (TCSADRAIN).
    stty -F /dev/console "$(stty -F /dev/console -g)"
    poweroff -f
}}
setup_failed() {{
    echo "{SETUP_FAILED_MARKER}$*@@"
    finish
}}
mount -t proc proc /proc || setup_failed "mount /proc"
mount -t sysfs sysfs /sys || setup_failed "mount /sys"
mount -t devtmpfs devtmpfs /dev || setup_failed "mount /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
for m in {modules}; do
    insmod /lib/modules/$m.ko || setup_failed "insmod $m"
done
i=0
while [ ! -e /sys/class/net/eth0 ]; do
    i=$((i + 1))
    [ $i -le 200 ] || setup_failed "no eth0"
    sleep 0.05
done
ip link set lo up || setup_failed "lo up"
ip link set eth0 up || setup_failed "eth0 up"
ip addr add {GUEST_ADDR}/24 dev eth0 || setup_failed "address"
ip route add default via {HOST_ADDR} || setup_failed "route"
cd /
printf '{begin}'
sh /run.sh </dev/null
status=$?
printf '{end}%d@@\n' $status
finish
"#,
        begin = BEGIN_MARKER.replace('\n', "\\n"),
        end = END_MARKER.replace('\n', "\\n"),
    )
}

/// FNV-1a, 64 bits: a stable hash (std's is not promised to stay the same across
/// Rust releases, and a cache key must).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parses() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f00)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f01)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert_eq!(
            parse_ldd("\tlibnl-3.so.200 => not found\n").unwrap_err(),
            "libnl-3.so.200"
        );
    }

    #[test]
    fn guest_paths_must_be_absolute_and_inside() {
        assert_eq!(relative_guest_path("/usr//bin/./x").unwrap(), "usr/bin/x");
        assert!(relative_guest_path("usr/bin/x").is_err());
        assert!(relative_guest_path("/usr/../x").is_err());
        assert!(relative_guest_path("/").is_err());
    }

    #[test]
    fn parents_come_before_children() {
        let mut entries = Entries::default();
        entries.bytes("/a/b/c", b"x".to_vec(), 0o644).unwrap();
        let paths: Vec<&str> = entries.map.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c"]);
    }

    #[test]
    fn module_depends_are_read_from_modinfo() {
        let module = b"\x7fELF...\0license=GPL\0depends=virtio_ring,net-failover\0intree=Y\0";
        assert_eq!(module_depends(module), ["virtio_ring", "net_failover"]);
        assert!(module_depends(b"\0depends=\0").is_empty());
    }

    #[test]
    fn fingerprint_follows_content() {
        let mut a = Entries::default();
        a.bytes("/x", b"1".to_vec(), 0o644).unwrap();
        let mut b = Entries::default();
        b.bytes("/x", b"2".to_vec(), 0o644).unwrap();
        assert_ne!(a.fingerprint().unwrap(), b.fingerprint().unwrap());
    }
}
