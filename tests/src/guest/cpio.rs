//! A writer for the "newc" cpio format, the one the kernel unpacks into its initial
//! rootfs.
//!
//! Written here rather than shelling out to `cpio` because the format is tiny and
//! because we need entries a file tree cannot hold without root (`/dev/console`).
//! Layout of one entry: the 6-byte magic `070701`, thirteen 8-digit hex fields, the
//! NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes. An
//! archive ends with an entry named `TRAILER!!!`.

use std::io::{self, Write};

/// File-type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Streams entries into `W`.
pub(crate) struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive; nothing is written until the first entry.
    pub(crate) fn new(out: W) -> Self {
        CpioWriter {
            out,
            // Inode numbers only need to be distinct (the kernel uses them to spot
            // hard links, and every entry has nlink 1).
            next_ino: 1,
            written: 0,
        }
    }

    /// A directory (`path` without a leading `/`).
    pub(crate) fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, 0, &[])
    }

    /// A regular file with `data`.
    pub(crate) fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, 0, data)
    }

    /// A symbolic link to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 0, target.as_bytes())
    }

    /// A character device node.
    pub(crate) fn char_device(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, (major << 8) | minor, &[])
    }

    /// Writes the trailer and returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 0, &[])?;
        Ok(self.out)
    }

    /// `rdev` packs the device numbers as `major << 8 | minor`.
    fn entry(&mut self, name: &str, mode: u32, rdev: u32, data: &[u8]) -> io::Result<()> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {} bytes is too big for cpio", data.len()),
            )
        })?;
        let name_size = name.len() as u32 + 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            name_size,
            0, // check (unused by newc)
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Aligns to 4 bytes, which both headers and data start on.
    fn pad(&mut self) -> io::Result<()> {
        let padding = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..padding])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entry_layout() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.file("a", 0o644, b"hello").unwrap();
        let bytes = writer.finish().unwrap();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[..6], "070701");
        // mode, nlink, filesize, namesize
        assert_eq!(&header[14..22], "000081a4");
        assert_eq!(&header[38..46], "00000001");
        assert_eq!(&header[54..62], "00000005");
        assert_eq!(&header[94..102], "00000002");
        // 110-byte header + "a\0" = 112 (aligned), then data padded to 120.
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(&bytes[112..117], b"hello");
        assert_eq!(&bytes[117..120], &[0, 0, 0]);
        assert_eq!(&bytes[120..126], b"070701");
        assert!(bytes.len() % 4 == 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn device_numbers_go_to_rdev() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.char_device("dev/console", 0o600, 5, 1).unwrap();
        let bytes = writer.finish().unwrap();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[14..22], "00002180");
        assert_eq!(&header[78..86], "00000005");
        assert_eq!(&header[86..94], "00000001");
    }
}
