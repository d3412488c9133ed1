//! Async code: a step (or trace, or any context) that survives `.await`. The wrapped future makes
//! its context current on whichever thread polls it, for the duration of each poll — what a tokio
//! task-local gives, without tying the SDK to one runtime — so a step keeps its operations and
//! logs however often its task moves between worker threads.
//!
//! ```no_run
//! # async fn charge() {}
//! # async fn example() {
//! let result = flowscope::step("charge").instrument(async {
//!     flowscope::state_set("payment.status").record(); // in the step, on any worker thread
//!     charge().await;
//! }).await;
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::api::{StepBuilder, StepGuard, TraceBuilder, TraceGuard};
use super::context::SpanContext;
use crate::wire::ErrorInfo;

/// What ends when the wrapped future completes.
enum Scope {
    Step(StepGuard),
    Trace(TraceGuard),
    Borrowed,
}

impl Scope {
    fn end(self, error: Option<ErrorInfo>) {
        match (self, error) {
            (Scope::Step(g), None) => g.end(),
            (Scope::Step(g), Some(e)) => g.fail(e),
            (Scope::Trace(g), None) => g.end(),
            (Scope::Trace(g), Some(e)) => g.fail(e),
            (Scope::Borrowed, _) => {}
        }
    }
}

pin_project_lite::pin_project! {
    /// A future running inside a flowscope context (see the module docs). Created by
    /// [`StepBuilder::instrument`], [`TraceBuilder::instrument`] and [`SpanContext::scope`].
    pub struct Instrumented<F, R = ()> {
        #[pin]
        inner: F,
        ctx: Option<SpanContext>,
        scope: Option<Scope>,
        outcome: fn(&R) -> Option<ErrorInfo>,
    }

    impl<F, R> PinnedDrop for Instrumented<F, R> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before completion: the task was cancelled.
            if let Some(scope) = this.project().scope.take() {
                scope.end(Some(ErrorInfo {
                    error_type: Some("cancelled".into()),
                    ..ErrorInfo::new("the future was dropped before it completed")
                }));
            }
        }
    }
}

fn no_error<R>(_: &R) -> Option<ErrorInfo> {
    None
}

/// The outcome of a fallible future: an `Err` becomes the error, with its message.
fn error_of<T, E: Display>(result: &Result<T, E>) -> Option<ErrorInfo> {
    result.as_ref().err().map(|e| ErrorInfo::new(e.to_string()))
}

impl<F: Future<Output = R>, R> Future for Instrumented<F, R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.project();
        let attached = this.ctx.as_ref().map(SpanContext::attach_ref);
        let polled = this.inner.poll(cx);
        drop(attached);
        if let Poll::Ready(value) = &polled
            && let Some(scope) = this.scope.take()
        {
            scope.end((this.outcome)(value));
        }
        polled
    }
}

/// Detaches a started scope from this thread's context stack (the future attaches it per poll).
fn detached(ctx: Option<SpanContext>) -> Option<SpanContext> {
    if let Some(c) = &ctx {
        super::context::pop(c.trace_id, c.span_id);
    }
    ctx
}

impl StepBuilder {
    /// Runs `future` as this step: started now, current whenever the future is polled, ended when
    /// it completes (failed when it is dropped first).
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F, F::Output> {
        let guard = self.start();
        Instrumented {
            inner: future,
            ctx: detached(guard.context()),
            scope: Some(Scope::Step(guard)),
            outcome: no_error::<F::Output>,
        }
    }

    /// Like [`instrument`](Self::instrument) for a fallible future: an `Err` fails the step with
    /// its message.
    pub fn instrument_result<F, T, E>(self, future: F) -> Instrumented<F, Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        E: Display,
    {
        let guard = self.start();
        Instrumented {
            inner: future,
            ctx: detached(guard.context()),
            scope: Some(Scope::Step(guard)),
            outcome: error_of::<T, E>,
        }
    }
}

impl TraceBuilder {
    /// Runs `future` as this trace: started now, current whenever the future is polled, ended
    /// when it completes.
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F, F::Output> {
        let guard = self.start();
        Instrumented {
            inner: future,
            ctx: detached(guard.context()),
            scope: Some(Scope::Trace(guard)),
            outcome: no_error::<F::Output>,
        }
    }

    /// Like [`instrument`](Self::instrument) for a fallible future: an `Err` fails the trace
    /// with its message.
    pub fn instrument_result<F, T, E>(self, future: F) -> Instrumented<F, Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        E: Display,
    {
        let guard = self.start();
        Instrumented {
            inner: future,
            ctx: detached(guard.context()),
            scope: Some(Scope::Trace(guard)),
            outcome: error_of::<T, E>,
        }
    }
}

impl SpanContext {
    /// Makes this context current while `future` is polled (e.g. for a task spawned from a step:
    /// `tokio::spawn(SpanContext::current().unwrap().scope(work()))`). Ends nothing.
    pub fn scope<F: Future>(self, future: F) -> Instrumented<F, F::Output> {
        Instrumented {
            inner: future,
            ctx: Some(self),
            scope: Some(Scope::Borrowed),
            outcome: no_error::<F::Output>,
        }
    }
}
