//! Buffers for long data segments, taken again once the caller lets go.
//!
//! Each long Data-In segment is read into a buffer of its own, of its exact
//! size (`receive`). Allocating and freeing one per command at 128 KiB made
//! glibc give the top of its heap back to the kernel and take it again: a
//! `brk` every few commands and two page faults per command (BENCHMARKS.md).
//! The pool keeps a handle on each buffer it lent; once that handle is the
//! last one, the caller is done with the buffer and the next segment of the
//! same size is read into it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Buffers watched at most: a few more than the segments a connection has in
/// flight between the socket and its callers at a queue depth of 32 (most
/// callers drop a result as soon as they have written it out).
const LENT_MAX: usize = 16;

/// Bytes watched at most, per connection: what the pool may keep allocated
/// once the callers are done with every buffer (16 of 128 KiB, 4 of 1 MiB).
const LENT_BYTES_MAX: usize = 4 << 20;

/// Segment buffers lent to callers, oldest first.
#[derive(Debug, Default)]
pub(super) struct SegmentPool {
    lent: VecDeque<Bytes>,
    lent_bytes: usize,
}

impl SegmentPool {
    /// An empty buffer of capacity `len`: one the callers gave back if there
    /// is one of that size, else a fresh one.
    pub fn take(&mut self, len: usize) -> BytesMut {
        if let Some(at) = self
            .lent
            .iter()
            .position(|b| b.len() == len && b.is_unique())
        {
            let back = self.lent.remove(at).expect("a position inside the queue");
            self.lent_bytes -= back.len();
            if let Ok(mut own) = back.try_into_mut()
                && own.capacity() == len
            {
                own.clear();
                return own;
            }
        }
        BytesMut::with_capacity(len)
    }

    /// Watches a segment's buffer as it goes to a caller, forgetting the
    /// oldest ones beyond the bounds (they are freed when their caller drops
    /// them).
    pub fn lend(&mut self, segment: &Bytes) {
        if segment.len() > LENT_BYTES_MAX {
            return;
        }
        self.lent.push_back(segment.clone());
        self.lent_bytes += segment.len();
        while self.lent.len() > LENT_MAX || self.lent_bytes > LENT_BYTES_MAX {
            let old = self
                .lent
                .pop_front()
                .expect("over the bounds, so not empty");
            self.lent_bytes -= old.len();
        }
    }

    /// Forgets every lent buffer, so that callers' handles are the last ones.
    #[cfg(test)]
    pub fn forget(&mut self) {
        self.lent.clear();
        self.lent_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pool: &mut SegmentPool, len: usize, byte: u8) -> Bytes {
        let mut buf = pool.take(len);
        assert_eq!(buf.capacity(), len);
        assert!(buf.is_empty());
        buf.resize(len, byte);
        let segment = buf.freeze();
        pool.lend(&segment);
        segment
    }

    #[test]
    fn a_buffer_is_taken_again_once_its_caller_drops_it() {
        let mut pool = SegmentPool::default();
        let first = filled(&mut pool, 128 << 10, 1);
        let at = first.as_ptr();
        // Still the caller's: the next segment gets another buffer.
        let second = filled(&mut pool, 128 << 10, 2);
        assert_ne!(second.as_ptr(), at);
        assert!(
            first.iter().all(|&b| b == 1),
            "a lent buffer is never written"
        );
        drop(first);
        assert_eq!(pool.lent.len(), 2);
        let third = pool.take(128 << 10);
        assert_eq!(third.as_ptr(), at);
        assert!(third.is_empty());
        assert_eq!(pool.lent.len(), 1, "taken out of the pool, not allocated");
        assert_eq!(pool.lent_bytes, 128 << 10);
    }

    #[test]
    fn only_a_buffer_of_the_same_size_is_taken() {
        let mut pool = SegmentPool::default();
        let at = filled(&mut pool, 100_000, 1).as_ptr();
        let other = pool.take(100_001);
        assert_ne!(other.as_ptr(), at);
        assert_eq!(other.capacity(), 100_001);
        assert_eq!(pool.take(100_000).as_ptr(), at);
        assert!(pool.lent.is_empty());
    }

    #[test]
    fn a_slice_kept_by_the_caller_keeps_the_buffer_lent() {
        let mut pool = SegmentPool::default();
        let segment = filled(&mut pool, 70_000, 3);
        let at = segment.as_ptr();
        let kept = segment.slice(..10);
        drop(segment);
        assert_ne!(pool.take(70_000).as_ptr(), at);
        assert_eq!(pool.lent.len(), 1, "still watched");
        assert_eq!(kept[..], [3; 10]);
    }

    #[test]
    fn the_pool_watches_a_bounded_number_of_bytes() {
        let mut pool = SegmentPool::default();
        for _ in 0..100 {
            drop(filled(&mut pool, 1 << 20, 0));
        }
        assert!(pool.lent.len() <= LENT_BYTES_MAX >> 20);
        assert!(pool.lent_bytes <= LENT_BYTES_MAX);
        for _ in 0..100 {
            let _kept = filled(&mut pool, 65_536, 0);
        }
        assert!(pool.lent.len() <= LENT_MAX);
        // Too big to keep at all.
        let huge = filled(&mut pool, LENT_BYTES_MAX + 1, 0);
        assert!(pool.lent.iter().all(|b| b.len() != huge.len()));
    }
}
