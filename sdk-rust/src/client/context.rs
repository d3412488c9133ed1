//! The current trace/step of this thread, so calls need no handle passed around.
//!
//! Guards ([`TraceGuard`](super::TraceGuard), [`StepGuard`](super::StepGuard)) push on start and
//! pop on end. To carry the context to another thread or task, take [`SpanContext::current`] and
//! [`SpanContext::attach`] it there.

use std::cell::RefCell;

use super::Client;
use crate::wire::{SpanId, TraceId};

/// Where new events go: a client, a trace, and the innermost step (if any).
#[derive(Clone, Debug)]
pub struct SpanContext {
    /// The client events are queued on.
    pub client: Client,
    /// The current trace.
    pub trace_id: TraceId,
    /// The current step, `None` directly under the trace.
    pub span_id: Option<SpanId>,
    /// What the whole trace segment shares (root span, flags, tracestate, correlation id).
    pub trace: std::sync::Arc<super::TraceContext>,
}

impl SpanContext {
    /// Propagation headers for an outgoing call made from here (same parent-id for every call;
    /// prefer [`Client::begin_client_call`] for one span per call).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.trace.headers(self.span_id)
    }
}

thread_local! {
    static STACK: RefCell<Vec<SpanContext>> = const { RefCell::new(Vec::new()) };
}

impl SpanContext {
    /// The innermost context on this thread.
    pub fn current() -> Option<SpanContext> {
        STACK.with(|s| s.borrow().last().cloned())
    }

    /// Makes this the current context on this thread until the guard drops.
    pub fn attach(self) -> ContextGuard {
        let key = (self.trace_id, self.span_id);
        push(self);
        ContextGuard { key }
    }
}

/// Restores the previous context when dropped.
#[must_use = "the context is detached when the guard drops"]
#[derive(Debug)]
pub struct ContextGuard {
    key: (TraceId, Option<SpanId>),
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        pop(self.key.0, self.key.1);
    }
}

pub(crate) fn push(ctx: SpanContext) {
    STACK.with(|s| s.borrow_mut().push(ctx));
}

/// Removes the innermost entry for (trace, span); a guard dropped on another thread finds
/// nothing here and leaves this thread's stack alone.
pub(crate) fn pop(trace_id: TraceId, span_id: Option<SpanId>) {
    STACK.with(|s| {
        let mut stack = s.borrow_mut();
        if let Some(pos) = stack
            .iter()
            .rposition(|c| c.trace_id == trace_id && c.span_id == span_id)
        {
            stack.remove(pos);
        }
    });
}

/// Runs `f` with the innermost context, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&SpanContext>) -> R) -> R {
    STACK.with(|s| f(s.borrow().last()))
}
