//! Counters shared between the emitting threads and the writer thread.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::lane::Consumer;
use crate::wire::Event;

/// Traces whose drops are reported individually; more are counted in the total only.
const MAX_DROP_REPORTS: usize = 4096;

/// Keeps what it holds on a cache line of its own, so counters the emitting threads write do not
/// share one with counters the writer writes.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct OwnLine<T>(pub(crate) T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Counters, the lanes the writer drains, and the flush rendezvous.
#[derive(Default)]
pub(crate) struct Shared {
    /// Events accepted into the queue (counted just before their push).
    pub(crate) enqueued: OwnLine<AtomicU64>,
    /// Estimated bytes of the events in the queue (added on emit, removed as the writer takes them).
    pub(crate) queued_bytes: OwnLine<AtomicUsize>,
    /// Whether the writer is about to sleep or sleeping (an emit then wakes it).
    sleeping: OwnLine<AtomicBool>,
    /// The writer thread, for waking it.
    writer: OnceLock<Thread>,
    /// Lanes of threads new to this client, not yet taken over by the writer.
    new_lanes: Mutex<Vec<Consumer<Event>>>,
    /// Whether `new_lanes` holds any.
    lanes_added: AtomicBool,
    /// Every client handle is gone: the writer drains what is queued and stops.
    closed: AtomicBool,
    /// Events written to the socket.
    pub(crate) sent: AtomicU64,
    /// Events dropped (queue full, oversized, undeliverable at shutdown).
    pub(crate) dropped: AtomicU64,
    /// Reconnects after a lost connection.
    pub(crate) reconnects: AtomicU64,
    /// Whether the writer holds a live connection.
    pub(crate) connected: AtomicBool,
    /// Why the last connection attempt failed, when it was refused rather than absent.
    pub(crate) last_error: Mutex<Option<String>>,
    /// The agent's export sample ratio as f64 bits; 0 means "not told yet" (treated as 1.0).
    sample_ratio_bits: AtomicU64,
    /// Events in the queue, counted only when an event bound is configured.
    pub(crate) queued_events: AtomicUsize,
    /// Events from threads that cannot use a lane (one whose thread-locals are being torn down).
    spill: Mutex<VecDeque<Event>>,
    /// Whether `spill` holds events.
    spilling: AtomicBool,
    /// Events dropped per trace since the writer last reported them to the agent.
    drops: Mutex<HashMap<crate::wire::TraceId, u64>>,
    /// Whether `drops` has anything to report.
    drops_pending: AtomicBool,
    /// Accepted events the writer is done with (sent or dropped).
    processed: AtomicU64,
    progress: Mutex<()>,
    progressed: Condvar,
}

impl Shared {
    /// The agent's export sample ratio (1.0 until a handshake said otherwise).
    pub(crate) fn sample_ratio(&self) -> f64 {
        match self.sample_ratio_bits.load(Ordering::Relaxed) {
            0 => 1.0,
            bits => f64::from_bits(bits),
        }
    }

    pub(crate) fn set_sample_ratio(&self, ratio: f64) {
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            1.0
        };
        // 0.0 has all-zero bits, which mean "unknown": store the smallest positive instead.
        let bits = if ratio == 0.0 {
            f64::MIN_POSITIVE.to_bits()
        } else {
            ratio.to_bits()
        };
        self.sample_ratio_bits.store(bits, Ordering::Relaxed);
    }

    /// Records why the writer will not connect; the first time a reason appears it is also
    /// printed to stderr (the app has no other way to hear of it).
    pub(crate) fn set_error(&self, message: Option<String>) {
        let mut last = self.last_error.lock();
        if let Some(m) = &message
            && last.as_ref() != Some(m)
        {
            eprintln!("flowscope: {m}");
        }
        *last = message;
    }

    /// Registers the writer thread (called by it first thing).
    pub(crate) fn set_writer(&self, thread: Thread) {
        let _ = self.writer.set(thread);
    }

    /// Hands the lane of a thread new to this client to the writer.
    pub(crate) fn add_lane(&self, lane: Consumer<Event>) {
        self.new_lanes.lock().push(lane);
        self.lanes_added.store(true, Ordering::Release);
        self.unpark_writer();
    }

    /// Moves lanes added since the last call into `lanes` (the writer's list).
    pub(crate) fn adopt_lanes(&self, lanes: &mut Vec<Consumer<Event>>) {
        // Read first: the writer calls this every round, and a write would take the cache line
        // from emitting threads reading the fields beside it.
        if self.lanes_added.load(Ordering::Acquire)
            && self.lanes_added.swap(false, Ordering::AcqRel)
        {
            lanes.append(&mut self.new_lanes.lock());
        }
    }

    /// Wakes the writer if it sleeps; called after an event's `enqueued` count and push. Both
    /// sides use sequentially consistent operations: the writer sets `sleeping`, then reads
    /// `enqueued`; an emit adds to `enqueued`, then reads `sleeping`. So either the writer sees the
    /// new count and does not sleep (it looks again until the push shows), or the emit sees
    /// `sleeping` and wakes it.
    #[inline]
    pub(crate) fn wake_writer(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake_writer_now();
        }
    }

    #[cold]
    fn wake_writer_now(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.unpark_writer();
        }
    }

    fn unpark_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// Puts the writer to sleep for up to `timeout` unless events arrived after the
    /// `taken` it has seen so far, lanes were added, or the client closed.
    pub(crate) fn writer_sleep(&self, taken: u64, timeout: Duration) {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.enqueued.load(Ordering::SeqCst) == taken
            && !self.lanes_added.load(Ordering::Acquire)
            && !self.is_closed()
        {
            std::thread::park_timeout(timeout);
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Tells the writer every client handle is gone.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.unpark_writer();
    }

    /// Whether every client handle is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Events accepted and not yet sent or dropped by the writer.
    pub(crate) fn unprocessed(&self) -> u64 {
        self.enqueued
            .load(Ordering::Acquire)
            .saturating_sub(self.processed.load(Ordering::Acquire))
    }

    /// Whether the spill holds events.
    #[inline]
    pub(crate) fn spilling(&self) -> bool {
        self.spilling.load(Ordering::Acquire)
    }

    /// Appends an event that could not go into its thread's lane.
    pub(crate) fn spill(&self, event: Event) {
        let mut spill = self.spill.lock();
        spill.push_back(event);
        self.spilling.store(true, Ordering::Release);
    }

    /// Moves up to `max` spilled events into `out` (oldest first); clears the flag when the
    /// spill is empty.
    pub(crate) fn unspill(&self, out: &mut Vec<Event>, max: usize) {
        let mut spill = self.spill.lock();
        let n = max.min(spill.len());
        out.extend(spill.drain(..n));
        if spill.is_empty() {
            self.spilling.store(false, Ordering::Release);
        }
    }

    /// Counts one dropped event of `trace` (for the agent's `incomplete` mark). Traces past a bound
    /// are counted only in the total.
    pub(crate) fn record_drop(&self, trace: Option<crate::wire::TraceId>, events: u64) {
        self.dropped.fetch_add(events, Ordering::Relaxed);
        let Some(trace) = trace else { return };
        let mut drops = self.drops.lock();
        if drops.len() < MAX_DROP_REPORTS || drops.contains_key(&trace) {
            *drops.entry(trace).or_default() += events;
            self.drops_pending.store(true, Ordering::Release);
        }
    }

    /// The per-trace drop counts to report, emptied.
    pub(crate) fn take_drops(&self) -> Vec<(crate::wire::TraceId, u64)> {
        if !self.drops_pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        self.drops.lock().drain().collect()
    }

    /// Puts back drop counts the writer could not report yet.
    pub(crate) fn restore_drops(&self, drops: Vec<(crate::wire::TraceId, u64)>) {
        if drops.is_empty() {
            return;
        }
        let mut map = self.drops.lock();
        for (trace, n) in drops {
            *map.entry(trace).or_default() += n;
        }
        self.drops_pending.store(true, Ordering::Release);
    }

    /// Waits until `fits()` holds or `deadline` passes (the writer wakes waiters as it sends).
    pub(crate) fn wait_for_room(&self, deadline: Instant, fits: impl Fn() -> bool) -> bool {
        let mut guard = self.progress.lock();
        loop {
            if fits() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Bounded steps: a wake-up can be missed between `fits` and the wait.
            let step = (deadline - now).min(Duration::from_millis(5));
            self.progressed.wait_for(&mut guard, step);
        }
    }

    pub(crate) fn mark_processed(&self, events: u64) {
        self.processed.fetch_add(events, Ordering::Release);
        let _guard = self.progress.lock();
        self.progressed.notify_all();
    }

    /// Waits until every event accepted before the call is sent or dropped.
    pub(crate) fn wait_processed(&self, timeout: Duration) -> bool {
        let target = self.enqueued.load(Ordering::Acquire);
        let deadline = Instant::now() + timeout;
        let mut guard = self.progress.lock();
        loop {
            if self.processed.load(Ordering::Acquire) >= target {
                return true;
            }
            if self.progressed.wait_until(&mut guard, deadline).timed_out() {
                return self.processed.load(Ordering::Acquire) >= target;
            }
        }
    }
}
