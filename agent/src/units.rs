//! Time units of the API: nanoseconds in, milliseconds out.

/// Nanoseconds → whole milliseconds, rounded.
pub fn ms(ns: u64) -> u64 {
    ns.saturating_add(500_000) / 1_000_000
}

/// Nanoseconds → milliseconds with microsecond precision.
pub fn ms_f(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// Unix ns → unix ms.
pub fn unix_ms(ns: u64) -> u64 {
    ns / 1_000_000
}
