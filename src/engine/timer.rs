//! A precise timer for sub-millisecond sleeps.
//!
//! tokio's timer wheel has millisecond slots and rounds every sleep up (a 100 µs sleep takes
//! about 1.2 ms here), so service times and arrival gaps below a few milliseconds would be
//! badly wrong. This timer keeps a deadline heap on a dedicated thread that:
//! - parks until shortly before the earliest deadline, with its timer slack lowered to 1 ns so
//!   the kernel does not add its default 50 µs;
//! - spins only the last stretch (about the park overshoot it has measured);
//! - fires each deadline early by the wake-up latency it observes (the time from its `wake()` to
//!   the task being polled, learned from the sleeps themselves), so the mean lateness a task sees
//!   is near zero.
//!
//! Registering a sleep takes one uncontended lock and a heap push (no allocation once the heap
//! has grown); the thread is unparked only when a new deadline becomes the earliest.
//!
//! **Nothing outlives its sleep.** Each registered [`Sleep`] owns a slot (its waker and a
//! generation); the heap holds `(deadline, slot, generation)`. Polling a sleep again replaces
//! its waker in the slot (no second entry); a sleep that ends or is dropped frees its slot at
//! once (the waker goes with it), and the heap entry it leaves is dead (its generation no longer
//! matches), skipped without a wake-up, and swept out as soon as dead entries outnumber live
//! ones. So a job that beats its `--timeout` leaves nothing behind, and the heap stays within
//! twice the sleeps actually pending.
//!
//! Depends on std and, on Linux, `nix` (for the timer slack); the tokio runtime never sees this
//! thread.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The longest we fire early: a bound on the learned wake-up latency, so one stall cannot teach
/// the timer to fire absurdly early.
const MAX_EARLY_NS: i64 = 200_000;
/// The largest lateness one sleep may report to the learning rule (see `learn_wake_latency`).
const LEARN_CLAMP_NS: i64 = 50_000;
/// Spinning margin kept on top of the measured park overshoot.
const SPIN_MARGIN_NS: u64 = 5_000;

/// A heap entry: the deadline of the sleep registered in `slot` at `generation`.
struct Entry {
    deadline: Instant,
    seq: u64,
    slot: u32,
    generation: u32,
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

/// One registered sleep: its current waker (`None` once fired), and the generation that tells
/// its heap entry from those of earlier sleeps in the same slot.
struct Slot {
    generation: u32,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Entry>,
    seq: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Entries in `entries` whose sleep has ended or been dropped.
    dead: usize,
}

/// Where a registered sleep's slot is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    slot: u32,
    generation: u32,
}

impl Heap {
    /// Whether `e` is the live registration of its slot.
    fn live(&self, e: &Entry) -> bool {
        let s = &self.slots[e.slot as usize];
        s.generation == e.generation && s.waker.is_some()
    }

    fn take_slot(&mut self, waker: Waker) -> Key {
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.waker = Some(waker);
            return Key { slot: i, generation: s.generation };
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 sleeps pending at once");
        self.slots.push(Slot { generation: 0, waker: Some(waker) });
        Key { slot, generation: 0 }
    }

    fn push(&mut self, deadline: Instant, key: Key) {
        self.seq += 1;
        self.entries.push(Entry { deadline, seq: self.seq, slot: key.slot, generation: key.generation });
    }

    /// Frees `key`'s slot; its heap entry, if still there, becomes dead.
    fn release(&mut self, key: Key) {
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

struct Inner {
    heap: Mutex<Heap>,
    thread: Mutex<Option<Thread>>,
    stop: AtomicBool,
    /// How early (ns) deadlines are fired: the learned wake-to-poll latency.
    early_ns: AtomicI64,
    /// The measured park overshoot (ns), an exponential moving average.
    overshoot_ns: AtomicU64,
    /// Set when a registration became the earliest deadline, so a spinning thread re-reads the heap.
    dirty: AtomicBool,
    /// CPU time the timer thread spent awake, for the benchmark's cost figure.
    awake_ns: AtomicU64,
}

/// A handle to the timer thread; cloning shares the thread. The thread stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Timer {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Stops the thread when the last [`Timer`] goes away.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.stop.store(true, AtomicOrdering::Release);
        if let Some(t) = lock(&self.0.thread).as_ref() {
            t.unpark();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Timer {
    /// Starts the timer thread.
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    #[must_use]
    pub fn start() -> Timer {
        let inner = Arc::new(Inner {
            heap: Mutex::new(Heap::default()),
            thread: Mutex::new(None),
            stop: AtomicBool::new(false),
            early_ns: AtomicI64::new(10_000),
            overshoot_ns: AtomicU64::new(20_000),
            dirty: AtomicBool::new(false),
            awake_ns: AtomicU64::new(0),
        });
        let for_thread = Arc::clone(&inner);
        let handle = thread::Builder::new()
            .name("pooltune-timer".into())
            .spawn(move || run(&for_thread))
            .expect("the OS refused to start the timer thread");
        *lock(&inner.thread) = Some(handle.thread().clone());
        Timer { _owner: Arc::new(Owner(Arc::clone(&inner))), inner }
    }

    /// Sleeps until about `deadline`: the mean lateness is near zero, so a single sleep may end
    /// a few microseconds early (service times are measured from real instants either way).
    #[must_use]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Sleep { timer: &self.inner, deadline, key: None, strict: false }
    }

    /// Sleeps until `deadline` and never returns before it: woken early, it spins the few
    /// microseconds left. For arrivals, which must not precede their intended time.
    #[must_use]
    pub fn sleep_until_strict(&self, deadline: Instant) -> Sleep<'_> {
        Sleep { timer: &self.inner, deadline, key: None, strict: true }
    }

    /// Sleeps for `d`.
    #[must_use]
    pub fn sleep(&self, d: Duration) -> Sleep<'_> {
        self.sleep_until(Instant::now() + d)
    }

    /// Heap entries, and sleeps registered and not yet ended (for the benchmark and the leak
    /// tests: the first stays within about twice the second).
    #[must_use]
    pub fn pending(&self) -> (usize, usize) {
        let heap = lock(&self.inner.heap);
        (heap.entries.len(), heap.slots.len() - heap.free.len())
    }

    /// Total time the timer thread has spent awake (parking, waking, spinning), for cost figures.
    #[must_use]
    pub fn awake(&self) -> Duration {
        Duration::from_nanos(self.inner.awake_ns.load(AtomicOrdering::Relaxed))
    }
}

/// The future returned by [`Timer::sleep_until`].
pub struct Sleep<'a> {
    timer: &'a Inner,
    deadline: Instant,
    /// The slot while registered with the timer thread.
    key: Option<Key>,
    strict: bool,
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.timer.heap).release(key);
        }
    }
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        // The early allowance applies only to a sleep the timer woke: one that is merely polled
        // before its deadline must wait for it. (Otherwise a sleep shorter than the allowance
        // would end at once and never teach the timer that it fires too early.)
        let early = if self.key.is_some() {
            Duration::from_nanos(self.timer.early_ns.load(AtomicOrdering::Relaxed).unsigned_abs())
        } else {
            Duration::ZERO
        };
        if now + early >= self.deadline {
            if let Some(key) = self.key.take() {
                learn_wake_latency(self.timer, now, self.deadline);
                lock(&self.timer.heap).release(key);
            }
            if self.strict {
                // At most the learned early offset (bounded by MAX_EARLY_NS), typically ~10 µs.
                while Instant::now() < self.deadline {
                    std::hint::spin_loop();
                }
            }
            return Poll::Ready(());
        }
        let key = register(self.timer, self.deadline, self.key, cx.waker());
        self.key = Some(key);
        Poll::Pending
    }
}

/// Moves the early-fire offset by a fraction of this sleep's lateness: late sleeps make it fire
/// earlier, early ones later, so the mean lateness settles near zero. Each sample is clamped to
/// ±[`LEARN_CLAMP_NS`] first, so one wake-up delayed by a preempted thread (milliseconds on a
/// loaded machine) moves the offset by at most a microsecond or two.
fn learn_wake_latency(t: &Inner, now: Instant, deadline: Instant) {
    let lateness = if now >= deadline {
        i64::try_from((now - deadline).as_nanos()).unwrap_or(MAX_EARLY_NS)
    } else {
        -i64::try_from((deadline - now).as_nanos()).unwrap_or(MAX_EARLY_NS)
    };
    let sample = lateness.clamp(-LEARN_CLAMP_NS, LEARN_CLAMP_NS);
    let early = t.early_ns.load(AtomicOrdering::Relaxed);
    let next = (early + sample / 32).clamp(0, MAX_EARLY_NS);
    t.early_ns.store(next, AtomicOrdering::Relaxed);
}

/// Registers (or re-registers) a sleep: a sleep already waiting only has its waker replaced; one
/// the timer fired too early for it (or a new one) gets a heap entry.
fn register(t: &Inner, deadline: Instant, key: Option<Key>, waker: &Waker) -> Key {
    let (key, earliest) = {
        let mut heap = lock(&t.heap);
        if let Some(k) = key {
            let s = &mut heap.slots[k.slot as usize];
            if let Some(w) = s.waker.as_mut() {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                return k;
            }
            // Fired, but polled before its deadline: wait again in the same slot.
            s.waker = Some(waker.clone());
            heap.push(deadline, k);
            (k, heap.entries.peek().is_some_and(|top| top.slot == k.slot && top.generation == k.generation))
        } else {
            let earliest = heap.entries.peek().is_none_or(|top| deadline < top.deadline);
            let k = heap.take_slot(waker.clone());
            heap.push(deadline, k);
            (k, earliest)
        }
    };
    if earliest {
        t.dirty.store(true, AtomicOrdering::Release);
        if let Some(th) = lock(&t.thread).as_ref() {
            th.unpark();
        }
    }
    key
}

fn run(t: &Inner) {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut due: Vec<Waker> = Vec::with_capacity(256);
    while !t.stop.load(AtomicOrdering::Acquire) {
        let woke = Instant::now();
        let early = Duration::from_nanos(t.early_ns.load(AtomicOrdering::Relaxed).unsigned_abs());
        let next = {
            let mut heap = lock(&t.heap);
            t.dirty.store(false, AtomicOrdering::Release);
            let now = Instant::now();
            loop {
                // Dead entries on top are dropped whatever their deadline: they wake nobody, and
                // the next park is timed by the earliest live sleep.
                match heap.entries.peek() {
                    Some(e) if !heap.live(e) => {
                        heap.entries.pop();
                        heap.dead = heap.dead.saturating_sub(1);
                    }
                    Some(e) if e.deadline <= now + early => {
                        let slot = e.slot as usize;
                        heap.entries.pop();
                        due.extend(heap.slots[slot].waker.take());
                    }
                    _ => break,
                }
            }
            heap.entries.peek().map(|e| e.deadline.checked_sub(early).unwrap_or(e.deadline))
        };
        for w in due.drain(..) {
            w.wake();
        }
        let Some(fire_at) = next else {
            account(t, woke);
            thread::park();
            continue;
        };
        let now = Instant::now();
        if fire_at <= now {
            continue;
        }
        let spin = Duration::from_nanos(t.overshoot_ns.load(AtomicOrdering::Relaxed) + SPIN_MARGIN_NS);
        let left = fire_at - now;
        if left > spin {
            account(t, woke);
            let want = left.checked_sub(spin).unwrap();
            let parked = Instant::now();
            thread::park_timeout(want);
            let slept = parked.elapsed();
            if slept >= want && !t.dirty.load(AtomicOrdering::Acquire) {
                let over =
                    u64::try_from(slept.checked_sub(want).unwrap().as_nanos()).unwrap_or(u64::MAX).min(1_000_000);
                let old = t.overshoot_ns.load(AtomicOrdering::Relaxed);
                t.overshoot_ns.store(old - old / 8 + over / 8, AtomicOrdering::Relaxed);
            }
            continue;
        }
        while Instant::now() < fire_at && !t.dirty.load(AtomicOrdering::Acquire) {
            std::hint::spin_loop();
        }
        account(t, woke);
    }
}

fn account(t: &Inner, since: Instant) {
    let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    t.awake_ns.fetch_add(ns, AtomicOrdering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sleep ends, and none before its deadline less the bounded early allowance. (Not the
    /// order of ending: on a loaded machine a task may first be polled after a later deadline.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleeps_never_end_before_their_deadline() {
        let timer = Timer::start();
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for ms in [5u64, 1, 3, 2, 4] {
            let (timer, tx) = (timer.clone(), tx.clone());
            let deadline = start + Duration::from_millis(ms);
            tokio::spawn(async move {
                timer.sleep_until(deadline).await;
                tx.send((deadline, Instant::now())).unwrap();
            });
        }
        drop(tx);
        let mut ended = 0;
        while let Some((deadline, at)) = rx.recv().await {
            assert!(at + Duration::from_nanos(MAX_EARLY_NS.unsigned_abs()) >= deadline);
            ended += 1;
        }
        assert_eq!(ended, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strict_sleeps_never_end_early() {
        let timer = Timer::start();
        for _ in 0..200 {
            let deadline = Instant::now() + Duration::from_micros(300);
            timer.sleep_until_strict(deadline).await;
            assert!(Instant::now() >= deadline);
        }
    }

    /// Polls `sleep` once with `waker`.
    fn poll_once(sleep: &mut Sleep<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    /// The `--timeout` pattern: a long sleep raced against a job that wins. Without slots, each
    /// dropped sleep left its entry (and waker) in the heap until its deadline.
    #[test]
    fn dropped_sleeps_leave_nothing_behind() {
        let timer = Timer::start();
        let far = Instant::now() + Duration::from_secs(60);
        for _ in 0..10_000 {
            let mut sleep = timer.sleep_until_strict(far);
            assert!(poll_once(&mut sleep, Waker::noop()).is_pending());
        }
        let (entries, live) = timer.pending();
        assert_eq!(live, 0, "every dropped sleep freed its slot");
        assert!(
            entries <= 64,
            "{entries} heap entries left by 10,000 dropped sleeps (the sweep keeps at most 64 dead)"
        );
    }

    #[test]
    fn polling_again_does_not_register_again() {
        let timer = Timer::start();
        let mut sleep = timer.sleep(Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(poll_once(&mut sleep, Waker::noop()).is_pending());
        }
        assert_eq!(timer.pending(), (1, 1));
        drop(sleep);
        assert_eq!(timer.pending().1, 0);
    }

    /// A dropped sleep's deadline passes without waking anyone.
    #[test]
    fn a_dropped_sleep_wakes_nobody() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, AtomicOrdering::Relaxed);
            }
        }
        let timer = Timer::start();
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut kept = timer.sleep(Duration::from_millis(2));
        let mut dropped = timer.sleep(Duration::from_millis(1));
        assert!(poll_once(&mut kept, &waker).is_pending());
        assert!(poll_once(&mut dropped, &waker).is_pending());
        drop(dropped);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count.0.load(AtomicOrdering::Relaxed), 1, "only the sleep still held was woken");
        assert!(poll_once(&mut kept, &waker).is_ready());
        assert_eq!(timer.pending(), (0, 0));
    }

    #[tokio::test]
    async fn a_past_deadline_is_ready_at_once() {
        let timer = Timer::start();
        timer.sleep_until(Instant::now().checked_sub(Duration::from_millis(1)).unwrap()).await;
    }
}
