//! Task deadlines, O(1) per command in the common case: commands share one
//! timeout, so their deadlines arrive in order and go to the back of a FIFO;
//! only a deadline earlier than the last one (a per-command timeout, a task
//! management timeout) goes to a heap. Entries are never searched for:
//! whoever pops one checks that its task is still there and still has that
//! deadline (lazy removal).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use iscsi_proto::pdu::Itt;

/// Deadlines of tasks, some of them possibly for tasks already ended.
#[derive(Debug, Default)]
pub(crate) struct DeadlineQueue {
    in_order: VecDeque<(Instant, Itt)>,
    out_of_order: BinaryHeap<Reverse<(Instant, Itt)>>,
}

/// Which of the two holds the earliest entry.
enum Earliest {
    InOrder,
    OutOfOrder,
}

impl DeadlineQueue {
    pub fn push(&mut self, at: Instant, itt: Itt) {
        match self.in_order.back() {
            Some(&(last, _)) if at < last => self.out_of_order.push(Reverse((at, itt))),
            _ => self.in_order.push_back((at, itt)),
        }
    }

    fn earliest(&self) -> Option<(Earliest, (Instant, Itt))> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (None, None) => None,
            (Some(&f), None) => Some((Earliest::InOrder, f)),
            (None, Some(&Reverse(h))) => Some((Earliest::OutOfOrder, h)),
            (Some(&f), Some(&Reverse(h))) if f <= h => Some((Earliest::InOrder, f)),
            (Some(_), Some(&Reverse(h))) => Some((Earliest::OutOfOrder, h)),
        }
    }

    /// The earliest entry, live or not.
    pub fn peek(&self) -> Option<(Instant, Itt)> {
        self.earliest().map(|(_, entry)| entry)
    }

    /// Takes the earliest entry.
    pub fn pop(&mut self) -> Option<(Instant, Itt)> {
        match self.earliest()?.0 {
            Earliest::InOrder => self.in_order.pop_front(),
            Earliest::OutOfOrder => self.out_of_order.pop().map(|Reverse(e)| e),
        }
    }

    /// Entries held, live or not.
    pub fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    /// Keeps only the entries `live` accepts (a compaction, O(n)).
    pub fn retain(&mut self, mut live: impl FnMut(Instant, Itt) -> bool) {
        self.in_order.retain(|&(at, itt)| live(at, itt));
        self.out_of_order
            .retain(|&Reverse((at, itt))| live(at, itt));
    }

    pub fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_out_earliest_first_whatever_the_push_order() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut q = DeadlineQueue::default();
        for (s, itt) in [(10, 1), (20, 2), (5, 3), (20, 4), (30, 5), (15, 6)] {
            q.push(at(s), Itt(itt));
        }
        assert_eq!(
            q.out_of_order.len(),
            2,
            "only the early ones go to the heap"
        );
        assert_eq!(q.peek(), Some((at(5), Itt(3))));
        let order: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|(_, i)| i.0).collect();
        assert_eq!(order, vec![3, 1, 6, 2, 4, 5]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn retain_drops_dead_entries_from_both_halves() {
        let t0 = Instant::now();
        let mut q = DeadlineQueue::default();
        q.push(t0 + Duration::from_secs(2), Itt(1));
        q.push(t0 + Duration::from_secs(1), Itt(2));
        q.push(t0 + Duration::from_secs(3), Itt(3));
        q.retain(|_, itt| itt != Itt(2) && itt != Itt(3));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(), Some((t0 + Duration::from_secs(2), Itt(1))));
    }
}
