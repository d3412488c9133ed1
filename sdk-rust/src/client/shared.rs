//! Counters shared between the emitting threads and the writer thread.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::lane::{Consumer, Count};
use crate::wire::Event;

/// Whether the writer can make emitting threads' stores visible with one system call
/// (`membarrier`), so an emit needs no fence of its own before it checks `sleeping`. Registered
/// once per process.
pub(crate) fn asymmetric_fences() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            use rustix::thread::{MembarrierCommand, membarrier};
            membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    })
}

/// The writer's side of the sleep handshake: after this, every store an emitting thread made
/// before its last check of `sleeping` is visible here. `false` when that could not be ensured.
fn heavy_fence(asymmetric: bool) -> bool {
    if asymmetric {
        #[cfg(target_os = "linux")]
        {
            use rustix::thread::{MembarrierCommand, membarrier};
            // A forked child may need to register again; its threads' stores are covered once
            // the barrier succeeds.
            return membarrier(MembarrierCommand::PrivateExpedited).is_ok()
                || (membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
                    && membarrier(MembarrierCommand::PrivateExpedited).is_ok());
        }
    }
    std::sync::atomic::fence(Ordering::SeqCst);
    true
}

/// The push counts of every lane, and the total of the lanes the writer retired.
#[derive(Default)]
struct LaneBook {
    live: Vec<Count<Event>>,
    retired: u64,
}

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
    /// Estimated bytes of the events in the queue (added on emit, removed as the writer takes them).
    pub(crate) queued_bytes: OwnLine<AtomicUsize>,
    /// Whether the writer is about to sleep or sleeping (an emit then wakes it).
    sleeping: OwnLine<AtomicBool>,
    /// The writer thread, for waking it.
    writer: OnceLock<Thread>,
    /// Lanes of threads new to this client, not yet taken over by the writer.
    new_lanes: Mutex<Vec<Consumer<Event>>>,
    /// Every lane's push count, for the number of events accepted.
    book: Mutex<LaneBook>,
    /// Events put in the spill, ever.
    spilled_total: AtomicU64,
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
    pub(crate) fn add_lane(&self, lane: Consumer<Event>, count: Count<Event>) {
        self.book.lock().live.push(count);
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

    /// Forgets a lane whose thread is gone and whose events were all taken: its count joins the
    /// retired total and the budget its thread reserved and did not use is given back.
    pub(crate) fn retire_lane(&self, lane: &Consumer<Event>) {
        let mut book = self.book.lock();
        if let Some(at) = book.live.iter().position(|count| count.counts(lane)) {
            book.live.swap_remove(at);
            book.retired += lane.popped();
        }
        drop(book);
        self.queued_bytes
            .fetch_sub(lane.credit_left(), Ordering::Relaxed);
    }

    /// Bytes of the events waiting: the budget in use, less what threads reserved ahead.
    pub(crate) fn waiting_bytes(&self) -> usize {
        let reserved: usize = self.book.lock().live.iter().map(Count::credit).sum();
        self.queued_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(reserved)
    }

    /// Events accepted so far (pushed into a lane or the spill).
    pub(crate) fn accepted(&self) -> u64 {
        let book = self.book.lock();
        let pushed: u64 = book.live.iter().map(Count::pushed).sum();
        book.retired + pushed + self.spilled_total.load(Ordering::Acquire)
    }

    /// Wakes the writer if it sleeps; called after each push. The writer sets `sleeping`, then
    /// fences, then looks at every lane; an emit pushes, fences, then reads `sleeping`. So either
    /// the writer sees the event, or the emit sees `sleeping` and wakes it. With `asymmetric`
    /// the writer's fence (`membarrier`) covers both sides and the emit's is only the compiler's.
    #[inline]
    pub(crate) fn wake_writer(&self, asymmetric: bool) {
        if asymmetric {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        if self.sleeping.load(Ordering::Relaxed) {
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

    /// Puts the writer to sleep for up to `timeout` unless an event waits in `lanes` or the
    /// spill, lanes were added, or the client closed.
    pub(crate) fn writer_sleep(
        &self,
        lanes: &[Consumer<Event>],
        asymmetric: bool,
        timeout: Duration,
    ) {
        self.sleeping.store(true, Ordering::SeqCst);
        // Without the fence's guarantee an event could wait unseen: sleep briefly instead.
        let timeout = if heavy_fence(asymmetric) {
            timeout
        } else {
            timeout.min(Duration::from_millis(1))
        };
        let waiting = lanes.iter().any(Consumer::has_events)
            || self.spilling()
            || self.lanes_added.load(Ordering::Acquire)
            || self.is_closed();
        if !waiting {
            std::thread::park_timeout(timeout);
        }
        self.sleeping.store(false, Ordering::Relaxed);
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
        self.accepted()
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
        self.spilled_total.fetch_add(1, Ordering::Release);
        self.spilling.store(true, Ordering::Release);
        drop(spill);
        self.wake_writer(false);
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
        let target = self.accepted();
        // A napping writer would look again within a millisecond; a flush need not wait for it.
        if self.processed.load(Ordering::Acquire) < target {
            self.unpark_writer();
        }
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
