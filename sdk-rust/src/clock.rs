//! The SDK's clocks: the wall clock for timestamps, the monotonic clock for durations, and the
//! cycle counter for the timestamps of the hot-path events (ops, step starts and ends).
//!
//! Timestamps are `clock_gettime(CLOCK_REALTIME)` through the vDSO, read straight into
//! nanoseconds: about 25–30 ns here, a third of an op event. Where the kernel itself keeps time
//! with the CPU's cycle counter (its clocksource is `tsc`: invariant, synchronised across CPUs,
//! checked by the kernel's watchdog), an event instead carries a *stamp*: the counter (11–14 ns
//! to read) with [`TICKS`] set, and the writer thread turns it into unix nanoseconds
//! ([`WallClock`]) before the event goes anywhere.
//!
//! The writer does not calibrate the counter. After taking a round's events it reads the
//! counter and the wall clock together (at most every 20 µs); a stamp between two samples is
//! placed by linear interpolation between them, one read since the latest sample goes on from
//! it at the slope of two samples at least a millisecond apart. The result is exact up to the
//! wall clock's own read jitter, stays in the order of the counter (the samples are kept
//! monotonic), and follows NTP slewing and steps as the wall clock does. An earlier design anchored a calibrated counter and re-anchored it now and then:
//! each re-anchoring stepped the time by the slew rate times the interval, so events
//! microseconds apart could come out in the wrong order, and the writer merges threads by time.
//!
//! Durations (a timed op) come from `CLOCK_MONOTONIC`, also through the vDSO. A calibrated cycle
//! counter (quanta) was used for a while and taken out: its calibration (up to 200 ms on a busy
//! machine) runs once, behind a lazily initialised global, so a process that forked while the
//! writer thread was calibrating left the child a global that never finishes initialising, and
//! the child's first timed op, and its writer, waited on it forever. Nothing here blocks: whether
//! the counter is used is decided by a racy, idempotent read of one sysfs file.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};

/// Set in a timestamp that holds cycle-counter ticks rather than unix nanoseconds (unix
/// nanoseconds reach it in the year 2262). Only the SDK's own stamps set it; the writer clears it.
pub(crate) const TICKS: u64 = 1 << 63;

/// `clock`, read through the vDSO, in nanoseconds (0 before its epoch).
#[inline]
fn read(clock: rustix::time::ClockId) -> u64 {
    let now = rustix::time::clock_gettime(clock);
    u64::try_from(now.tv_sec).map_or(0, |secs| {
        secs.saturating_mul(1_000_000_000)
            .saturating_add(now.tv_nsec as u64)
    })
}

/// Monotonic nanoseconds (since boot): for durations.
#[inline]
pub(crate) fn ticks() -> u64 {
    read(rustix::time::ClockId::Monotonic)
}

/// Now, in unix nanoseconds (0 before the epoch).
#[inline]
pub(crate) fn now_nanos() -> u64 {
    read(rustix::time::ClockId::Realtime)
}

/// Now, for an event's timestamp: a cycle-counter stamp (with [`TICKS`]) where the counter is
/// the kernel's clocksource, else unix nanoseconds. Only for events that go through a client's
/// writer, which converts stamps.
#[inline]
pub(crate) fn stamp() -> u64 {
    if counter_is_clocksource() {
        counter() | TICKS
    } else {
        now_nanos()
    }
}

/// 0: not looked at yet, 1: the counter is the kernel's clocksource, 2: it is not.
static COUNTER: AtomicU8 = AtomicU8::new(0);

/// Whether stamps use the cycle counter (`FLOWSCOPE_CLOCK=wall` turns it off).
#[inline]
pub(crate) fn counter_is_clocksource() -> bool {
    match COUNTER.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => look_at_clocksource(),
    }
}

#[cold]
fn look_at_clocksource() -> bool {
    let usable = cfg!(target_arch = "x86_64")
        && std::env::var_os("FLOWSCOPE_CLOCK").is_none_or(|v| v != "wall")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|source| source.trim() == "tsc");
    COUNTER.store(if usable { 1 } else { 2 }, Ordering::Relaxed);
    usable
}

/// The cycle counter (0 where there is none; never used there).
#[inline]
#[allow(unsafe_code)]
fn counter() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` exists on every x86_64 CPU and only reads the counter.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// The counter, read only after every earlier load has completed (so after the events the
/// writer has just taken were seen).
#[inline]
#[allow(unsafe_code)]
fn counter_after_loads() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `lfence` needs SSE2, which every x86_64 CPU has.
    unsafe {
        core::arch::x86_64::_mm_lfence()
    };
    counter()
}

/// A (counter, unix nanoseconds) pair read together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    ticks: u64,
    nanos: u64,
}

/// A wall-clock read between two counter reads this close (ticks) is taken as it is; a wider
/// one (the thread was interrupted, or the first read of the vDSO faulted) is read again.
const NARROW: u64 = 512;
/// Reads per sample at most.
const TRIES: usize = 4;

impl Sample {
    /// The wall clock and the counter at the middle of the narrowest of a few reads.
    fn now() -> Self {
        let mut best = (u64::MAX, Sample { ticks: 0, nanos: 0 });
        for _ in 0..TRIES {
            let before = counter_after_loads();
            let nanos = now_nanos();
            let after = counter_after_loads();
            let window = after.wrapping_sub(before);
            if window < best.0 {
                let ticks = before + window / 2;
                best = (window, Sample { ticks, nanos });
            }
            if window <= NARROW {
                break;
            }
        }
        best.1
    }
}

/// Samples kept at least this far apart (ns): the history late stamps are placed in.
const SPACING: u64 = 1_000_000;
/// Samples kept (so at least 64 ms of history).
const KEPT: usize = 64;
/// A writer round takes a new sample only when the latest is at least this old (ns).
const REFRESH: u64 = 20_000;
/// A wall clock going back by more than this is a step (a new history starts), not jitter.
const STEP_BACK: u64 = 1_000_000;

/// Turns cycle-counter stamps into unix nanoseconds (the writer's; see the module doc).
#[derive(Debug)]
pub(crate) struct WallClock {
    /// Samples at least [`SPACING`] apart, oldest first, nanoseconds and ticks non-decreasing.
    kept: VecDeque<Sample>,
    /// The latest sample (not yet kept unless spaced enough).
    latest: Sample,
    /// Counter ticks in [`REFRESH`], by the two newest kept samples (once there are two).
    ticks_per_refresh: Option<u64>,
}

impl WallClock {
    /// Starts with a sample taken now: make it before any stamp it will convert is read.
    pub(crate) fn new() -> Self {
        Self::starting_at(Sample::now())
    }

    fn starting_at(first: Sample) -> Self {
        Self {
            kept: VecDeque::from([first]),
            latest: first,
            ticks_per_refresh: None,
        }
    }

    /// Takes a sample unless the latest is under [`REFRESH`] old (a busy writer's rounds take a
    /// few events each, and a sample costs three clock reads). A stamp read after the latest
    /// sample is placed by the kept slope, which over 20 µs is off by well under a nanosecond.
    pub(crate) fn refresh(&mut self) {
        if !counter_is_clocksource() {
            return;
        }
        if let Some(ticks_per_refresh) = self.ticks_per_refresh
            && counter().wrapping_sub(self.latest.ticks) < ticks_per_refresh
        {
            return;
        }
        self.add(Sample::now());
    }

    fn add(&mut self, mut sample: Sample) {
        let last = self.latest;
        if sample.nanos + STEP_BACK < last.nanos || sample.ticks < last.ticks {
            // The wall clock was set back (or the counter is not what it should be): start over.
            *self = Self::starting_at(sample);
            return;
        }
        // Read jitter must not make time run backwards.
        sample.nanos = sample.nanos.max(last.nanos);
        self.latest = sample;
        let newest_kept = self.kept.back().map_or(0, |s| s.nanos);
        if sample.nanos >= newest_kept + SPACING {
            if self.kept.len() == KEPT {
                self.kept.pop_front();
            }
            self.kept.push_back(sample);
            if let [.., a, b] = self.kept.make_contiguous() {
                let (ticks, nanos) = (b.ticks - a.ticks, b.nanos - a.nanos);
                self.ticks_per_refresh = (nanos > 0).then(|| {
                    u64::try_from(u128::from(ticks) * u128::from(REFRESH) / u128::from(nanos))
                        .unwrap_or(u64::MAX)
                });
            }
        }
    }

    /// `t` in unix nanoseconds: a stamp is converted, any other time is returned as it is.
    #[inline]
    pub(crate) fn resolve(&self, t: u64) -> u64 {
        if t & TICKS == 0 {
            return t;
        }
        self.at(t & !TICKS)
    }

    /// The unix time at counter value `ticks`.
    fn at(&self, ticks: u64) -> u64 {
        let newest_kept = *self.kept.back().expect("a sample is always kept");
        if ticks > self.latest.ticks {
            // Past the latest sample (read since it, or a counter a little ahead on another
            // CPU): on from the latest, at the slope of the newest pair at least `SPACING` apart.
            let n = self.kept.len();
            let (a, b) = if n >= 2 {
                (self.kept[n - 2], newest_kept)
            } else {
                (newest_kept, self.latest)
            };
            return on_slope(self.latest, a, b, ticks);
        }
        // Nearly every other stamp falls between the newest kept sample and the latest.
        let (a, b) = if ticks >= newest_kept.ticks {
            (newest_kept, self.latest)
        } else {
            // A stamp read before the newest kept sample (its thread was held up): the kept pair
            // around it, or the oldest pair's slope before them all.
            let after = self.kept.partition_point(|s| s.ticks <= ticks).max(1);
            let before = after - 1;
            match self.kept.get(after) {
                Some(&b) => (self.kept[before], b),
                None => (self.kept[before], self.latest),
            }
        };
        interpolate(a, b, ticks)
    }
}

/// The unix time at `ticks` on the line through `a` and `b` (`a` earlier), never before the
/// epoch; `a`'s time when they coincide.
fn interpolate(a: Sample, b: Sample, ticks: u64) -> u64 {
    on_slope(a, a, b, ticks)
}

/// The unix time at `ticks` on the line through `at` with the slope of `a` to `b` (`a`
/// earlier), never before the epoch; `at`'s time when `a` and `b` coincide.
fn on_slope(at: Sample, a: Sample, b: Sample, ticks: u64) -> u64 {
    let span_ticks = b.ticks.saturating_sub(a.ticks);
    if span_ticks == 0 {
        return at.nanos;
    }
    let span_nanos = i128::from(b.nanos - a.nanos);
    let offset = i128::from(ticks) - i128::from(at.ticks);
    let nanos = i128::from(at.nanos) + offset * span_nanos / i128::from(span_ticks);
    u64::try_from(nanos.clamp(0, i128::from(!TICKS))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn now_is_the_system_wall_clock() {
        let before = crate::system_time_nanos(std::time::SystemTime::now());
        let ours = now_nanos();
        let after = crate::system_time_nanos(std::time::SystemTime::now());
        assert!(
            before <= ours && ours <= after,
            "{before} <= {ours} <= {after}"
        );
    }

    fn sample(ticks: u64, nanos: u64) -> Sample {
        Sample { ticks, nanos }
    }

    #[test]
    fn a_stamp_lands_between_the_samples_around_it() {
        // 2 ticks per nanosecond.
        let mut clock = WallClock::starting_at(sample(1_000, 10_000));
        clock.add(sample(3_001_000, 1_510_000));
        assert_eq!(clock.resolve(2_001_000 | TICKS), 1_010_000);
        // Unix times pass through.
        assert_eq!(clock.resolve(42), 42);
        // A later, spaced sample is kept; a stamp before it is placed on the earlier pair.
        clock.add(sample(5_001_000, 2_510_000));
        assert_eq!(clock.resolve(2_001_000 | TICKS), 1_010_000);
        assert_eq!(clock.resolve(4_001_000 | TICKS), 2_010_000);
        // Before every sample: the oldest pair's slope, never before the epoch.
        assert_eq!(clock.resolve(1 | TICKS), 10_000 - 499);
        let mut early = WallClock::starting_at(sample(1_000, 100));
        early.add(sample(3_001_000, 1_500_100));
        assert_eq!(early.resolve(TICKS), 0);
        // Just past the latest sample: the last slope.
        assert_eq!(clock.resolve(5_001_010 | TICKS), 2_510_005);
    }

    #[test]
    fn conversion_keeps_the_counter_order_while_the_wall_clock_jitters_and_slews() {
        // The wall clock runs 1 % slow for a while, reads jitter back by up to 300 ns, and the
        // samples come at uneven intervals: converted stamps must never go back.
        let mut clock = WallClock::starting_at(sample(0, 1_000_000_000));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut ticks = 0u64;
        let mut stamps = Vec::new();
        for round in 0..2_000u64 {
            // Stamps read during the round, then the round's sample.
            for _ in 0..5 {
                ticks += 1 + next() % 4_000;
                stamps.push(ticks);
            }
            ticks += 1 + next() % 1_000;
            let rate = if (500..1_200).contains(&round) {
                0.99
            } else {
                1.0
            };
            let ideal = 1_000_000_000 + (ticks as f64 * rate * 0.5) as u64;
            let jitter = next() % 300;
            clock.add(sample(ticks, ideal - jitter));
            // Convert what this round took, and once more a few held-up stamps.
            let mut last = 0;
            for &s in stamps.iter().rev().take(5).rev() {
                let t = clock.resolve(s | TICKS);
                assert!(t >= last, "round {round}: {t} after {last}");
                assert!(t.abs_diff(ideal) < 20_000_000, "{t} vs {ideal}");
                last = t;
            }
        }
        let resolved: Vec<u64> = stamps.iter().map(|&s| clock.resolve(s | TICKS)).collect();
        assert!(
            resolved.windows(2).all(|w| w[0] <= w[1]),
            "history out of order"
        );
    }

    #[test]
    fn a_wall_clock_set_back_starts_a_new_history() {
        let mut clock = WallClock::starting_at(sample(0, 5_000_000_000));
        clock.add(sample(2_000_000, 5_001_000_000));
        clock.add(sample(4_000_000, 1_000_000_000));
        assert_eq!(clock.kept.len(), 1);
        assert_eq!(clock.resolve(4_000_000 | TICKS), 1_000_000_000);
    }

    #[test]
    fn stamps_from_this_machine_convert_to_the_wall_clock() {
        if !counter_is_clocksource() {
            eprintln!("the cycle counter is not the clocksource here: stamps are unix time");
            assert_eq!(stamp() & TICKS, 0);
            return;
        }
        let mut clock = WallClock::new();
        let mut pairs = Vec::new();
        let read = || {
            let before = now_nanos();
            let stamp = stamp();
            let after = now_nanos();
            assert_ne!(stamp & TICKS, 0);
            (before, stamp, after)
        };
        for _ in 0..50 {
            pairs.push(read());
            std::thread::sleep(std::time::Duration::from_micros(300));
            clock.refresh();
        }
        // Rounds closer together than the refresh interval: most take no sample, and their
        // stamps are placed past the latest one, by the kept slope.
        let mut sampled = 0;
        for _ in 0..2_000 {
            pairs.push(read());
            let latest = clock.latest;
            clock.refresh();
            sampled += usize::from(clock.latest != latest);
        }
        assert!(sampled < 1_000, "{sampled} samples in 2000 rounds");
        let mut last = 0;
        for (before, stamp, after) in pairs {
            let t = clock.resolve(stamp);
            // Within the two wall-clock reads around it, give or take the sample's own jitter.
            assert!(
                t + 2_000 >= before && t <= after + 2_000,
                "{before} <= {t} <= {after}"
            );
            assert!(t >= last);
            last = t;
        }
    }
}
