//! The timer's deadline heap and the slots of the sleeps registered in it (see the timer's doc:
//! nothing outlives its sleep). Pure data under the timer's lock: no clock reads, no threads.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

/// A heap entry: the deadline of the sleep registered in `slot` at `generation`.
pub(super) struct Entry {
    pub deadline: Instant,
    seq: u64,
    pub slot: u32,
    pub generation: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.deadline.cmp(&self.deadline).then(other.seq.cmp(&self.seq))
    }
}

/// One registered sleep: its current waker (`None` once fired), the generation that tells its
/// heap entry from those of earlier sleeps in the same slot, and how the timer fired it.
pub(super) struct Slot {
    pub generation: u32,
    pub waker: Option<Waker>,
    pub fired: Option<Fired>,
}

/// When the timer thread took a sleep's waker to wake it, and whether that was a cold wake-up
/// (see the timer's doc): the sleep learns the wake-up latency from it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fired {
    pub at: Instant,
    pub cold: bool,
}

#[derive(Default)]
pub(super) struct Heap {
    pub entries: BinaryHeap<Entry>,
    seq: u64,
    pub slots: Vec<Slot>,
    pub free: Vec<u32>,
    /// Entries in `entries` whose sleep has ended or been dropped.
    pub dead: usize,
}

/// Where a registered sleep's slot is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Key {
    pub slot: u32,
    pub generation: u32,
}

impl Heap {
    /// Whether `e` is the live registration of its slot.
    pub fn live(&self, e: &Entry) -> bool {
        let s = &self.slots[e.slot as usize];
        s.generation == e.generation && s.waker.is_some()
    }

    pub fn take_slot(&mut self, waker: Waker) -> Key {
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.waker = Some(waker);
            s.fired = None;
            return Key { slot: i, generation: s.generation };
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 sleeps pending at once");
        self.slots.push(Slot { generation: 0, waker: Some(waker), fired: None });
        Key { slot, generation: 0 }
    }

    pub fn push(&mut self, deadline: Instant, key: Key) {
        self.seq += 1;
        self.entries.push(Entry { deadline, seq: self.seq, slot: key.slot, generation: key.generation });
    }

    /// Whether `key` is the live registration of its slot, and if the timer has fired it, how.
    pub fn fired(&self, key: Key) -> Option<Fired> {
        let s = &self.slots[key.slot as usize];
        if s.generation == key.generation { s.fired } else { None }
    }

    /// Pops the top entry (live, due) and hands its waker out, noting how it was fired.
    pub fn fire(&mut self, fired: Fired) -> Option<Waker> {
        let e = self.entries.pop()?;
        let s = &mut self.slots[e.slot as usize];
        s.fired = Some(fired);
        s.waker.take()
    }

    /// Frees `key`'s slot; its heap entry, if still there, becomes dead.
    pub fn release(&mut self, key: Key) {
        let s = &mut self.slots[key.slot as usize];
        if s.generation != key.generation {
            return;
        }
        if s.waker.take().is_some() {
            self.dead += 1;
        }
        s.generation = s.generation.wrapping_add(1);
        self.free.push(key.slot);
        if self.dead > 64 && self.dead * 2 > self.entries.len() {
            let slots = &self.slots;
            self.entries.retain(|e| {
                let s = &slots[e.slot as usize];
                s.generation == e.generation && s.waker.is_some()
            });
            self.dead = 0;
        }
    }
}
