//! The SDK's clocks: the wall clock for timestamps, the monotonic clock for durations.
//!
//! Timestamps are `clock_gettime(CLOCK_REALTIME)` through the vDSO, read straight into
//! nanoseconds. A cycle counter anchored to the wall clock costs a third of that, but it has to be
//! re-anchored, and while NTP slews the wall clock (chrony slews up to 8 %) each re-anchoring
//! steps the time by up to that rate times the interval: two threads' events a few microseconds
//! apart could then come out in the wrong order, and the writer merges threads by emit time.
//!
//! Durations (a timed op) come from `CLOCK_MONOTONIC`, also through the vDSO. A calibrated cycle
//! counter (quanta) was used for a while and taken out: its calibration (up to 200 ms on a busy
//! machine) runs once, behind a lazily initialised global, so a process that forked while the
//! writer thread was calibrating left the child a global that never finishes initialising, and
//! the child's first timed op, and its writer, waited on it forever.

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
}
