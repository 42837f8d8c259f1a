//! The Debian packages the guest is made of: which versions are current, and their
//! unpacked trees in the cache, downloaded once with `apt-get download`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::command::{ToolCommand, drain, join_drain, wait_until};
use crate::error::{FixtureError, Result};
use crate::net::random_u64;
use crate::spawn::spawn_tied;

/// The metapackage that names the current cloud kernel.
const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";

/// Deadline of the commands that may download (the kernel is ~27 MB).
const APT_TIMEOUT: Duration = Duration::from_secs(600);

/// Deadline of local commands.
pub(super) const QUICK_TIMEOUT: Duration = Duration::from_secs(60);

/// One package at one version, and where it is unpacked in the cache.
#[derive(Debug, Clone)]
pub(super) struct Package {
    pub name: String,
    pub version: String,
    /// Subdirectory of [`Packages::dir`] holding its `dpkg-deb -x` tree.
    pub tree: &'static str,
}

/// The unpacked packages of one cache key.
#[derive(Debug)]
pub(super) struct Packages {
    /// `<cache root>/<names and versions>`.
    pub dir: PathBuf,
    /// Kernel, busybox-static, nbd-client.
    pub list: Vec<Package>,
    /// The kernel's release, e.g. `6.1.0-57-cloud-amd64`.
    pub release: String,
}

impl Packages {
    /// The unpacked tree of package `tree`.
    pub fn tree(&self, tree: &str) -> PathBuf {
        self.dir.join(tree)
    }
}

/// Finds, or downloads and unpacks, the current versions of the packages in
/// `<root>/<names and versions>`.
pub(super) fn ensure_packages(root: &Path) -> Result<Packages> {
    let list = current_packages()?;
    let release = list[0]
        .name
        .strip_prefix("linux-image-")
        .unwrap_or(&list[0].name)
        .to_owned();
    let key = list
        .iter()
        .map(|p| format!("{}_{}", p.name, p.version))
        .collect::<Vec<_>>()
        .join("+")
        // Epochs bring a ':', which some tools dislike in paths.
        .replace(
            |c: char| !c.is_ascii_alphanumeric() && !"._+-".contains(c),
            "_",
        );
    let dir = root.join(&key);
    let packages = Packages {
        dir: dir.clone(),
        list,
        release,
    };
    if dir.is_dir() {
        return Ok(packages);
    }

    fs::create_dir_all(root)
        .map_err(|e| FixtureError::io(format!("cannot create {}", root.display()), e))?;
    // Built aside and renamed into place, so a crash or a parallel build never
    // leaves a half-filled directory under the final name.
    let temp = root.join(format!(".build-{key}-{:016x}", random_u64()));
    let result = unpack(&packages.list, &temp).and_then(|()| match fs::rename(&temp, &dir) {
        Ok(()) => Ok(()),
        // Another process finished first: theirs is as good as ours.
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(FixtureError::io(
            format!("cannot move {} to {}", temp.display(), dir.display()),
            e,
        )),
    });
    let _ = fs::remove_dir_all(&temp);
    result.map(|()| packages)
}

fn unpack(list: &[Package], into: &Path) -> Result<()> {
    let debs = into.join("debs");
    fs::create_dir_all(&debs)
        .map_err(|e| FixtureError::io(format!("cannot create {}", debs.display()), e))?;
    for package in list {
        let deb = download(&debs, package)?;
        ToolCommand::new("dpkg-deb")?
            .arg("-x")
            .arg(deb.to_string_lossy())
            .arg(into.join(package.tree).to_string_lossy())
            .run_ok(QUICK_TIMEOUT)?;
    }
    // The unpacked trees are all we use.
    fs::remove_dir_all(&debs)
        .map_err(|e| FixtureError::io(format!("cannot remove {}", debs.display()), e))
}

/// `apt-get download NAME=VERSION` into `dir`; returns the .deb.
fn download(dir: &Path, package: &Package) -> Result<PathBuf> {
    let spec = format!("{}={}", package.name, package.version);
    let attempt = || {
        let mut command = ToolCommand::new("apt-get")?
            .args(["download", "-qq", &spec])
            .to_command();
        command.current_dir(dir);
        run_captured(command, &format!("apt-get download {spec}"), APT_TIMEOUT)
    };
    if attempt().is_err() {
        // The package lists may be stale (the mirror dropped that version) or
        // absent.
        apt_update()?;
        attempt()?;
    }
    let prefix = format!("{}_", package.name);
    fs::read_dir(dir)
        .map_err(|e| FixtureError::io(format!("cannot list {}", dir.display()), e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .ok_or_else(|| FixtureError::UnexpectedOutput {
            tool: "apt-get download".to_owned(),
            detail: format!("no {prefix}*.deb in {}", dir.display()),
        })
}

/// Runs `command` to completion within `timeout` and returns its stdout; for
/// commands [`ToolCommand`] cannot express (a working directory, a binary not on
/// `PATH`).
pub(super) fn run_captured(
    mut command: Command,
    display: &str,
    timeout: Duration,
) -> Result<String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child =
        spawn_tied(command).map_err(|e| FixtureError::io(format!("cannot run `{display}`"), e))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let waited = wait_until(&mut child, started + timeout);
    if !matches!(waited, Ok(Some(_))) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (join_drain(stdout), join_drain(stderr));
    match waited {
        Ok(Some(status)) if status.success() => Ok(stdout),
        Ok(Some(status)) => Err(FixtureError::CommandFailed {
            command: display.to_owned(),
            status: status.to_string(),
            stderr: if stderr.trim().is_empty() {
                stdout
            } else {
                stderr
            }
            .trim()
            .to_owned(),
        }),
        Ok(None) => Err(FixtureError::CommandTimedOut {
            command: display.to_owned(),
            timeout,
        }),
        Err(e) => Err(FixtureError::io(format!("waiting for `{display}`"), e)),
    }
}

/// `apt-get update`, at most once per process.
fn apt_update() -> Result<()> {
    static UPDATED: Mutex<bool> = Mutex::new(false);
    let mut updated = UPDATED.lock().unwrap_or_else(|p| p.into_inner());
    if !*updated {
        ToolCommand::new("apt-get")?
            .args(["update", "-qq"])
            .run_ok(APT_TIMEOUT)?;
        *updated = true;
    }
    Ok(())
}

/// The packages at the versions `apt-get install` would pick: the versioned
/// kernel package the cloud metapackage pins (e.g.
/// `linux-image-6.1.0-57-cloud-amd64`), busybox-static and nbd-client. One
/// `apt-cache` call, as each costs about half a second; the package lists are
/// refreshed once if they do not know the packages.
fn current_packages() -> Result<Vec<Package>> {
    let args = [
        "show",
        "--no-all-versions",
        KERNEL_METAPACKAGE,
        "busybox-static",
        "nbd-client",
    ];
    let query = || -> Result<Option<Vec<Package>>> {
        let out = ToolCommand::new("apt-cache")?
            .args(args)
            .run(QUICK_TIMEOUT)?;
        Ok(parse_current_packages(&out.stdout))
    };
    if let Some(found) = query()? {
        return Ok(found);
    }
    apt_update()?;
    query()?.ok_or_else(|| FixtureError::UnexpectedOutput {
        tool: format!("apt-cache {}", args.join(" ")),
        detail: "the packages are unknown even after apt-get update".to_owned(),
    })
}

fn parse_current_packages(text: &str) -> Option<Vec<Package>> {
    let records = parse_apt_records(text);
    let depends = records.get(KERNEL_METAPACKAGE)?.get("Depends")?;
    // "linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)"
    let (name, version) = depends
        .split(',')
        .map(str::trim)
        .find(|dep| dep.starts_with("linux-image-"))?
        .split_once(" (= ")?;
    let mut list = vec![Package {
        name: name.to_owned(),
        version: version.trim_end_matches(')').to_owned(),
        tree: "kernel",
    }];
    for (name, tree) in [("busybox-static", "busybox"), ("nbd-client", "nbd-client")] {
        list.push(Package {
            name: name.to_owned(),
            version: records.get(name)?.get("Version")?.clone(),
            tree,
        });
    }
    Some(list)
}

/// `apt-cache show` records as package -> field -> value (the first line of each
/// field, which is all we read).
fn parse_apt_records(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut records = BTreeMap::new();
    for record in text.split("\n\n") {
        let fields: BTreeMap<String, String> = record
            .lines()
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.split_once(": "))
            .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
            .collect();
        if let Some(package) = fields.get("Package") {
            records.insert(package.clone(), fields);
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_records_parse() {
        let text = "Package: a\nVersion: 1:2.0-1\nDepends: x (= 1), y\nDescription: d\n more\n\n\
                    Package: b\nVersion: 3\n";
        let records = parse_apt_records(text);
        assert_eq!(records["a"]["Version"], "1:2.0-1");
        assert_eq!(records["a"]["Depends"], "x (= 1), y");
        assert_eq!(records["b"]["Version"], "3");
    }

    #[test]
    fn current_packages_follow_the_kernel_pin() {
        let text = "Package: linux-image-cloud-amd64\nVersion: 6.1.192-3\n\
                    Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)\n\n\
                    Package: busybox-static\nVersion: 1:1.35.0-4\n\n\
                    Package: nbd-client\nVersion: 1:3.24-1.1\nDepends: libc6 (>= 2.34)\n";
        let list = parse_current_packages(text).unwrap();
        let pairs: Vec<(&str, &str)> = list
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("linux-image-6.1.0-57-cloud-amd64", "6.1.192-3"),
                ("busybox-static", "1:1.35.0-4"),
                ("nbd-client", "1:3.24-1.1")
            ]
        );
        assert!(parse_current_packages("Package: busybox-static\nVersion: 1\n").is_none());
    }
}
