//! Transmission requests off the wire, as a decoder over the connection's
//! receive buffer (tokio-util style: `Ok(None)` means more bytes are
//! needed). A WRITE's payload is split off the buffer as `Bytes`, never
//! copied; the payload of a WRITE too large to take is skipped in place, so
//! the connection stays in step and answers EINVAL.

use bytes::{Buf, Bytes, BytesMut};

use crate::proto::{CMD_WRITE, REQUEST_LEN, REQUEST_MAGIC};

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Command flags (FUA, NO_HOLE, DF...).
    pub flags: u16,
    /// Command type.
    pub command: u16,
    /// The client's handle (cookie), echoed in the reply.
    pub handle: u64,
    /// Byte offset.
    pub offset: u64,
    /// Byte length.
    pub length: u32,
    /// A WRITE's payload; empty otherwise.
    pub data: Bytes,
}

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A request to serve.
    Request(Request),
    /// A WRITE whose payload is larger than the server takes: its payload
    /// is being skipped; answer EINVAL.
    Oversized(Request),
}

/// The client broke the framing: the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an NBD request: magic {0:#010x}")]
pub struct BadMagic(pub u32);

/// The most a WRITE's payload makes the decoder reserve beyond what is
/// buffered when little of it has arrived.
const RESERVE_STEP: usize = 1 << 20;

/// Splits requests off a receive buffer.
#[derive(Debug)]
pub struct RequestDecoder {
    max_payload: usize,
    /// Payload bytes of an oversized WRITE still to discard.
    skipping: u64,
}

impl RequestDecoder {
    /// A decoder that takes WRITE payloads up to `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        RequestDecoder {
            max_payload,
            skipping: 0,
        }
    }

    /// Whether an oversized payload is being skipped.
    pub fn is_skipping(&self) -> bool {
        self.skipping > 0
    }

    /// The next request in `buf`, or `Ok(None)` when more bytes are needed
    /// (room for more of a payload is then reserved in `buf`: up to as much
    /// as is buffered, at least 1 MiB, never more than the payload needs).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, BadMagic> {
        if self.skipping > 0 {
            let n = self.skipping.min(buf.len() as u64);
            buf.advance(n as usize);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        if buf.len() < REQUEST_LEN {
            buf.reserve(REQUEST_LEN - buf.len());
            return Ok(None);
        }
        let header = &buf[..REQUEST_LEN];
        let magic = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
        if magic != REQUEST_MAGIC {
            return Err(BadMagic(magic));
        }
        let request = Request {
            flags: u16::from_be_bytes(header[4..6].try_into().expect("2 bytes")),
            command: u16::from_be_bytes(header[6..8].try_into().expect("2 bytes")),
            handle: u64::from_be_bytes(header[8..16].try_into().expect("8 bytes")),
            offset: u64::from_be_bytes(header[16..24].try_into().expect("8 bytes")),
            length: u32::from_be_bytes(header[24..28].try_into().expect("4 bytes")),
            data: Bytes::new(),
        };
        if request.command != CMD_WRITE {
            buf.advance(REQUEST_LEN);
            return Ok(Some(Decoded::Request(request)));
        }
        let payload = request.length as usize;
        if payload > self.max_payload {
            buf.advance(REQUEST_LEN);
            self.skipping = u64::from(request.length);
            let n = self.skipping.min(buf.len() as u64);
            buf.advance(n as usize);
            self.skipping -= n;
            return Ok(Some(Decoded::Oversized(request)));
        }
        let whole = REQUEST_LEN + payload;
        if buf.len() < whole {
            // Room for the rest of the payload, but at most as much again as
            // is buffered (or RESERVE_STEP): a 28-byte header claiming 32 MiB
            // must not commit 32 MiB before a byte of it arrives (found by the
            // nbd_requests fuzz target). Growing by doubling keeps the copies
            // of a large payload linear, as one up-front reserve did.
            let missing = whole - buf.len();
            buf.reserve(missing.min(buf.len().max(RESERVE_STEP)));
            return Ok(None);
        }
        buf.advance(REQUEST_LEN);
        let data = buf.split_to(payload).freeze();
        Ok(Some(Decoded::Request(Request { data, ..request })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CMD_READ;
    use proptest::prelude::*;

    fn header(command: u16, handle: u64, offset: u64, length: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&command.to_be_bytes());
        v.extend_from_slice(&handle.to_be_bytes());
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&length.to_be_bytes());
        v
    }

    #[test]
    fn reads_and_writes_come_whole_byte_by_byte() {
        let mut wire = header(CMD_READ, 7, 4096, 512);
        wire.extend(header(CMD_WRITE, 8, 0, 4));
        wire.extend_from_slice(b"abcd");
        let mut decoder = RequestDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(d) = decoder.decode(&mut buf).unwrap() {
                got.push(d);
            }
        }
        let Decoded::Request(read) = &got[0] else {
            panic!()
        };
        assert_eq!((read.handle, read.offset, read.length), (7, 4096, 512));
        let Decoded::Request(write) = &got[1] else {
            panic!()
        };
        assert_eq!(&write.data[..], b"abcd");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn an_oversized_write_is_skipped_and_the_stream_goes_on() {
        let mut wire = header(CMD_WRITE, 1, 0, 100);
        wire.extend(vec![0xee; 100]);
        wire.extend(header(CMD_READ, 2, 0, 512));
        let mut decoder = RequestDecoder::new(64);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(d) = decoder.decode(&mut buf).unwrap() {
                got.push(d);
            }
        }
        assert!(matches!(&got[0], Decoded::Oversized(r) if r.handle == 1));
        assert!(matches!(&got[1], Decoded::Request(r) if r.handle == 2));
        assert_eq!(got.len(), 2);
    }

    /// Found by the nbd_requests fuzz target: a WRITE header claiming a
    /// large payload reserved all of it before any arrived.
    #[test]
    fn a_claimed_payload_is_not_reserved_before_it_arrives() {
        let mut decoder = RequestDecoder::new(32 << 20);
        let mut buf = BytesMut::from(&header(CMD_WRITE, 1, 0, 32 << 20)[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 2 * RESERVE_STEP, "{}", buf.capacity());
        // As the payload arrives the room grows, and it still comes out whole.
        let chunk = vec![0x5a; 1 << 20];
        let mut got = None;
        for _ in 0..32 {
            assert!(got.is_none());
            buf.extend_from_slice(&chunk);
            got = decoder.decode(&mut buf).unwrap();
            // Proportional to what arrived (`BytesMut` itself doubles).
            assert!(
                buf.capacity() <= 4 * buf.len().max(RESERVE_STEP),
                "{}",
                buf.capacity()
            );
        }
        match got {
            Some(Decoded::Request(r)) => assert_eq!(r.data.len(), 32 << 20),
            other => panic!("expected the write, got {other:?}"),
        }
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n....."[..]);
        assert!(RequestDecoder::new(1024).decode(&mut buf).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_never_takes_more_than_it_has(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
            max in 0usize..128,
        ) {
            let mut decoder = RequestDecoder::new(max);
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..64 {
                match decoder.decode(&mut buf) {
                    Ok(Some(Decoded::Request(r))) => prop_assert!(r.data.len() <= max),
                    Ok(Some(Decoded::Oversized(_))) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
