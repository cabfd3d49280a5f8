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

mod heap;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use heap::{Fired, Heap, Key};

/// The longest we fire early: a bound on the learned wake-up latency, so one stall cannot teach
/// the timer to fire absurdly early.
const MAX_EARLY_NS: i64 = 200_000;
/// The largest lateness one sleep may report to the learning rule (see `learn_wake_latency`).
const LEARN_CLAMP_NS: i64 = 50_000;
/// Before issue 29: the spinning margin kept on top of the mean park overshoot.
const SPIN_MARGIN_NS: u64 = 5_000;
/// The longest stretch spun before a deadline (and the longest a cold wake-up is fired ahead),
/// however wide the error has been; samples are clamped to it before they are learned, so a
/// host that takes the CPU away for milliseconds does not teach the timer to spin for them.
const MAX_SPIN_NS: u64 = 100_000;
/// A wake-up is cold when the timer has woken nobody for this long: the runtime's threads are
/// then likely parked, and on a VM their CPU halted, so reaching the task takes a host round trip.
const COLD_GAP: Duration = Duration::from_micros(200);

struct Inner {
    heap: Mutex<Heap>,
    thread: Mutex<Option<Thread>>,
    stop: AtomicBool,
    /// How early (ns) warm deadlines are fired: the learned wake-to-poll latency.
    early_ns: AtomicI64,
    /// The wake-to-poll latency of cold wake-ups (ns): its running mean and mean deviation.
    cold: Spread,
    /// Set when a registration became the earliest deadline, so a spinning thread re-reads the heap.
    dirty: AtomicBool,
    tuning: Tuning,
}

/// A running mean and mean absolute deviation (ns), as TCP estimates a round trip: `mean + 4·dev`
/// covers nearly all of a latency's samples while following a change within a few dozen.
#[derive(Default)]
struct Spread {
    mean: AtomicU64,
    dev: AtomicU64,
}

impl Spread {
    fn learn(&self, sample: u64) {
        let (m, d) = (self.mean.load(AtomicOrdering::Relaxed), self.dev.load(AtomicOrdering::Relaxed));
        let m = m.cast_signed();
        let err = sample.min(MAX_SPIN_NS).cast_signed() - m;
        self.mean.store((m + err / 8).max(0).cast_unsigned(), AtomicOrdering::Relaxed);
        let d = d.cast_signed();
        self.dev.store((d + (err.abs() - d) / 4).max(0).cast_unsigned(), AtomicOrdering::Relaxed);
    }

    /// `mean + 4·dev`, at most `cap` ns.
    fn bound(&self, cap: u64) -> u64 {
        (self.mean.load(AtomicOrdering::Relaxed) + 4 * self.dev.load(AtomicOrdering::Relaxed)).min(cap)
    }
}

/// How the timer thread waits. [`Tuning::default`] is what the engine uses; the other choices
/// are candidates against the tail that grows with the sleep's length (issue 29), kept so the
/// engine bench measures what each is worth side by side in one run. They are off until a run on
/// a quiet machine shows they earn their CPU.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Lower the thread's timer slack to 1 ns (the kernel's default adds up to 50 µs to a park).
    pub low_slack: bool,
    /// Spin before a deadline for the park's error as `mean + 4·dev` (else: mean + 5 µs).
    pub spin_tail: bool,
    /// Fire a cold wake-up (see [`COLD_GAP`]) early by the cold latency's `mean + 4·dev`, the
    /// woken sleep spinning what is left.
    pub prewake: bool,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning { low_slack: true, spin_tail: false, prewake: false }
    }
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
        Timer::start_tuned(Tuning::default())
    }

    /// Starts the timer thread with `tuning` (for the bench's comparisons).
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    #[doc(hidden)]
    #[must_use]
    pub fn start_tuned(tuning: Tuning) -> Timer {
        let inner = Arc::new(Inner {
            heap: Mutex::new(Heap::default()),
            thread: Mutex::new(None),
            stop: AtomicBool::new(false),
            early_ns: AtomicI64::new(10_000),
            cold: Spread::default(),
            dirty: AtomicBool::new(false),
            tuning,
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
        if let Some(key) = self.key {
            let mut heap = lock(&self.timer.heap);
            // Fired cold, the timer woke it ahead on purpose: it spins what is left (at most the
            // cold latency's bound, MAX_SPIN_NS). Otherwise the early allowance (the learned
            // warm latency) applies.
            let cold = heap.fired(key).filter(|f| f.cold);
            let early = if cold.is_some() {
                Duration::from_nanos(MAX_SPIN_NS)
            } else {
                Duration::from_nanos(self.timer.early_ns.load(AtomicOrdering::Relaxed).unsigned_abs())
            };
            if now + early >= self.deadline {
                heap.release(key);
                drop(heap);
                self.key = None;
                match cold {
                    Some(f) => self.timer.cold.learn(u64::try_from((now - f.at).as_nanos()).unwrap_or(u64::MAX)),
                    None => learn_wake_latency(self.timer, now, self.deadline),
                }
                if self.strict || cold.is_some() {
                    // Warm and strict: at most the learned early offset, typically ~10 µs.
                    while Instant::now() < self.deadline {
                        std::hint::spin_loop();
                    }
                }
                return Poll::Ready(());
            }
        } else if now >= self.deadline {
            // Polled for the first time at or past its deadline (one that is merely polled
            // before its deadline must wait for it: otherwise a sleep shorter than the allowance
            // would end at once and never teach the timer that it fires too early).
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
            s.fired = None;
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

/// The park's error (how much later than asked a park returns, ns): a running mean, and for
/// [`Tuning::spin_tail`] its deviation. Only the timer thread sees it.
struct Overshoot {
    mean: u64,
    dev: u64,
}

impl Overshoot {
    fn learn(&mut self, over: u64) {
        let err = over.min(MAX_SPIN_NS).cast_signed() - self.mean.cast_signed();
        self.mean = (self.mean.cast_signed() + err / 8).max(0).cast_unsigned();
        self.dev = (self.dev.cast_signed() + (err.abs() - self.dev.cast_signed()) / 4).max(0).cast_unsigned();
    }

    /// How long before a deadline to stop parking and spin.
    fn spin(&self, tail: bool) -> Duration {
        Duration::from_nanos(if tail {
            (self.mean + 4 * self.dev).min(MAX_SPIN_NS)
        } else {
            self.mean + SPIN_MARGIN_NS
        })
    }
}

/// How early to fire a deadline: by the cold latency's bound if the warm firing time would come
/// [`COLD_GAP`] after the last wake-up, else by the learned warm latency. `(early, cold)`.
fn early_for(t: &Inner, deadline: Instant, last_wake: Instant) -> (Duration, bool) {
    let warm = Duration::from_nanos(t.early_ns.load(AtomicOrdering::Relaxed).unsigned_abs());
    if t.tuning.prewake && deadline.checked_sub(warm).is_some_and(|at| at > last_wake + COLD_GAP) {
        let cold = Duration::from_nanos(t.cold.bound(MAX_SPIN_NS));
        return (cold.max(warm), true);
    }
    (warm, false)
}

fn run(t: &Inner) {
    #[cfg(target_os = "linux")]
    if t.tuning.low_slack {
        let _ = nix::sys::prctl::set_timerslack(1);
    }
    let mut due: Vec<Waker> = Vec::with_capacity(256);
    let mut overshoot = Overshoot { mean: 20_000, dev: 0 };
    let mut last_wake = Instant::now();
    while !t.stop.load(AtomicOrdering::Acquire) {
        let next = {
            let mut heap = lock(&t.heap);
            t.dirty.store(false, AtomicOrdering::Release);
            let now = Instant::now();
            let since = last_wake;
            // Dead entries on top are dropped whatever their deadline: they wake nobody, and the
            // next park is timed by the earliest live sleep.
            while let Some(e) = heap.entries.peek() {
                if !heap.live(e) {
                    heap.entries.pop();
                    heap.dead = heap.dead.saturating_sub(1);
                    continue;
                }
                let (early, cold) = early_for(t, e.deadline, since);
                if e.deadline > now + early {
                    break;
                }
                due.extend(heap.fire(Fired { at: now, cold }));
                last_wake = now;
            }
            heap.entries
                .peek()
                .map(|e| e.deadline.checked_sub(early_for(t, e.deadline, last_wake).0).unwrap_or(e.deadline))
        };
        for w in due.drain(..) {
            w.wake();
        }
        let Some(fire_at) = next else {
            thread::park();
            continue;
        };
        let now = Instant::now();
        if fire_at <= now {
            continue;
        }
        let spin = overshoot.spin(t.tuning.spin_tail);
        let left = fire_at - now;
        if left > spin {
            let want = left.checked_sub(spin).unwrap();
            let parked = Instant::now();
            thread::park_timeout(want);
            let slept = parked.elapsed();
            if slept >= want && !t.dirty.load(AtomicOrdering::Acquire) {
                overshoot.learn(u64::try_from(slept.saturating_sub(want).as_nanos()).unwrap_or(u64::MAX));
            }
            continue;
        }
        while Instant::now() < fire_at && !t.dirty.load(AtomicOrdering::Acquire) {
            std::hint::spin_loop();
        }
    }
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

    /// With [`Tuning::prewake`], sleeps one after another are each a cold wake-up (the last
    /// wake-up was a whole sleep ago), fired ahead on purpose: each must still end at or after its
    /// deadline, spinning what is left, though it is not strict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_wake_up_fired_ahead_never_ends_early() {
        let timer = Timer::start_tuned(Tuning { prewake: true, ..Tuning::default() });
        for _ in 0..200 {
            let deadline = Instant::now() + Duration::from_micros(400);
            timer.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        }
        let learned = timer.inner.cold.mean.load(AtomicOrdering::Relaxed);
        assert!(learned > 0, "the cold wake-ups taught the timer their latency");
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
