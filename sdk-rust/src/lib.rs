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
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        u64::try_from(now.tv_sec).map_or(0, |secs| {
            secs.saturating_mul(1_000_000_000)
                .saturating_add(now.tv_nsec as u64)
        })
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
        let id = TraceId(rand::random());
        if id.is_valid() {
            return id;
        }
    }
}

/// A fresh random span id (never all zeros).
#[cfg(feature = "client")]
pub fn new_span_id() -> SpanId {
    loop {
        let id = SpanId(rand::random());
        if id.is_valid() {
            return id;
        }
    }
}
