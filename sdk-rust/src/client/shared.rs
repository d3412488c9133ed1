//! Counters shared between the emitting threads and the writer thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Counters and the flush rendezvous.
#[derive(Default)]
pub(crate) struct Shared {
    /// Events accepted into the queue.
    pub(crate) enqueued: AtomicU64,
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
