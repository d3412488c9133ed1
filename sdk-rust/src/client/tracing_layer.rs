//! A [`tracing_subscriber::Layer`] that turns existing `tracing` instrumentation into flowscope:
//! a span becomes a step of the enclosing span's step (or of the current flowscope trace), a span
//! with no parent and no current flowscope context becomes a trace (its flow name is the span's
//! `flow` field, else its name), and events become logs of the current step. An `error!` event
//! inside a span fails its step. While a span is entered its step is the current flowscope
//! context, so flowscope calls inside it (`state_get`, `llm`, …) land in that step.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! let client = flowscope::init(flowscope::Config::from_env("worker"));
//! tracing_subscriber::registry().with(flowscope::FlowscopeLayer::new(client)).init();
//! ```

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes as SpanAttributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::Client;
use super::api::{StepBuilder, StepGuard, TraceBuilder, TraceGuard, log_with};
use super::context::{self, SpanContext};
use crate::wire::{Attributes, ErrorInfo, LogLevel};

/// The layer (see the module docs).
#[derive(Clone)]
pub struct FlowscopeLayer {
    client: Option<Client>,
}

impl FlowscopeLayer {
    /// A layer that starts traces on `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client: Some(client),
        }
    }

    /// A layer that starts traces on the global client ([`init`](super::init)).
    pub fn global() -> Self {
        Self { client: None }
    }
}

/// What a tracing span became.
enum Scope {
    Step(StepGuard),
    Trace(TraceGuard),
}

struct Recorded {
    ctx: SpanContext,
    scope: Option<Scope>,
    error: Option<String>,
}

/// Collects `message` and the other fields of an event or span.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    flow: Option<String>,
    fields: Attributes,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "flow" => self.flow = Some(value.to_owned()),
            name => {
                self.fields.insert(name.to_owned(), value.into());
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

fn level(level: &Level) -> LogLevel {
    match *level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        Level::ERROR => LogLevel::Error,
    }
}

impl<S> Layer<S> for FlowscopeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Recorded>().map(|r| r.ctx.clone()))
            .or_else(SpanContext::current);
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (scope, started) = match parent {
            Some(parent) => {
                let guard = StepBuilder::new(Some(parent), span.name().into()).start();
                let started = guard.context();
                (Scope::Step(guard), started)
            }
            None => {
                let client = self.client.clone().or_else(super::global);
                let flow = fields.flow.take().unwrap_or_else(|| span.name().to_owned());
                let mut builder = TraceBuilder::new(client, flow);
                for (key, value) in std::mem::take(&mut fields.fields) {
                    builder = builder.attribute(key, value);
                }
                let guard = builder.start();
                let started = guard.context();
                (Scope::Trace(guard), started)
            }
        };
        let Some(started) = started else { return };
        // Started scopes push themselves; this one becomes current only while entered.
        context::pop(started.trace_id, started.span_id);
        span.extensions_mut().insert(Recorded {
            ctx: started,
            scope: Some(scope),
            error: None,
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(recorded) = span.extensions().get::<Recorded>()
        {
            context::push_ref(&recorded.ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(recorded) = span.extensions().get::<Recorded>()
        {
            context::pop(recorded.ctx.trace_id, recorded.ctx.span_id);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields
            .message
            .take()
            .unwrap_or_else(|| event.metadata().name().to_owned());
        if *event.metadata().level() == Level::ERROR
            && let Some(span) = ctx.event_span(event)
            && let Some(recorded) = span.extensions_mut().get_mut::<Recorded>()
        {
            recorded.error.get_or_insert_with(|| message.clone());
        }
        let fields = (!fields.fields.is_empty()).then_some(fields.fields);
        // The current flowscope context is the entered span's step (on_enter).
        log_with(level(event.metadata().level()), message, fields);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut recorded) = span.extensions_mut().remove::<Recorded>() else {
            return;
        };
        let error = recorded.error.take().map(ErrorInfo::new);
        match (recorded.scope.take(), error) {
            (Some(Scope::Step(g)), None) => g.end(),
            (Some(Scope::Step(g)), Some(e)) => g.fail(e),
            (Some(Scope::Trace(g)), None) => g.end(),
            (Some(Scope::Trace(g)), Some(e)) => g.fail(e),
            (None, _) => {}
        }
    }
}
