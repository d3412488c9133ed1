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

/// One entry of a thread's context stack.
enum Entry {
    /// A context of its own.
    Own(SpanContext),
    /// The context of the nearest [`Entry::Own`] below, at another span: what a step started
    /// under the current context pushes. It holds no reference counts, so starting and ending a
    /// step on its own thread costs no atomic operation here (a step's guard keeps its own
    /// handle, for ending it from anywhere).
    Span {
        trace_id: TraceId,
        span_id: Option<SpanId>,
    },
}

impl Entry {
    fn key(&self) -> (TraceId, Option<SpanId>) {
        match self {
            Entry::Own(c) => (c.trace_id, c.span_id),
            Entry::Span { trace_id, span_id } => (*trace_id, *span_id),
        }
    }
}

thread_local! {
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// The innermost context of a stack, borrowed: its segment's context and its span.
fn innermost(stack: &[Entry]) -> Option<Current<'_>> {
    let span_id = match stack.last()? {
        Entry::Own(c) => {
            return Some(Current {
                base: c,
                span_id: c.span_id,
            });
        }
        Entry::Span { span_id, .. } => *span_id,
    };
    let base = stack.iter().rev().find_map(|e| match e {
        Entry::Own(c) => Some(c),
        Entry::Span { .. } => None,
    })?;
    Some(Current { base, span_id })
}

/// The innermost context on this thread, without reference counts taken.
pub(crate) struct Current<'a> {
    base: &'a SpanContext,
    span_id: Option<SpanId>,
}

impl Current<'_> {
    /// The client events are queued on.
    pub(crate) fn client(&self) -> &Client {
        &self.base.client
    }
    /// The current trace.
    pub(crate) fn trace_id(&self) -> TraceId {
        self.base.trace_id
    }
    /// The current step, `None` directly under the trace.
    pub(crate) fn span_id(&self) -> Option<SpanId> {
        self.span_id
    }
    /// What the trace segment shares.
    pub(crate) fn trace(&self) -> &super::TraceContext {
        &self.base.trace
    }
}

impl SpanContext {
    /// The innermost context on this thread.
    pub fn current() -> Option<SpanContext> {
        STACK.with(|s| {
            innermost(&s.borrow()).map(|c| SpanContext {
                span_id: c.span_id,
                ..c.base.clone()
            })
        })
    }

    /// Makes this the current context on this thread until the guard drops.
    pub fn attach(self) -> ContextGuard {
        let key = (self.trace_id, self.span_id);
        push(self);
        ContextGuard { key }
    }

    /// [`attach`](Self::attach) without giving up this handle.
    pub(crate) fn attach_ref(&self) -> ContextGuard {
        push_ref(self);
        ContextGuard {
            key: (self.trace_id, self.span_id),
        }
    }

    /// Whether `other` is a span of the same trace segment on the same client.
    fn same_segment(&self, other: &SpanContext) -> bool {
        self.trace_id == other.trace_id
            && std::sync::Arc::ptr_eq(&self.trace, &other.trace)
            && self.client.same_as(&other.client)
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

/// The entry that makes `ctx` current on top of `stack`: a span of the current segment takes
/// no handle (see [`Entry::Span`]).
fn entry_for(stack: &[Entry], ctx: &SpanContext) -> Option<Entry> {
    innermost(stack)
        .is_some_and(|c| c.base.same_segment(ctx))
        .then_some(Entry::Span {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
        })
}

pub(crate) fn push(ctx: SpanContext) {
    STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let entry = entry_for(&stack, &ctx).unwrap_or(Entry::Own(ctx));
        stack.push(entry);
    });
}

/// [`push`] that clones `ctx` only when it is not a span of the current segment.
pub(crate) fn push_ref(ctx: &SpanContext) {
    STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let entry = entry_for(&stack, ctx).unwrap_or_else(|| Entry::Own(ctx.clone()));
        stack.push(entry);
    });
}

/// Removes the innermost entry for (trace, span); a guard dropped on another thread finds
/// nothing here and leaves this thread's stack alone.
pub(crate) fn pop(trace_id: TraceId, span_id: Option<SpanId>) {
    // Dropped after the borrow ends: a client's last handle may go with it.
    let _removed = STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let pos = stack.iter().rposition(|e| e.key() == (trace_id, span_id))?;
        let removed = stack.remove(pos);
        // Spans above an own context that leaves first (guards dropped out of order) took
        // theirs from it: the lowest of them takes it over.
        if let Entry::Own(ctx) = removed {
            if let Some(Entry::Span { span_id, .. }) = stack.get(pos) {
                let span_id = *span_id;
                stack[pos] = Entry::Own(SpanContext { span_id, ..ctx });
                return None;
            }
            return Some(ctx);
        }
        None
    });
}

/// Runs `f` with the innermost context, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<Current<'_>>) -> R) -> R {
    STACK.with(|s| f(innermost(&s.borrow())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Config;

    fn context(client: &Client) -> SpanContext {
        let trace = client.begin_trace(super::super::TraceOptions {
            flow: "f".into(),
            ..Default::default()
        });
        SpanContext {
            client: client.clone(),
            trace_id: trace.trace_id,
            span_id: None,
            trace,
        }
    }

    fn at(ctx: &SpanContext, span: u64) -> SpanContext {
        SpanContext {
            span_id: Some(SpanId(span)),
            ..ctx.clone()
        }
    }

    fn current_key() -> Option<(TraceId, Option<SpanId>)> {
        SpanContext::current().map(|c| (c.trace_id, c.span_id))
    }

    #[test]
    fn spans_of_the_current_segment_take_no_handle_and_unwind_in_any_order() {
        let client = Client::disabled();
        let root = context(&client);
        let _root = root.clone().attach();
        let (a, b) = (at(&root, 1), at(&root, 2));
        let guard_a = a.attach_ref();
        let guard_b = b.attach_ref();
        STACK.with(|s| {
            let stack = s.borrow();
            assert_eq!(stack.len(), 3);
            assert!(
                matches!(stack[1], Entry::Span { .. }) && matches!(stack[2], Entry::Span { .. })
            );
        });
        assert_eq!(current_key(), Some((root.trace_id, Some(SpanId(2)))));
        with_current(|c| {
            let c = c.unwrap();
            assert_eq!(
                (c.trace_id(), c.span_id()),
                (root.trace_id, Some(SpanId(2)))
            );
        });
        // The outer step's guard goes first: the inner stays current.
        drop(guard_a);
        assert_eq!(current_key(), Some((root.trace_id, Some(SpanId(2)))));
        drop(guard_b);
        assert_eq!(current_key(), Some((root.trace_id, None)));
    }

    #[test]
    fn when_an_own_context_leaves_first_the_spans_above_keep_theirs() {
        let client = Client::disabled();
        let other = Client::new(Config::new("other").disabled(true));
        let (one, two) = (context(&client), context(&other));
        let _one = one.clone().attach();
        // Another client's context is its own entry; a span of it is not.
        let guard_two = two.clone().attach();
        let guard_span = at(&two, 7).attach_ref();
        drop(guard_two);
        assert_eq!(current_key(), Some((two.trace_id, Some(SpanId(7)))));
        with_current(|c| assert!(c.unwrap().client().same_as(&other)));
        drop(guard_span);
        assert_eq!(current_key(), Some((one.trace_id, None)));
        with_current(|c| assert!(c.unwrap().client().same_as(&client)));
    }
}
