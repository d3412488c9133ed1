//! The SDK's clock: wall-clock unix nanoseconds read from the CPU's cycle counter.
//!
//! Every event carries a timestamp, and `clock_gettime(CLOCK_REALTIME)` through the vDSO costs
//! about as much as the rest of queueing an op. [`quanta`] reads the calibrated, invariant TSC
//! where the CPU has one (the OS monotonic clock otherwise); this module anchors it to the wall
//! clock and anchors it again whenever [`RESYNC_NS`] of its own time has passed, so a step or slew
//! of the wall clock (NTP, a VM resuming) shows within that, and the drift between the two clocks
//! never adds up past it. A re-anchoring can move the wall time by that drift (microseconds);
//! durations use [`ticks`], which is never re-anchored.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest run of the counter between two readings of the wall clock (10 ms).
pub(crate) const RESYNC_NS: u64 = 10_000_000;

struct Anchored {
    clock: quanta::Clock,
    /// The counter when the clock was made: ticks count from here.
    base: u64,
    /// Wall-clock nanoseconds minus ticks at the last anchoring (wrapping).
    offset: AtomicU64,
    /// The tick after which the next reading anchors again.
    next_sync: AtomicU64,
}

impl Anchored {
    fn new() -> Self {
        let clock = quanta::Clock::new();
        let base = clock.raw();
        let anchored = Self {
            clock,
            base,
            offset: AtomicU64::new(0),
            next_sync: AtomicU64::new(0),
        };
        anchored.sync();
        anchored
    }

    #[inline]
    fn ticks(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw())
    }

    /// Reads the wall clock and the counter together; returns the wall time.
    #[cold]
    fn sync(&self) -> u64 {
        let wall = realtime_nanos();
        let ticks = self.ticks();
        self.offset
            .store(wall.wrapping_sub(ticks), Ordering::Relaxed);
        self.next_sync
            .store(ticks.saturating_add(RESYNC_NS), Ordering::Relaxed);
        wall
    }

    #[inline]
    fn wall_at(&self, ticks: u64) -> u64 {
        if ticks >= self.next_sync.load(Ordering::Relaxed) {
            return self.sync();
        }
        ticks.wrapping_add(self.offset.load(Ordering::Relaxed))
    }
}

fn anchored() -> &'static Anchored {
    static CLOCK: OnceLock<Anchored> = OnceLock::new();
    CLOCK.get_or_init(Anchored::new)
}

/// Calibrates the counter now (well under a millisecond, at most 200 ms on a busy machine)
/// rather than on the first event.
pub(crate) fn warm_up() {
    anchored();
}

/// Monotonic nanoseconds since the clock was made: for durations.
#[inline]
pub(crate) fn ticks() -> u64 {
    anchored().ticks()
}

/// The wall time of a [`ticks`] reading (taken just before), in unix nanoseconds.
#[inline]
pub(crate) fn wall_at(ticks: u64) -> u64 {
    anchored().wall_at(ticks)
}

/// Now, in unix nanoseconds.
#[inline]
pub(crate) fn now_nanos() -> u64 {
    let clock = anchored();
    clock.wall_at(clock.ticks())
}

/// `clock_gettime(CLOCK_REALTIME)`, in nanoseconds (0 before the epoch).
pub(crate) fn realtime_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    u64::try_from(now.tv_sec).map_or(0, |secs| {
        secs.saturating_mul(1_000_000_000)
            .saturating_add(now.tv_nsec as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_system_clock() {
        for _ in 0..50 {
            let before = realtime_nanos();
            let ours = now_nanos();
            let after = realtime_nanos();
            // Anchored at most RESYNC_NS ago: the counter's drift over that is far below 1 ms.
            assert!(
                ours + 1_000_000 >= before && ours <= after + 1_000_000,
                "{before} <= {ours} <= {after} (within 1 ms)"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn ticks_are_monotonic_and_measure_time() {
        let start = ticks();
        let wall = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let measured = ticks() - start;
        let real = wall.elapsed().as_nanos() as u64;
        let error = measured.abs_diff(real);
        assert!(
            error < 2_000_000,
            "ticks measured {measured} ns, Instant {real} ns"
        );
        let mut last = ticks();
        for _ in 0..10_000 {
            let now = ticks();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn anchors_again_after_resync_interval() {
        let clock = anchored();
        let first = clock.next_sync.load(Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_nanos(RESYNC_NS * 2));
        let _ = now_nanos();
        assert!(clock.next_sync.load(Ordering::Relaxed) > first);
    }
}
