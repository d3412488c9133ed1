//! The current trace and step, as the Rust side sees them.
//!
//! JavaScript keeps its context in an `AsyncLocalStorage`: frames holding the trace and span ids
//! as lowercase hex strings (what the API and `traceparent` show). Passing two ids on every call
//! would cost two string conversions per event, so instead JavaScript tells this module which
//! frame is current ([`enter`]) only when it differs from the last one it entered, and the event
//! functions read it from a thread-local. Each JavaScript thread (main or worker) runs on its own
//! OS thread, so a thread-local is exactly one per JavaScript realm's thread.
//!
//! The only calls that change the current context are [`enter`], `traceStart`, `stepStart` and
//! `stepEndCurrent`, and `index.js` mirrors each of them, so both sides always agree on it.
//! `stepStart` remembers the enclosing span, so `stepEndCurrent` can end the current step and
//! return to its parent without JavaScript passing any id (the common, non-interleaved case).
//!
//! Ids are read as Latin-1 ([`Latin1String`]): hex digits are ASCII, and V8 copies a one-byte
//! string without the UTF-8 length scan (about 3× cheaper per argument than a `String`).

use std::cell::Cell;

use flowscope::{SpanId, TraceId};
use napi::bindgen_prelude::Latin1String;
use napi_derive::napi;

/// Where events go: a trace and, inside a step, its span.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Current {
    /// The trace.
    pub(crate) trace: TraceId,
    /// The current step (`None` directly under the trace).
    pub(crate) span: Option<SpanId>,
    /// The context enclosing `span` when known: `Some(None)` is the trace itself.
    pub(crate) parent: Option<Option<SpanId>>,
    /// The trace segment's root span: the parent of top-level steps.
    pub(crate) root: Option<SpanId>,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// The context the next event belongs to (`None`: no valid context entered).
#[inline]
pub(crate) fn current() -> Option<Current> {
    CURRENT.with(Cell::get)
}

/// Makes `ctx` current on this thread.
#[inline]
pub(crate) fn set_current(ctx: Option<Current>) {
    CURRENT.with(|c| c.set(ctx));
}

fn hex(id: &Latin1String) -> Option<&str> {
    std::str::from_utf8(id).ok()
}

/// A valid (non-zero) trace id from 32 hex digits.
#[inline]
pub(crate) fn trace_id(id: &Latin1String) -> Option<TraceId> {
    hex(id)
        .and_then(|h| TraceId::from_hex(h).ok())
        .filter(|id| id.is_valid())
}

/// A valid (non-zero) span id from 16 hex digits; `None` for absent or invalid.
#[inline]
pub(crate) fn span_id(id: Option<&Latin1String>) -> Option<SpanId> {
    id.and_then(hex)
        .and_then(|h| SpanId::from_hex(h).ok())
        .filter(|id| id.is_valid())
}

/// Makes `trace` (and `span`, inside a step) the context of the following event calls on this
/// thread; `root` is the trace segment's root span. An invalid trace id clears it, so those
/// calls do nothing.
#[napi]
pub fn enter(trace: Latin1String, span: Option<Latin1String>, root: Option<Latin1String>) {
    set_current(trace_id(&trace).map(|trace| Current {
        trace,
        span: span_id(span.as_ref()),
        parent: None,
        root: span_id(root.as_ref()),
    }));
}

/// A fresh random trace id (32 hex digits).
#[napi]
pub fn new_trace_id() -> String {
    flowscope::new_trace_id().to_string()
}

/// A fresh random span id (16 hex digits).
#[napi]
pub fn new_span_id() -> String {
    flowscope::new_span_id().to_string()
}
