//! What a LUN should look like (size, block size, contents, identity) and the
//! RAM-backed file behind it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::error::{FixtureError, Result};
use crate::net::random_u64;
use crate::pattern;
use crate::temp::{SHM_DIR, temp_file_in};

/// Chunk size used when writing the pattern into a backing file.
const FILL_CHUNK: usize = 1 << 20;

/// Longest serial / designator we generate or accept; istgt's INQUIRY serial field
/// holds 16 characters and tgtd's SCSI ID and SN hold more.
const MAX_IDENTITY_LEN: usize = 16;

/// A LUN to export: `LunSpec::new(64 << 20).block_size(4096).pattern(7)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LunSpec {
    pub(crate) size: u64,
    pub(crate) block_size: u32,
    pub(crate) pattern_seed: Option<u64>,
    pub(crate) scsi_sn: Option<String>,
    pub(crate) scsi_id: Option<String>,
}

impl LunSpec {
    /// A LUN of `size` bytes with 512-byte blocks, zero-filled, with a unique
    /// identity generated at start.
    pub fn new(size: u64) -> Self {
        LunSpec {
            size,
            block_size: 512,
            pattern_seed: None,
            scsi_sn: None,
            scsi_id: None,
        }
    }

    /// Logical block size: 512 or 4096.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }

    /// Fills the LUN with [`pattern`](crate::pattern) bytes from `seed`, so reads have
    /// something to compare against.
    pub fn pattern(mut self, seed: u64) -> Self {
        self.pattern_seed = Some(seed);
        self
    }

    /// Unit serial number (VPD page 0x80). Give two LUNs the same value (and the
    /// same [`scsi_id`](Self::scsi_id)) to make them look like one LU.
    pub fn scsi_sn(mut self, serial: impl Into<String>) -> Self {
        self.scsi_sn = Some(serial.into());
        self
    }

    /// Device identification (VPD page 0x83 vendor-specific designator); tgtd only.
    pub fn scsi_id(mut self, id: impl Into<String>) -> Self {
        self.scsi_id = Some(id.into());
        self
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |why: String| Err(FixtureError::InvalidConfig(why));
        if self.block_size != 512 && self.block_size != 4096 {
            return invalid(format!("block size {} is not 512 or 4096", self.block_size));
        }
        if self.size == 0 || !self.size.is_multiple_of(u64::from(self.block_size)) {
            return invalid(format!(
                "LUN size {} is not a positive multiple of the block size {}",
                self.size, self.block_size
            ));
        }
        for (what, value) in [("scsi_sn", &self.scsi_sn), ("scsi_id", &self.scsi_id)] {
            if let Some(value) = value {
                let ok = !value.is_empty()
                    && value.len() <= MAX_IDENTITY_LEN
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return invalid(format!(
                        "{what} {value:?} must be 1-{MAX_IDENTITY_LEN} characters of [A-Za-z0-9_-]"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Creates the backing file in `/dev/shm` (sparse unless a pattern is asked for)
    /// and describes the LUN as exported under `number`. `settable_id` says whether
    /// the daemon can set the 0x83 identity (then one is generated when not given).
    pub(crate) fn materialize(
        &self,
        number: u64,
        settable_id: bool,
    ) -> Result<(TempPath, ExportedLun)> {
        self.validate()?;
        let path = temp_file_in(Path::new(SHM_DIR), "lun")?;
        let context = || format!("cannot prepare LUN backing file {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| FixtureError::io(context(), e))?;
        file.set_len(self.size)
            .map_err(|e| FixtureError::io(context(), e))?;
        if let Some(seed) = self.pattern_seed {
            write_pattern(&mut file, seed, self.size)
                .map_err(|e| FixtureError::io(context(), e))?;
        }
        let lun = ExportedLun {
            number,
            path: path.to_path_buf(),
            size: self.size,
            block_size: self.block_size,
            pattern_seed: self.pattern_seed,
            scsi_sn: self.scsi_sn.clone().unwrap_or_else(generated_identity),
            scsi_id: match (&self.scsi_id, settable_id) {
                (Some(id), _) => Some(id.clone()),
                (None, true) => Some(generated_identity()),
                (None, false) => None,
            },
        };
        Ok((path, lun))
    }
}

fn write_pattern(file: &mut File, seed: u64, size: u64) -> std::io::Result<()> {
    let mut chunk = vec![0u8; FILL_CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let len = (size - offset).min(FILL_CHUNK as u64) as usize;
        pattern::fill(seed, offset, &mut chunk[..len]);
        file.write_all(&chunk[..len])?;
        offset += len as u64;
    }
    file.sync_all()
}

/// A fresh 16-character identity, unique per LUN as on a real array.
pub(crate) fn generated_identity() -> String {
    format!("R{:015X}", random_u64() >> 4)
}

/// A LUN as a running fixture exports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedLun {
    /// LUN number on the wire (tgtd starts at 1: its LUN 0 is the controller).
    pub number: u64,
    /// Backing file; tests compare data with it.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Logical block size.
    pub block_size: u32,
    /// Seed of the initial pattern, when one was written.
    pub pattern_seed: Option<u64>,
    /// Unit serial number the target reports (VPD 0x80), right-aligned and padded
    /// with spaces on the wire.
    pub scsi_sn: String,
    /// Device identification (VPD 0x83 vendor-specific designator): given or
    /// generated where the daemon can set it (tgtd), `None` where it cannot (istgt).
    pub scsi_id: Option<String>,
}

impl ExportedLun {
    /// Number of logical blocks.
    pub fn blocks(&self) -> u64 {
        self.size / u64::from(self.block_size)
    }

    /// What the LUN held at start at `offset .. offset + len`, when it was
    /// pattern-filled (zeroes otherwise).
    pub fn initial_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        match self.pattern_seed {
            Some(seed) => pattern::bytes(seed, offset, len),
            None => vec![0; len],
        }
    }

    /// Reads the backing file now (what the target has written through).
    pub fn read_backing(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let context = || format!("cannot read backing file {}", self.path.display());
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(FixtureError::InvalidConfig(format!(
                "read of {len} bytes at {offset} is past the end of a {}-byte LUN",
                self.size
            )));
        }
        let mut file = File::open(&self.path).map_err(|e| FixtureError::io(context(), e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| FixtureError::io(context(), e))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf)
            .map_err(|e| FixtureError::io(context(), e))?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_file_matches_the_pattern() {
        let (path, lun) = LunSpec::new(3 << 20)
            .pattern(99)
            .materialize(1, true)
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 << 20);
        let tail = lun.read_backing((3 << 20) - 4096, 4096).unwrap();
        assert_eq!(tail, lun.initial_bytes((3 << 20) - 4096, 4096));
        assert_ne!(tail, vec![0; 4096]);
        assert_eq!(lun.blocks(), (3 << 20) / 512);
    }

    #[test]
    fn plain_file_is_zero_and_removed_with_its_path() {
        let (path, lun) = LunSpec::new(1 << 20)
            .block_size(4096)
            .materialize(0, false)
            .unwrap();
        assert_eq!(lun.read_backing(0, 4096).unwrap(), vec![0; 4096]);
        assert_eq!(lun.blocks(), 256);
        let file = path.to_path_buf();
        drop(path);
        assert!(!file.exists());
    }

    #[test]
    fn identities_are_unique_unless_given() {
        let (_a, a) = LunSpec::new(4096).materialize(1, true).unwrap();
        let (_b, b) = LunSpec::new(4096).materialize(1, true).unwrap();
        assert_ne!(a.scsi_sn, b.scsi_sn);
        assert_eq!(a.scsi_sn.len(), 16);
        let (_c, c) = LunSpec::new(4096)
            .scsi_sn("SAME-1")
            .materialize(1, true)
            .unwrap();
        assert_eq!(c.scsi_sn, "SAME-1");
        assert_ne!(a.scsi_id, b.scsi_id);
        assert!(a.scsi_id.is_some());
        let (_d, d) = LunSpec::new(4096).materialize(0, false).unwrap();
        assert_eq!(d.scsi_id, None);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(LunSpec::new(4096).block_size(1024).validate().is_err());
        assert!(LunSpec::new(1000).validate().is_err());
        assert!(LunSpec::new(0).validate().is_err());
        assert!(LunSpec::new(8192).block_size(4096).validate().is_ok());
        assert!(LunSpec::new(512).scsi_sn("has space").validate().is_err());
        assert!(
            LunSpec::new(512)
                .scsi_id("x".repeat(17))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn read_past_end_is_an_error_not_a_panic() {
        let (_p, lun) = LunSpec::new(4096).materialize(1, true).unwrap();
        assert!(lun.read_backing(4000, 200).is_err());
        assert!(lun.read_backing(u64::MAX, 2).is_err());
    }
}
