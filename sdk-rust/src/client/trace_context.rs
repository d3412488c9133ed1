//! The explicit-context API the bindings (and the Rust guards) are built on: a trace — this
//! service's segment of it — is an [`Arc<TraceContext>`] the caller keeps in its own context
//! (thread-local, `contextvars`, `AsyncLocalStorage`), and steps and client calls are started
//! against it with ids passed in. Every rule about ids, W3C Trace Context propagation, sampling
//! flags, `tracestate` and correlation lives here once.

use std::sync::Arc;

use parking_lot::Mutex;

use super::Client;
use crate::propagation::{self, Incoming, TraceParent};
use crate::wire::{
    Attributes, Correlate, CorrelationMethod, EndStatus, EntryType, ErrorInfo, Event, SpanId,
    SpanKind, StepEnd, StepStart, TraceEnd, TraceId, TraceStart, UnixNanos,
};
use crate::{new_span_id, new_trace_id, now_nanos};

/// W3C flag: the caller recorded (sampled) the trace.
pub const FLAG_SAMPLED: u8 = 0x01;
/// W3C Level 2 flag: the trace id's low 56 bits are random.
pub const FLAG_RANDOM: u8 = 0x02;

/// What every handle of one trace segment shares.
#[derive(Debug)]
pub struct TraceContext {
    /// The trace id (the caller's, when continuing an incoming `traceparent`).
    pub trace_id: TraceId,
    /// This segment's span: parent of its top-level steps, and the parent-id sent on calls
    /// made outside any step. Exported as the segment's root span.
    pub root_span: SpanId,
    /// The caller's span this segment continues, if any.
    pub remote_parent: Option<SpanId>,
    /// W3C flags propagated on outgoing calls (sampled and random bits).
    pub flags: u8,
    /// Validated `tracestate` to pass on (only when continuing a valid `traceparent`).
    pub tracestate: Option<String>,
    /// Flow name.
    pub flow: String,
    cid: Mutex<Option<Arc<str>>>,
}

impl TraceContext {
    /// Rebuilds a context from its parts, for bindings that keep a trace's state on their own
    /// side (the Node SDK keeps it in JavaScript frames).
    pub fn restore(
        trace_id: TraceId,
        root_span: SpanId,
        flags: u8,
        tracestate: Option<String>,
        correlation_id: Option<&str>,
    ) -> Self {
        Self {
            trace_id,
            root_span,
            remote_parent: None,
            flags,
            tracestate,
            flow: String::new(),
            cid: Mutex::new(correlation_id.map(Arc::from)),
        }
    }

    /// The current correlation id of the trace.
    pub fn correlation_id(&self) -> Option<Arc<str>> {
        self.cid.lock().clone()
    }

    /// Remembers a new correlation id (after `correlate`), for outgoing headers.
    pub fn set_correlation_id(&self, cid: &str) {
        *self.cid.lock() = Some(Arc::from(cid));
    }

    /// The parent-id announced from `span` (or from the segment's root span outside any step).
    pub fn outgoing_parent(&self, span: Option<SpanId>) -> SpanId {
        span.unwrap_or(self.root_span)
    }

    /// The `traceparent` value for a call made from `span`.
    pub fn traceparent(&self, span: Option<SpanId>) -> String {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: self.outgoing_parent(span),
            flags: self.flags,
        }
        .to_header()
    }

    /// Propagation headers (`traceparent`, `tracestate`, `x-motia-correlation-id`) for a call
    /// made from `span`. Prefer a client span ([`Client::begin_client_call`]) so each call has
    /// its own parent-id.
    pub fn headers(&self, span: Option<SpanId>) -> Vec<(&'static str, String)> {
        let cid = self.correlation_id();
        propagation::inject_with_flags(
            self.trace_id,
            self.outgoing_parent(span),
            self.flags,
            cid.as_deref(),
            self.tracestate.as_deref(),
        )
    }

    /// Whether the trace is sampled (recorded upstream).
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

/// How a trace starts.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Flow name.
    pub flow: String,
    /// What triggered the run.
    pub entry: EntryType,
    /// Entry step name.
    pub step: Option<String>,
    /// Correlation id to join.
    pub correlation_id: Option<String>,
    /// How that correlation was found (`manual` goes in `trace_start`, others in `correlate`).
    pub correlation_method: CorrelationMethod,
    /// The trace whose emit started this one (event-based link).
    pub parent_trace: Option<TraceId>,
    /// Attributes.
    pub attributes: Option<Attributes>,
    /// A given trace id (e.g. a deterministic mapping of a framework's run id). Ignored when a
    /// valid incoming `traceparent` is continued.
    pub trace_id: Option<TraceId>,
    /// What the incoming request carried: a valid `traceparent` is continued (same trace id,
    /// this segment's parent is the caller's span, flags kept), its `tracestate` passed on.
    pub incoming: Option<Incoming>,
    /// Start time (0: now).
    pub t: UnixNanos,
}

impl Client {
    /// Starts a trace (or this service's segment of an incoming one) and returns its context.
    pub fn begin_trace(&self, options: TraceOptions) -> Arc<TraceContext> {
        let t = if options.t == 0 {
            now_nanos()
        } else {
            options.t
        };
        let remote = options.incoming.as_ref().and_then(|i| i.traceparent);
        let (trace_id, remote_parent, flags, tracestate) = match remote {
            Some(tp) => (
                tp.trace_id,
                Some(tp.parent_id),
                // Sampled and random bits travel on; unknown bits are not ours to set.
                tp.flags & (FLAG_SAMPLED | FLAG_RANDOM),
                options.incoming.as_ref().and_then(|i| i.tracestate.clone()),
            ),
            None => {
                let id = options
                    .trace_id
                    .filter(|t| t.is_valid())
                    .unwrap_or_else(new_trace_id);
                let sampled = crate::wire::sampled_by_ratio(id, self.sample_ratio());
                let random = if options.trace_id.is_some() {
                    0
                } else {
                    FLAG_RANDOM
                };
                (id, None, random | u8::from(sampled), None)
            }
        };
        let cid = options.correlation_id.filter(|c| !c.is_empty());
        let context = Arc::new(TraceContext {
            trace_id,
            root_span: new_span_id(),
            remote_parent,
            flags,
            tracestate,
            flow: options.flow.clone(),
            cid: Mutex::new(cid.as_deref().map(Arc::from)),
        });
        let (start_cid, later) = match options.correlation_method {
            CorrelationMethod::Manual => (cid, None),
            _ => (None, cid),
        };
        if let Some(cid) = later {
            // Before `trace_start`: the agent otherwise links a trace with a parent to the
            // parent's group first (method `event`), and the first link's method is kept.
            self.emit(Event::Correlate(Correlate {
                t,
                trace: trace_id,
                cid,
                method: options.correlation_method,
                name: None,
            }));
        }
        self.emit(Event::TraceStart(Box::new(TraceStart {
            t,
            trace: trace_id,
            flow: options.flow,
            entry: options.entry,
            step: options.step,
            cid: start_cid,
            parent: options.parent_trace.filter(|p| p.is_valid()),
            attrs: options.attributes,
            span: Some(context.root_span),
            remote_parent,
            flags: remote.map(|_| flags),
        })));
        context
    }

    /// Ends the segment `context` (failed when `error` is given).
    pub fn end_trace(&self, context: &TraceContext, error: Option<ErrorInfo>, t: UnixNanos) {
        self.emit(Event::TraceEnd(TraceEnd {
            t: if t == 0 { now_nanos() } else { t },
            trace: context.trace_id,
            status: if error.is_some() {
                EndStatus::Failed
            } else {
                EndStatus::Completed
            },
            error: error.map(Box::new),
            span: Some(context.root_span),
        }));
    }

    /// Starts a step under `parent` (a step's span, or `None` for a top-level step) and returns
    /// its span id.
    pub fn begin_step(
        &self,
        context: &TraceContext,
        parent: Option<SpanId>,
        name: impl Into<crate::wire::Name>,
        t: UnixNanos,
    ) -> SpanId {
        let span = new_span_id();
        self.emit(Event::StepStart(StepStart {
            t: if t == 0 { now_nanos() } else { t },
            trace: context.trace_id,
            span,
            parent: Some(context.outgoing_parent(parent)),
            name: name.into(),
            kind: SpanKind::Internal,
            attrs: None,
        }));
        span
    }

    /// Starts the CLIENT span of one outgoing HTTP call made from `parent` and returns its span
    /// id: the parent-id to send in `traceparent` (see [`TraceContext::headers`]).
    pub fn begin_client_call(
        &self,
        context: &TraceContext,
        parent: Option<SpanId>,
        method: &str,
        url: &str,
    ) -> SpanId {
        let span = new_span_id();
        let method = method.to_ascii_uppercase();
        let mut attrs = Attributes::new();
        attrs.insert("http.request.method".into(), method.clone().into());
        attrs.insert("url.full".into(), redact_userinfo(url).into());
        self.emit(Event::StepStart(StepStart {
            t: now_nanos(),
            trace: context.trace_id,
            span,
            parent: Some(context.outgoing_parent(parent)),
            name: method.into(),
            kind: SpanKind::Client,
            attrs: Some(attrs),
        }));
        span
    }

    /// Ends a client call: `status` is the response's status code (a 5xx, or `error` for a
    /// call that got no response, marks it failed).
    pub fn end_client_call(
        &self,
        context: &TraceContext,
        span: SpanId,
        status: Option<u16>,
        error: Option<ErrorInfo>,
    ) {
        let mut attrs = Attributes::new();
        if let Some(code) = status {
            attrs.insert("http.response.status_code".into(), code.into());
        }
        let error = error.or_else(|| {
            status.filter(|s| *s >= 500).map(|s| ErrorInfo {
                error_type: Some(s.to_string()),
                code: Some(s.to_string()),
                ..ErrorInfo::new(format!("HTTP {s}"))
            })
        });
        if let Some(e) = &error {
            attrs.insert(
                "error.type".into(),
                e.error_type
                    .clone()
                    .unwrap_or_else(|| "error".into())
                    .into(),
            );
        }
        self.emit(Event::StepEnd(StepEnd {
            t: now_nanos(),
            trace: context.trace_id,
            span,
            status: if error.is_some() {
                EndStatus::Failed
            } else {
                EndStatus::Completed
            },
            error: error.map(Box::new),
            name: None,
            attrs: (!attrs.is_empty()).then_some(attrs),
        }));
    }

    /// The agent's export sample ratio (1.0 until a handshake said otherwise).
    pub fn sample_ratio(&self) -> f64 {
        self.inner.shared.sample_ratio()
    }
}

/// `url.full` without credentials (OpenTelemetry: user info MUST NOT be recorded).
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://REDACTED:REDACTED@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_url_full() {
        assert_eq!(
            redact_userinfo("https://ann:pw@api.example/x?y=1"),
            "https://REDACTED:REDACTED@api.example/x?y=1"
        );
        assert_eq!(
            redact_userinfo("http://api.example/a@b"),
            "http://api.example/a@b"
        );
        assert_eq!(redact_userinfo("/relative"), "/relative");
    }
}
