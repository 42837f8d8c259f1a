//! Replies on the wire: an output queue of small headers (coalesced in one
//! buffer) and read data (the `Bytes` the Data-In PDUs arrived in, never
//! copied), written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

use crate::proto::{
    Errno, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, REPLY_TYPE_NONE, REPLY_TYPE_OFFSET_DATA,
    SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC,
};

/// Payload pieces up to this size are copied next to their header: one
/// small copy is cheaper than another iovec entry.
const COALESCE_MAX: usize = 4096;
/// iovec entries per write call.
const MAX_IOV: usize = 64;
/// Longest error message sent to a client.
const MAX_MESSAGE: usize = 1024;

/// Replies waiting for the socket.
#[derive(Debug, Default)]
pub struct ReplyQueue {
    out: VecDeque<Bytes>,
    small: BytesMut,
}

impl ReplyQueue {
    /// Whether anything waits to be written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty() && self.small.is_empty()
    }

    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            self.out.push_back(self.small.split().freeze());
        }
    }

    fn payload(&mut self, piece: &Bytes) {
        if piece.len() <= COALESCE_MAX {
            self.small.extend_from_slice(piece);
        } else {
            self.seal_small();
            self.out.push_back(piece.clone());
        }
    }

    /// A simple reply: `error` 0 for success, with read data when given.
    pub fn simple(&mut self, handle: u64, error: Option<Errno>, data: &[Bytes]) {
        self.small.put_u32(SIMPLE_REPLY_MAGIC);
        self.small.put_u32(error.map_or(0, |e| e as u32));
        self.small.put_u64(handle);
        for piece in data {
            self.payload(piece);
        }
    }

    /// A structured reply for a successful read: one OFFSET_DATA chunk, the
    /// final one (the data is all here, no error can follow).
    pub fn structured_data(&mut self, handle: u64, offset: u64, data: &[Bytes]) {
        let len: usize = data.iter().map(Bytes::len).sum();
        self.chunk_header(
            REPLY_FLAG_DONE,
            REPLY_TYPE_OFFSET_DATA,
            handle,
            8 + len as u32,
        );
        self.small.put_u64(offset);
        for piece in data {
            self.payload(piece);
        }
    }

    /// A structured reply with no payload (success of a non-read command).
    pub fn structured_done(&mut self, handle: u64) {
        self.chunk_header(REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle, 0);
    }

    /// A structured error chunk, final, with a message for a human.
    pub fn structured_error(&mut self, handle: u64, error: Errno, message: &str) {
        let message = truncate(message, MAX_MESSAGE);
        self.chunk_header(
            REPLY_FLAG_DONE,
            REPLY_TYPE_ERROR,
            handle,
            6 + message.len() as u32,
        );
        self.small.put_u32(error as u32);
        self.small.put_u16(message.len() as u16);
        self.small.put_slice(message.as_bytes());
    }

    fn chunk_header(&mut self, flags: u16, kind: u16, handle: u64, length: u32) {
        self.small.put_u32(STRUCTURED_REPLY_MAGIC);
        self.small.put_u16(flags);
        self.small.put_u16(kind);
        self.small.put_u64(handle);
        self.small.put_u32(length);
    }

    /// Writes everything queued.
    pub async fn flush<W: AsyncWriteExt + Unpin>(&mut self, io: &mut W) -> io::Result<()> {
        self.seal_small();
        while !self.out.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .out
                .iter()
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            let mut written = io.write_vectored(&slices).await?;
            if written == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "client gone"));
            }
            while written > 0 {
                let front = self
                    .out
                    .front_mut()
                    .expect("written bytes came from the queue");
                if written >= front.len() {
                    written -= front.len();
                    self.out.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        Ok(())
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_encode_as_the_spec_says() {
        let mut q = ReplyQueue::default();
        q.simple(0x1122, None, &[Bytes::from_static(b"data")]);
        q.structured_error(9, Errno::Inval, "bad");
        let big = Bytes::from(vec![7u8; 10_000]);
        q.structured_data(3, 512, std::slice::from_ref(&big));
        let mut out = Vec::new();
        q.flush(&mut out).await.unwrap();
        let mut expect = Vec::new();
        expect.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        expect.extend_from_slice(&0u32.to_be_bytes());
        expect.extend_from_slice(&0x1122u64.to_be_bytes());
        expect.extend_from_slice(b"data");
        expect.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
        expect.extend_from_slice(&1u16.to_be_bytes());
        expect.extend_from_slice(&REPLY_TYPE_ERROR.to_be_bytes());
        expect.extend_from_slice(&9u64.to_be_bytes());
        expect.extend_from_slice(&9u32.to_be_bytes());
        expect.extend_from_slice(&22u32.to_be_bytes());
        expect.extend_from_slice(&3u16.to_be_bytes());
        expect.extend_from_slice(b"bad");
        expect.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
        expect.extend_from_slice(&1u16.to_be_bytes());
        expect.extend_from_slice(&REPLY_TYPE_OFFSET_DATA.to_be_bytes());
        expect.extend_from_slice(&3u64.to_be_bytes());
        expect.extend_from_slice(&(8 + 10_000u32).to_be_bytes());
        expect.extend_from_slice(&512u64.to_be_bytes());
        expect.extend_from_slice(&big);
        assert_eq!(out, expect);
        assert!(q.is_empty());
    }

    #[test]
    fn messages_are_cut_on_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
