//! The send side both transports share: PDUs encoded from the connection,
//! short pieces coalesced, long data segments as their own `Bytes` (the
//! session driver's layout), handed out as iovecs and consumed by count.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use iscsi_session::Connection;

/// Longer data segments go out as their own iovec entry, not copied.
const COALESCE_MAX: usize = 4096;

/// iovec entries per write.
pub const MAX_IOV: usize = 64;

#[derive(Debug, Default)]
pub struct OutQueue {
    out: VecDeque<Bytes>,
    small: BytesMut,
}

impl OutQueue {
    pub fn fill(&mut self, conn: &mut Connection<u32>) {
        while let Some(pdu) = conn.poll_transmit_into(&mut self.small) {
            if pdu.data.len() <= COALESCE_MAX {
                self.small.extend_from_slice(&pdu.data);
                self.small.extend_from_slice(pdu.trailer());
            } else {
                self.out.push_back(self.small.split().freeze());
                self.small.extend_from_slice(pdu.trailer());
                self.out.push_back(pdu.data);
            }
        }
        if !self.small.is_empty() {
            self.out.push_back(self.small.split().freeze());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The queue's first pieces as iovecs; returns how many were set.
    pub fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let mut count = 0;
        for (slice, chunk) in slices.iter_mut().zip(&self.out) {
            *slice = IoSlice::new(chunk);
            count += 1;
        }
        count
    }

    /// Drops `written` bytes from the front.
    pub fn consume(&mut self, mut written: usize) {
        while written > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if written >= front.len() {
                written -= front.len();
                self.out.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
}
