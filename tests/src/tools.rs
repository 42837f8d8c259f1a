//! Finding the external binaries the tests drive, failing loudly when one is missing.

use std::env;
use std::path::{Path, PathBuf};

use crate::error::{FixtureError, Result};

/// Debian package that ships each binary we use; anything else maps to itself.
fn package_of(tool: &str) -> &str {
    match tool {
        "tgtd" | "tgtadm" => "tgt",
        "istgt" | "istgtcontrol" => "istgt",
        t if t.starts_with("iscsi-") => "libiscsi-bin",
        "stdbuf" | "timeout" => "coreutils",
        "tshark" => "tshark",
        "qemu-system-x86_64" => "qemu-system-x86",
        "mkfs.ext4" | "fsck.ext4" => "e2fsprogs",
        "ldd" => "libc-bin",
        "apt-get" | "apt-cache" => "apt",
        "ip" | "tc" => "iproute2",
        "dpkg-deb" => "dpkg",
        "nbdinfo" | "nbdcopy" | "nbdfuse" => "libnbd-bin",
        "nbdsh" => "python3-libnbd",
        "qemu-io" | "qemu-img" | "qemu-nbd" => "qemu-utils",
        other => other,
    }
}

/// Searches `PATH` plus the sbin directories (root daemons live there and a test
/// runner's `PATH` does not always include them).
fn locate(tool: &str) -> Option<PathBuf> {
    let path_var = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path_var)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Returns the full path of `tool`, or an error naming the package to install.
///
/// A test that needs a peer calls this (the fixtures do it for their daemons) so that
/// a missing binary fails the test with the reason instead of skipping it silently.
pub fn require_tool(tool: &str) -> Result<PathBuf> {
    locate(tool).ok_or_else(|| FixtureError::MissingTool {
        tool: tool.to_owned(),
        package: package_of(tool).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_binary_every_machine_has() {
        let sh = require_tool("sh").expect("sh must exist");
        assert!(sh.is_absolute());
    }

    #[test]
    fn missing_tool_names_its_package() {
        let err = require_tool("iscsi-does-not-exist-xyz").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("iscsi-does-not-exist-xyz not found"),
            "{text}"
        );
        assert!(text.contains("install package libiscsi-bin"), "{text}");
        assert!(text.contains("./scripts/test"), "{text}");
    }

    #[test]
    fn daemons_map_to_their_packages() {
        assert_eq!(package_of("tgtd"), "tgt");
        assert_eq!(package_of("tgtadm"), "tgt");
        assert_eq!(package_of("istgt"), "istgt");
        assert_eq!(package_of("iscsi-inq"), "libiscsi-bin");
        assert_eq!(package_of("nbdcopy"), "libnbd-bin");
        assert_eq!(package_of("qemu-io"), "qemu-utils");
    }
}
