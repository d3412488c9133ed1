//! # flowscope
//!
//! The flowscope client core. With the default `client` feature: a non-blocking, bounded event
//! queue drained by a background writer that batches frames to the agent's Unix socket and
//! reconnects when the agent restarts, plus the instrumentation API (traces, steps, operations,
//! logs, LLM calls…). With only the `wire` feature: the protocol types and codec the agent uses.
//!
//! ```no_run
//! use flowscope::{Config, EntryType};
//!
//! flowscope::init(Config::from_env("checkout"));
//! let trace = flowscope::trace("user-registration").entry(EntryType::Api, "validate-user").start();
//! {
//!     let _step = flowscope::step("validate-user").start();
//!     let email = flowscope::state_get("user.email").time(|| "a@b.c");
//!     flowscope::emit("user.validated").to("save-user").record();
//! }
//! trace.end();
//! flowscope::flush(std::time::Duration::from_secs(1));
//! ```

pub mod wire;

#[cfg(feature = "redact")]
pub mod redact;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod clock;
#[cfg(feature = "client")]
pub mod propagation;

#[cfg(feature = "client")]
pub use client::*;
#[cfg(feature = "client")]
pub use wire::{
    CorrelationMethod, EntryType, ErrorInfo, LogLevel, OpAction, OpKind, SpanId, TraceId,
};

/// Now, in unix nanoseconds.
///
/// With the client, one `clock_gettime(CLOCK_REALTIME)` through the vDSO, read straight into
/// nanoseconds: every event takes one, and `SystemTime`'s `Duration` arithmetic cost a third of
/// the clock read again.
#[inline]
pub fn now_nanos() -> u64 {
    #[cfg(feature = "client")]
    {
        clock::now_nanos()
    }
    #[cfg(not(feature = "client"))]
    system_time_nanos(std::time::SystemTime::now())
}

/// A wall-clock time in unix nanoseconds (0 before the epoch).
pub fn system_time_nanos(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A fresh random trace id (never all zeros).
#[cfg(feature = "client")]
pub fn new_trace_id() -> TraceId {
    loop {
        let id = TraceId(ids::random());
        if id.is_valid() {
            return id;
        }
    }
}

/// A fresh random span id (never all zeros).
#[cfg(feature = "client")]
pub fn new_span_id() -> SpanId {
    loop {
        let id = SpanId(ids::random());
        if id.is_valid() {
            return id;
        }
    }
}

/// Gives this thread's id generator a fresh seed from the OS. Call it in a forked child (the
/// Python binding does, from `os.register_at_fork`): a child starts with a copy of its parent's
/// generator and would otherwise draw the same trace and span ids.
#[cfg(feature = "client")]
pub fn reseed_ids() {
    ids::reseed();
}

/// Trace and span ids: unique, not secret. A per-thread Xoshiro256++ (rand's `SmallRng`) seeded
/// from the OS, as the OpenTelemetry SDKs do, rather than `ThreadRng`'s ChaCha: a few
/// nanoseconds per id, and a step draws one.
#[cfg(feature = "client")]
mod ids {
    use std::cell::RefCell;

    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    thread_local! {
        static RNG: RefCell<SmallRng> = RefCell::new(seeded());
    }

    fn seeded() -> SmallRng {
        // No OS randomness (a sandbox without getrandom), where `ThreadRng` would panic: the
        // time and this thread's stack address, so the app keeps running with distinct ids.
        SmallRng::try_from_os_rng().unwrap_or_else(|_| {
            let marker = 0u8;
            let here = std::ptr::addr_of!(marker) as u64;
            SmallRng::seed_from_u64(crate::now_nanos() ^ here.rotate_left(32))
        })
    }

    pub(crate) fn random<T>() -> T
    where
        rand::distr::StandardUniform: rand::distr::Distribution<T>,
    {
        RNG.try_with(|rng| rng.borrow_mut().random())
            .unwrap_or_else(|_| rand::random())
    }

    pub(crate) fn reseed() {
        let _ = RNG.try_with(|rng| *rng.borrow_mut() = seeded());
        let _ = rand::rng().reseed();
    }
}
