//! A slab whose keys are Initiator Task Tags: the ITT carries the slot index
//! and the slot's generation, so finding a task is an index and a compare,
//! and an ITT of a task that ended (a late or forged answer from the target)
//! names a newer generation's slot and is not found.

use std::collections::VecDeque;

use iscsi_proto::pdu::Itt;

/// Low bits of an ITT: the slot index.
const INDEX_BITS: u32 = 16;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// High bits: the generation, bumped each time the slot is emptied. Never 0,
/// so no ITT is 0 (the value the login uses).
const GENERATION_MAX: u32 = u32::MAX >> INDEX_BITS;

/// Slots at most: index 0xffff is never used, so the reserved ITT 0xffffffff
/// is never issued.
pub(crate) const MAX_SLOTS: usize = INDEX_MASK as usize;

/// Free slots kept before one is reused: a slot comes back only after this
/// many other allocations, so a generation repeats only after
/// `REUSE_SPREAD * GENERATION_MAX` allocations (about 4 million), not after
/// 65535 at queue depth 1.
const REUSE_SPREAD: usize = 64;

#[derive(Debug)]
struct Slot<T> {
    /// The generation the next ITT of this slot carries (or the live one's).
    generation: u32,
    value: Option<T>,
}

/// Values keyed by the ITT they were given.
#[derive(Debug)]
pub(crate) struct IttSlab<T> {
    slots: Vec<Slot<T>>,
    /// Empty slots, oldest first.
    free: VecDeque<u32>,
    limit: usize,
}

fn compose(index: u32, generation: u32) -> Itt {
    Itt((generation << INDEX_BITS) | index)
}

fn split(itt: Itt) -> (usize, u32) {
    ((itt.0 & INDEX_MASK) as usize, itt.0 >> INDEX_BITS)
}

impl<T> Default for IttSlab<T> {
    fn default() -> Self {
        IttSlab::with_limit(MAX_SLOTS)
    }
}

impl<T> IttSlab<T> {
    /// A slab of at most `limit` slots (at most [`MAX_SLOTS`]). Slots are
    /// allocated as they are first needed.
    pub fn with_limit(limit: usize) -> Self {
        IttSlab {
            slots: Vec::new(),
            free: VecDeque::new(),
            limit: limit.min(MAX_SLOTS),
        }
    }

    /// Room for one more value, if there is: the entry is filled (and the
    /// ITT issued) by [`VacantEntry::insert`].
    pub fn vacant_entry(&mut self) -> Option<VacantEntry<'_, T>> {
        let grow = self.slots.len() < self.limit && self.free.len() < REUSE_SPREAD;
        if !grow && self.free.is_empty() {
            return None;
        }
        Some(VacantEntry { slab: self, grow })
    }

    /// Stores `value` under a fresh ITT, or gives it back when every slot is
    /// taken.
    #[cfg(test)]
    pub fn insert(&mut self, value: T) -> Result<Itt, T> {
        match self.vacant_entry() {
            Some(entry) => Ok(entry.insert(value)),
            None => Err(value),
        }
    }

    fn slot(&self, itt: Itt) -> Option<&Slot<T>> {
        let (index, generation) = split(itt);
        self.slots
            .get(index)
            .filter(|slot| slot.generation == generation)
    }

    pub fn get(&self, itt: Itt) -> Option<&T> {
        self.slot(itt)?.value.as_ref()
    }

    pub fn get_mut(&mut self, itt: Itt) -> Option<&mut T> {
        let (index, generation) = split(itt);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub fn remove(&mut self, itt: Itt) -> Option<T> {
        let (index, generation) = split(itt);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = if slot.generation == GENERATION_MAX {
            1
        } else {
            slot.generation + 1
        };
        self.free.push_back(index as u32);
        Some(value)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.values().count()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Itt, &T)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let value = slot.value.as_ref()?;
            Some((compose(index as u32, slot.generation), value))
        })
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|slot| slot.value.as_ref())
    }

    /// Empties the slab; the ITTs given out become unknown.
    pub fn drain(&mut self) -> Vec<(Itt, T)> {
        let live: Vec<Itt> = self.iter().map(|(itt, _)| itt).collect();
        live.into_iter()
            .filter_map(|itt| Some((itt, self.remove(itt)?)))
            .collect()
    }
}

/// A slot of an [`IttSlab`] known to be free.
pub(crate) struct VacantEntry<'a, T> {
    slab: &'a mut IttSlab<T>,
    grow: bool,
}

impl<T> VacantEntry<'_, T> {
    /// Stores `value`, returning its ITT.
    pub fn insert(self, value: T) -> Itt {
        let slab = self.slab;
        // `vacant_entry` saw a free slot under this same exclusive borrow, so
        // the queue is not empty; were it, growing is the harmless answer.
        let index = match (self.grow, slab.free.front()) {
            (false, Some(_)) => slab.free.pop_front().unwrap_or_default() as usize,
            _ => {
                slab.slots.push(Slot {
                    generation: 1,
                    value: None,
                });
                slab.slots.len() - 1
            }
        };
        let slot = &mut slab.slots[index];
        slot.value = Some(value);
        compose(index as u32, slot.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_has_a_new_generation_and_the_old_itt_is_unknown() {
        let mut slab = IttSlab::with_limit(1);
        let first = slab.insert("a").unwrap();
        assert_eq!(slab.remove(first), Some("a"));
        let second = slab.insert("b").unwrap();
        assert_eq!(split(first).0, split(second).0, "the one slot is reused");
        assert_eq!(split(second).1, split(first).1 + 1);
        assert_eq!(slab.get(first), None, "a stale ITT names no task");
        assert_eq!(slab.remove(first), None);
        assert_eq!(slab.get(second), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn forged_itts_are_unknown() {
        let mut slab = IttSlab::default();
        let live = slab.insert(1u8).unwrap();
        let (index, generation) = split(live);
        for forged in [
            Itt::RESERVED,
            Itt(0),
            compose(index as u32 + 1, generation),
            compose(index as u32, generation + 1),
            compose(index as u32, 0),
        ] {
            assert_eq!(slab.get(forged), None, "{forged:?}");
            assert_eq!(slab.get_mut(forged), None, "{forged:?}");
        }
        assert_eq!(slab.get(live), Some(&1));
    }

    #[test]
    fn the_reserved_itt_and_zero_are_never_issued() {
        let mut slab = IttSlab::default();
        let mut itts = Vec::new();
        while let Ok(itt) = slab.insert(()) {
            itts.push(itt);
        }
        assert_eq!(itts.len(), MAX_SLOTS, "the full index space but 0xffff");
        assert!(itts.iter().all(|itt| !itt.is_reserved() && itt.0 != 0));
        // The last slot's generation wraps to 1, never 0 and never up to a
        // value that with index 0xffff would be reserved.
        let last = *itts.last().unwrap();
        let slot = split(last).0;
        slab.remove(last);
        slab.slots[slot].generation = GENERATION_MAX;
        let top = slab.insert(()).unwrap();
        assert_eq!(top, compose(slot as u32, GENERATION_MAX));
        assert!(!top.is_reserved());
        slab.remove(top);
        assert_eq!(slab.slots[slot].generation, 1);
    }

    #[test]
    fn a_full_slab_gives_the_value_back_until_a_slot_frees() {
        let mut slab = IttSlab::with_limit(2);
        let a = slab.insert('a').unwrap();
        let _b = slab.insert('b').unwrap();
        assert_eq!(slab.insert('c'), Err('c'));
        slab.remove(a);
        let c = slab.insert('c').unwrap();
        assert_ne!(c, a);
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.slots.len(), 2, "never beyond the limit");
    }

    #[test]
    fn slots_are_spread_before_one_is_reused() {
        let mut slab = IttSlab::default();
        let mut seen = std::collections::HashSet::new();
        // Queue depth 1: one task at a time.
        for _ in 0..REUSE_SPREAD {
            let itt = slab.insert(()).unwrap();
            assert!(seen.insert(split(itt).0));
            slab.remove(itt);
        }
        let next = slab.insert(()).unwrap();
        assert_eq!(split(next), (0, 2), "the oldest free slot, next generation");
        assert_eq!(slab.slots.len(), REUSE_SPREAD);
    }

    #[test]
    fn drain_empties_and_forgets_every_itt() {
        let mut slab = IttSlab::default();
        let a = slab.insert(1).unwrap();
        let b = slab.insert(2).unwrap();
        let mut drained = slab.drain();
        drained.sort();
        assert_eq!(drained, vec![(a, 1), (b, 2)]);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.iter().count(), 0);
    }
}
