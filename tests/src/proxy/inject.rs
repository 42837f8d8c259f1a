//! Messages slipped into the target-to-initiator stream: the proxy follows
//! iSCSI PDU boundaries in that direction (no digests: the fault rigs do
//! not negotiate them) and inserts an Asynchronous Message at the next one,
//! as if the target had sent it: a logout request, a dropped connection.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::BytesMut;
use iscsi_proto::codec::PduEncoder;
use iscsi_proto::pdu::{AsyncEvent, AsyncMessage, BHS_LEN, Lun, Pdu};

/// Follows PDU boundaries in one direction of a connection.
#[derive(Debug, Default)]
pub(crate) struct PduBoundaries {
    /// Bytes of the current PDU's BHS seen so far.
    bhs: Vec<u8>,
    /// Bytes left after the BHS (AHS, data, padding).
    rest: usize,
    /// StatSN, ExpCmdSN and MaxCmdSN of the last whole BHS.
    numbers: Option<[u8; 12]>,
}

impl PduBoundaries {
    /// How many bytes of `chunk` reach the next boundary (0 when at one).
    pub fn to_boundary(&self, chunk: &[u8]) -> Option<usize> {
        let mut probe = PduBoundaries {
            bhs: self.bhs.clone(),
            rest: self.rest,
            numbers: None,
        };
        if probe.at_boundary() {
            return Some(0);
        }
        for (i, b) in chunk.iter().enumerate() {
            probe.feed(std::slice::from_ref(b));
            if probe.at_boundary() {
                return Some(i + 1);
            }
        }
        None
    }

    pub fn at_boundary(&self) -> bool {
        self.bhs.is_empty() && self.rest == 0
    }

    /// Takes bytes of the stream.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.rest > 0 {
                let n = self.rest.min(chunk.len());
                self.rest -= n;
                chunk = &chunk[n..];
                continue;
            }
            let n = (BHS_LEN - self.bhs.len()).min(chunk.len());
            self.bhs.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.bhs.len() == BHS_LEN {
                let ahs = usize::from(self.bhs[4]) * 4;
                let data = u32::from_be_bytes([0, self.bhs[5], self.bhs[6], self.bhs[7]]) as usize;
                self.rest = ahs + data.div_ceil(4) * 4;
                let mut numbers = [0u8; 12];
                numbers.copy_from_slice(&self.bhs[24..36]);
                self.numbers = Some(numbers);
                self.bhs.clear();
            }
        }
    }
}

/// Asynchronous Messages waiting to be inserted.
#[derive(Debug, Default)]
pub(crate) struct Injections {
    queue: Mutex<VecDeque<(AsyncEvent, u16, u16, u16)>>,
    pub notify: tokio::sync::Notify,
}

impl Injections {
    pub fn push(&self, event: AsyncEvent, p1: u16, p2: u16, p3: u16) {
        self.queue.lock().unwrap().push_back((event, p1, p2, p3));
        // A stored permit: the pump may not be waiting right now.
        self.notify.notify_one();
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }

    /// The next message, encoded with the numbers of the last target PDU
    /// (its StatSN repeated, so the initiator's count does not move).
    pub fn pop(&self, boundaries: &PduBoundaries) -> Option<BytesMut> {
        let (event, p1, p2, p3) = self.queue.lock().unwrap().pop_front()?;
        let n = boundaries.numbers.unwrap_or([0; 12]);
        let word = |at: usize| u32::from_be_bytes([n[at], n[at + 1], n[at + 2], n[at + 3]]);
        let msg = AsyncMessage {
            lun: Lun::default(),
            stat_sn: word(0),
            exp_cmd_sn: word(4),
            max_cmd_sn: word(8),
            event,
            vcode: 0,
            parameter1: p1,
            parameter2: p2,
            parameter3: p3,
            data: bytes::Bytes::new(),
        };
        let mut out = BytesMut::new();
        PduEncoder::default()
            .encode(&Pdu::AsyncMessage(msg), &mut out)
            .ok()?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_headers_and_padded_data() {
        let mut bhs = vec![0u8; BHS_LEN];
        bhs[0] = 0x25; // Data-In
        bhs[7] = 5; // 5 data bytes: 8 with padding
        bhs[24..28].copy_from_slice(&7u32.to_be_bytes());
        let mut stream = bhs.clone();
        stream.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
        let mut b = PduBoundaries::default();
        assert_eq!(b.to_boundary(&stream), Some(0));
        b.feed(&stream[..10]);
        assert_eq!(b.to_boundary(&stream[10..]), Some(stream.len() - 10));
        b.feed(&stream[10..]);
        assert!(b.at_boundary());
        let injections = Injections::default();
        injections.push(AsyncEvent::LogoutRequest, 0, 0, 5);
        let bytes = injections.pop(&b).unwrap();
        assert_eq!(bytes.len(), BHS_LEN);
        assert_eq!(bytes[0] & 0x3f, 0x32);
        assert_eq!(&bytes[24..28], &7u32.to_be_bytes());
    }
}
