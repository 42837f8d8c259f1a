//! Temporary directories and RAM-backed files that clean themselves up.

use std::path::Path;

use tempfile::{TempDir, TempPath};

use crate::error::{FixtureError, Result};

/// Where LUN backing files live: RAM, so tests are fast and leave nothing on disk.
pub const SHM_DIR: &str = "/dev/shm";

/// Prefix of every file and directory the support library creates, so a leak is
/// easy to spot (`ls /dev/shm/riscsi-*`).
pub const NAME_PREFIX: &str = "riscsi-";

/// A fresh directory under the system temp dir, removed when the value drops.
pub fn temp_dir(purpose: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{NAME_PREFIX}{purpose}-"))
        .tempdir()
        .map_err(|e| FixtureError::io(format!("cannot create a temp dir for {purpose}"), e))
}

/// A fresh empty file in `dir`, removed when the returned path drops.
pub fn temp_file_in(dir: &Path, purpose: &str) -> Result<TempPath> {
    tempfile::Builder::new()
        .prefix(&format!("{NAME_PREFIX}{purpose}-"))
        .tempfile_in(dir)
        .map(|file| file.into_temp_path())
        .map_err(|e| {
            FixtureError::io(
                format!("cannot create a {purpose} file in {}", dir.display()),
                e,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_disappears_on_drop() {
        let dir = temp_dir("unit").unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("riscsi-unit-")
        );
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn shm_file_disappears_on_drop() {
        let file = temp_file_in(Path::new(SHM_DIR), "unit").unwrap();
        let path = file.to_path_buf();
        assert!(path.starts_with(SHM_DIR));
        assert!(path.is_file());
        drop(file);
        assert!(!path.exists());
    }
}
