//! Local I/O helpers: raw stdin/stdout as files, vectored write of every
//! byte, reads that fill a buffer.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;

use bytes::Bytes;

/// Standard output as a plain file (a duplicate of fd 1), so that large
/// binary writes skip `Stdout`'s line buffering.
pub fn stdout_file() -> io::Result<File> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

/// Standard input as a plain file (a duplicate of fd 0).
pub fn stdin_file() -> io::Result<File> {
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

/// Writes every byte of `segments`, in order, with as few system calls as
/// the platform's iovec limit allows.
pub fn write_all_vectored(out: &mut impl Write, segments: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = segments
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| IoSlice::new(s))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match out.write_vectored(rest) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "output accepted no more bytes",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, to exercise the
    /// partial-write path.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_write_survives_partial_writes() {
        let segments = vec![
            Bytes::from_static(b"hello "),
            Bytes::new(),
            Bytes::from_static(b"vectored "),
            Bytes::from_static(b"world"),
        ];
        for limit in 1..8 {
            let mut w = Trickle {
                out: Vec::new(),
                limit,
            };
            write_all_vectored(&mut w, &segments).unwrap();
            assert_eq!(w.out, b"hello vectored world");
        }
    }

    #[test]
    fn zero_write_is_an_error() {
        let mut w = Trickle {
            out: Vec::new(),
            limit: 0,
        };
        let e = write_all_vectored(&mut w, &[Bytes::from_static(b"x")]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    }

    /// Hands out input in small pieces, as a pipe does.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_full_fills_across_short_reads() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut r = Chunked(&data, 7);
        let mut buf = [0u8; 64];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 64);
        assert_eq!(&buf[..], &data[..64]);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 36);
        assert_eq!(&buf[..36], &data[64..]);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 0);
    }
}
