//! Applies events to a trace, keeping the indexes in step. Events may arrive in any order:
//! an end before its start, operations before their step, anything before `trace_start`.

use std::sync::Arc;

use flowscope::wire::{CorrelationMethod, EndStatus, Event, OpKind, SpanId, TraceId};

use super::ThinStr;
use super::model::{Operation, Origin, Segment, Step, StepStatus, Trace, TraceStatus};

/// Which secondary index a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Flow name.
    Flow,
    /// Step name.
    Step,
    /// State key.
    StateKey,
    /// Emit topic.
    Topic,
    /// Service with a segment in the trace.
    Service,
}

/// What the builder tells the store's indexes as it changes a trace; the builder never touches
/// the indexes' layout (the store implements this for its `Indexes`).
pub trait IndexUpdates {
    /// `id` now has `key` in the `kind` index.
    fn add_key(&mut self, kind: KeyKind, key: &str, id: TraceId);
    /// `id` no longer has `key` in the `kind` index.
    fn remove_key(&mut self, kind: KeyKind, key: &str, id: TraceId);
    /// The trace's start time moved (it is in `group`, if any).
    fn start_moved(&mut self, id: TraceId, group: Option<&str>, from: u64, to: u64);
    /// The trace's status changed.
    fn status_changed(&mut self, id: TraceId, from: TraceStatus, to: TraceStatus);
    /// The trace (started at `start`) moved from group `from` to `to`, whose display name may be
    /// given.
    fn group_changed(
        &mut self,
        id: TraceId,
        start: u64,
        from: Option<&str>,
        to: &str,
        name: Option<String>,
    );
    /// An automatically linked member left group `cid`.
    fn automatic_member_left(&mut self, cid: &str);
    /// The shared copy of `text` (a state key, topic, stream, step or item id that many
    /// operations repeat).
    fn intern(&mut self, text: &str) -> ThinStr {
        ThinStr::new(text)
    }
}

/// Why a trace failed when it stopped receiving events.
pub const ABANDONED: &str = "abandoned";
/// Error code of a client call still open when its segment ended (it got no response).
pub const NO_RESPONSE: &str = "no_response";

/// What an applied event completed, for metrics and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing that ends a span.
    Nothing,
    /// An operation was appended to the step (or to the trace when `None`).
    Op(Option<SpanId>),
    /// An LLM call was appended to the step's (or trace's) events.
    Llm(Option<SpanId>),
    /// A step ended.
    StepEnded(SpanId),
    /// A segment (one service's part) ended; `trace_ended` when it was the last running one.
    SegmentEnded {
        /// Index into [`Trace::segments`].
        segment: u16,
        /// Whether the whole trace is now over.
        trace_ended: bool,
    },
}

/// Per-trace caps the builder enforces.
#[derive(Debug, Clone, Copy)]
pub struct TraceCaps {
    /// Steps per trace.
    pub max_steps: usize,
    /// Operations + events per trace.
    pub max_events: u32,
    /// Nesting depth.
    pub max_depth: u16,
}

impl Default for TraceCaps {
    fn default() -> Self {
        Self {
            max_steps: 10_000,
            max_events: 100_000,
            max_depth: 100,
        }
    }
}

/// Whether `event` fits in `trace` under `caps`; counts what does not.
fn admit(trace: &mut Trace, event: &Event, caps: &TraceCaps) -> bool {
    let full = trace.steps.len() >= caps.max_steps;
    let known = |span: SpanId| trace.step_position(span).is_some();
    match event {
        Event::StepStart(e) if full && !known(e.span) => {
            trace.truncated.steps = trace.truncated.steps.saturating_add(1);
            false
        }
        Event::StepEnd(e) if full && !known(e.span) => {
            trace.truncated.events = trace.truncated.events.saturating_add(1);
            false
        }
        Event::TraceStart(_)
        | Event::TraceEnd(_)
        | Event::StepStart(_)
        | Event::StepEnd(_)
        | Event::Correlate(_)
        | Event::Stats(_)
        | Event::Dropped(_)
        | Event::Unknown => true,
        other => {
            let unknown_step = step_event_span(other)
                .or(match other {
                    Event::Op(op) => op.span,
                    _ => None,
                })
                .is_some_and(|s| full && !known(s));
            if unknown_step || trace.event_count >= caps.max_events {
                trace.truncated.events = trace.truncated.events.saturating_add(1);
                false
            } else {
                trace.event_count += 1;
                true
            }
        }
    }
}

/// Where a new step hangs: its parent (re-pointed upwards past `max_depth`) and its depth.
fn place(trace: &Trace, parent: Option<SpanId>, max_depth: u16) -> (Option<SpanId>, u16, bool) {
    let mut parent = parent;
    let mut flattened = false;
    for _ in 0..=max_depth {
        let Some(p) = parent else {
            return (None, 1, flattened);
        };
        let Some(parent_step) = trace.step(p) else {
            // Not seen yet: at least one level below a top-level step.
            return (Some(p), 2.min(max_depth), flattened);
        };
        let depth = parent_step.depth.saturating_add(1);
        if depth <= max_depth {
            return (Some(p), depth, flattened);
        }
        parent = parent_step.parent;
        flattened = true;
    }
    (None, 1, true)
}

/// The segment a `trace_start`/`trace_end` with segment span `span` belongs to, created when
/// unknown. An event without a span (older SDKs) uses the trace's span-less segment.
fn segment_for(trace: &mut Trace, span: Option<SpanId>, origin: &Arc<Origin>, t: u64) -> usize {
    if let Some(i) = trace.segments.iter().position(|s| s.span == span) {
        return i;
    }
    if trace.segments.is_empty() {
        // Most traces have one segment: room for one, not the four a first push would reserve.
        trace.segments.reserve_exact(1);
    }
    trace
        .segments
        .push(Segment::new(span, Arc::clone(origin), t));
    trace.segments.len() - 1
}

/// The segment that describes the trace as a whole: the first without a remote parent (the
/// root service), else the first started.
fn primary(trace: &Trace) -> Option<usize> {
    trace
        .segments
        .iter()
        .position(|s| s.started && s.remote_parent.is_none())
        .or_else(|| trace.segments.iter().position(|s| s.started))
}

/// Where a step with no known parent step hangs: the latest segment from the same service,
/// else the first.
fn segment_by_origin(trace: &Trace, origin: &Arc<Origin>) -> u16 {
    trace
        .segments
        .iter()
        .rposition(|s| Arc::ptr_eq(&s.origin, origin) || s.origin.service == origin.service)
        .unwrap_or(0) as u16
}

/// Copies the primary segment's description onto the trace (flow, entry, origin, start).
fn adopt_primary(trace: &mut Trace, idx: &mut dyn IndexUpdates, primary: usize) {
    let id = trace.id;
    let seg = &trace.segments[primary];
    if trace.flow_name.as_deref() != Some(seg.flow.as_str()) {
        if let Some(old) = &trace.flow_name {
            idx.remove_key(KeyKind::Flow, old, id);
        }
        idx.add_key(KeyKind::Flow, &seg.flow, id);
        trace.flow_name = Some(seg.flow.clone());
    }
    trace.entry = seg.entry;
    trace.entry_step = seg.entry_step.clone();
    trace.attributes = seg.attributes.clone();
    if !Arc::ptr_eq(&trace.origin, &seg.origin) {
        trace.origin = Arc::clone(&seg.origin);
    }
    let start = trace
        .segments
        .iter()
        .filter(|s| s.started)
        .map(|s| s.start_ns)
        .min()
        .unwrap_or(trace.start_ns);
    idx.start_moved(id, trace.correlation_id.as_deref(), trace.start_ns, start);
    trace.start_ns = start;
    trace.started = true;
}

/// Recomputes the trace's end from its segments: over when every segment ended.
fn settle(trace: &mut Trace, idx: &mut dyn IndexUpdates) -> bool {
    if trace
        .segments
        .iter()
        .any(|s| s.status == TraceStatus::Running)
    {
        if trace.status != TraceStatus::Running {
            // A late segment reopened a finished trace.
            set_status(trace, idx, TraceStatus::Running);
            trace.end_ns = None;
            trace.failure_reason = None;
            trace.error = None;
        }
        return false;
    }
    let failed = trace
        .segments
        .iter()
        .position(|s| s.status == TraceStatus::Failed);
    let status = if failed.is_some() {
        TraceStatus::Failed
    } else {
        TraceStatus::Completed
    };
    set_status(trace, idx, status);
    trace.end_ns = trace.segments.iter().filter_map(|s| s.end_ns).max();
    trace.failure_reason = failed.map(|_| "error");
    let primary_error = primary(trace).and_then(|p| trace.segments[p].error.clone());
    trace.error = primary_error.or_else(|| failed.and_then(|f| trace.segments[f].error.clone()));
    true
}

/// Applies one event (already routed to `trace` by its trace id, sent by `origin`) within
/// `caps`.
pub fn apply(
    trace: &mut Trace,
    idx: &mut dyn IndexUpdates,
    origin: &Arc<Origin>,
    event: Event,
    now_ns: u64,
    caps: &TraceCaps,
) -> Applied {
    let id = trace.id;
    trace.last_activity_ns = now_ns;
    if !admit(trace, &event, caps) {
        return Applied::Nothing;
    }
    if let Some((t, end)) = event.times() {
        trace.last_event_ns = trace.last_event_ns.max(end);
        if !trace.started && t < trace.start_ns {
            idx.start_moved(id, trace.correlation_id.as_deref(), trace.start_ns, t);
            trace.start_ns = t;
        }
    }
    match event {
        Event::TraceStart(start) => {
            let seg = segment_for(trace, start.span, origin, start.t);
            {
                let segment = &mut trace.segments[seg];
                segment.remote_parent = start.remote_parent;
                if !Arc::ptr_eq(&segment.origin, origin) {
                    segment.origin = Arc::clone(origin);
                }
                // Interned: every run of a flow repeats its name and entry step.
                segment.flow = idx.intern(&start.flow);
                segment.entry = start.entry;
                segment.entry_step = start.step.map(|step| idx.intern(&step));
                segment.attributes = start.attrs.map(Box::new);
                segment.start_ns = start.t;
                segment.started = true;
            }
            idx.add_key(KeyKind::Service, &origin.service, id);
            // Steps that arrived before this start hang under the segment's span: adopt them.
            if let Some(span) = start.span {
                for step in trace.steps.iter_mut().filter(|s| s.parent == Some(span)) {
                    step.parent = None;
                    step.segment = seg as u16;
                }
            }
            if primary(trace) == Some(seg) {
                if start.parent.is_some() {
                    trace.parent_trace = start.parent;
                }
                trace.sampled = start.flags.map(|f| f & 1 == 1);
                adopt_primary(trace, idx, seg);
            } else if start.t < trace.start_ns {
                idx.start_moved(id, trace.correlation_id.as_deref(), trace.start_ns, start.t);
                trace.start_ns = start.t;
            }
            if let Some(cid) = start.cid {
                correlate(trace, idx, cid, CorrelationMethod::Manual, None);
            }
            settle(trace, idx);
            Applied::Nothing
        }
        Event::TraceEnd(end) => {
            // An end without a segment span closes the only segment there is (older SDKs).
            let only = match trace.segments.as_slice() {
                [only] => only.span,
                _ => None,
            };
            let span = end.span.or(only);
            let seg = segment_for(trace, span, origin, end.t);
            {
                let segment = &mut trace.segments[seg];
                segment.status = match end.status {
                    EndStatus::Completed => TraceStatus::Completed,
                    EndStatus::Failed => TraceStatus::Failed,
                };
                segment.end_ns = Some(end.t);
                segment.error = end.error;
            }
            // A call that never got its response (the client raised) ends with the segment.
            for step in trace.steps.iter_mut().filter(|s| {
                usize::from(s.segment) == seg
                    && s.kind == flowscope::wire::SpanKind::Client
                    && s.status == StepStatus::Running
            }) {
                step.status = StepStatus::Failed;
                step.end_ns = Some(end.t);
                step.error = Some(Box::new(flowscope::wire::ErrorInfo {
                    code: Some(NO_RESPONSE.into()),
                    ..flowscope::wire::ErrorInfo::new(
                        "the call got no response before its trace ended",
                    )
                }));
            }
            let trace_ended = settle(trace, idx);
            if trace_ended {
                // Most traces get no more steps once ended: return the list's spare slots (a
                // 176-byte slot each; three steps sit in room for four). One reallocation per
                // trace; shrinking every list here cost 12-15 % of ingest, this one does not.
                trace.steps.shrink_to_fit();
            }
            Applied::SegmentEnded {
                segment: seg as u16,
                trace_ended,
            }
        }
        Event::StepStart(start) => {
            // A top-level step names its segment's span as parent.
            let (parent, segment) = match start.parent.and_then(|p| trace.segment_by_span(p)) {
                Some(seg) => (None, Some(seg as u16)),
                None => (start.parent, None),
            };
            let (parent, depth, flattened) = place(trace, parent, caps.max_depth);
            if flattened {
                trace.truncated.depth = trace.truncated.depth.saturating_add(1);
            }
            let segment = segment
                .or_else(|| parent.and_then(|p| trace.step(p)).map(|p| p.segment))
                .unwrap_or_else(|| segment_by_origin(trace, origin));
            let (step, _) = trace.step_mut(start.span);
            step.start_ns = Some(start.t);
            step.parent = parent;
            step.depth = depth;
            step.segment = segment;
            step.kind = start.kind;
            merge_attributes(&mut step.attributes, start.attrs);
            if step.status == StepStatus::Waiting {
                step.status = StepStatus::Running;
            }
            // An empty start name never erases the name an earlier end gave.
            if !start.name.is_empty() {
                rename_step(step, idx, id, start.name);
            }
            Applied::Nothing
        }
        Event::StepEnd(end) => {
            let (step, _) = trace.step_mut(end.span);
            step.status = match end.status {
                EndStatus::Completed => StepStatus::Completed,
                EndStatus::Failed => StepStatus::Failed,
            };
            step.end_ns = Some(end.t);
            step.error = end.error;
            merge_attributes(&mut step.attributes, end.attrs);
            if step.name.is_empty()
                && let Some(name) = end.name
            {
                rename_step(step, idx, id, name);
            }
            Applied::StepEnded(end.span)
        }
        Event::Op(op) => {
            // Moved, not copied: decoded strings have no spare capacity, so boxing is free.
            let subject = op.subject;
            if let Some(subject) = subject.as_deref() {
                match op.kind {
                    OpKind::State => idx.add_key(KeyKind::StateKey, subject, id),
                    OpKind::Emit => idx.add_key(KeyKind::Topic, subject, id),
                    OpKind::Stream => {}
                }
            }
            let kind = op.kind;
            let operation = Operation {
                kind,
                action: op.action,
                ok: op.ok,
                start_ns: op.t,
                duration_ns: op.dur,
                subject: subject.map(|s| idx.intern(&s)),
                detail: op.detail.map(|s| idx.intern(&s)),
                error: op.error.map(ThinStr::from),
            };
            match op.span {
                Some(span) => {
                    let (step, _) = trace.step_mut(span);
                    step.counts.add(kind);
                    step.ops.push(operation);
                }
                None => trace.ops.push(operation),
            }
            Applied::Op(op.span)
        }
        Event::Correlate(c) => {
            correlate(trace, idx, c.cid, c.method, c.name);
            Applied::Nothing
        }
        Event::Dropped(dropped) => {
            trace.dropped_events = trace.dropped_events.saturating_add(dropped.n);
            Applied::Nothing
        }
        Event::Stats(_) | Event::Unknown => Applied::Nothing,
        other => {
            let span = step_event_span(&other);
            let llm = matches!(other, Event::Llm(_));
            match span {
                Some(span) => trace.step_mut(span).0.events.push(other),
                None => trace.events.push(other),
            }
            if llm {
                Applied::Llm(span)
            } else {
                Applied::Nothing
            }
        }
    }
}

/// Puts `trace` in the group `cid`, recording how.
pub fn correlate(
    trace: &mut Trace,
    idx: &mut dyn IndexUpdates,
    cid: String,
    method: CorrelationMethod,
    name: Option<String>,
) {
    // An automatic member that moves elsewhere frees its place in the old group's share.
    if trace.correlation_evidence.is_some()
        && trace.correlation_id.as_deref() != Some(cid.as_str())
        && let Some(old) = trace.correlation_id.as_deref()
    {
        idx.automatic_member_left(old);
    }
    idx.group_changed(
        trace.id,
        trace.start_ns,
        trace.correlation_id.as_deref(),
        &cid,
        name,
    );
    if trace.correlation_id.as_deref() != Some(cid.as_str()) {
        trace.correlation_id = Some(cid);
        trace.correlation_method = Some(method);
        // The store sets the evidence of an automatic link right after this.
        trace.correlation_evidence = None;
    } else if method == CorrelationMethod::Manual
        && trace.correlation_method == Some(CorrelationMethod::Header)
    {
        // The same group said both ways: a propagated header repeats what a service set by
        // hand, so the trace says `manual` whichever segment reported first.
        trace.correlation_method = Some(method);
    }
}

fn merge_attributes(
    into: &mut Option<Box<flowscope::wire::Attributes>>,
    more: Option<flowscope::wire::Attributes>,
) {
    if let Some(more) = more {
        match into {
            Some(existing) => existing.extend(more),
            // Boxed: most steps have none, and the box keeps their slot one word.
            None => *into = Some(Box::new(more)),
        }
    }
}

/// Marks a running trace failed because nothing arrived for too long; its running segments and
/// steps fail too.
pub fn abandon(trace: &mut Trace, idx: &mut dyn IndexUpdates) {
    set_status(trace, idx, TraceStatus::Failed);
    trace.failure_reason = Some(ABANDONED);
    trace.end_ns = Some(trace.last_event_ns);
    let last = trace.last_event_ns;
    for segment in trace
        .segments
        .iter_mut()
        .filter(|s| s.status == TraceStatus::Running)
    {
        segment.status = TraceStatus::Failed;
        segment.end_ns = Some(last);
    }
    for step in trace
        .steps
        .iter_mut()
        .filter(|s| s.status == StepStatus::Running)
    {
        step.status = StepStatus::Failed;
        step.end_ns = Some(trace.last_event_ns);
        step.error = Some(Box::new(flowscope::wire::ErrorInfo {
            code: Some(ABANDONED.into()),
            ..flowscope::wire::ErrorInfo::new("no events received before the abandon timeout")
        }));
    }
}

fn set_status(trace: &mut Trace, idx: &mut dyn IndexUpdates, status: TraceStatus) {
    idx.status_changed(trace.id, trace.status, status);
    trace.status = status;
}

fn rename_step(
    step: &mut Step,
    idx: &mut dyn IndexUpdates,
    id: flowscope::wire::TraceId,
    name: flowscope::wire::Name,
) {
    if step.name.as_str() != name {
        if !step.name.is_empty() {
            idx.remove_key(KeyKind::Step, &step.name, id);
        }
        idx.add_key(KeyKind::Step, &name, id);
        step.name = idx.intern(&name);
    }
}

fn step_event_span(event: &Event) -> Option<flowscope::wire::SpanId> {
    match event {
        Event::Log(e) => e.span,
        Event::Llm(e) => e.span,
        Event::Artifact(e) => e.span,
        Event::Retry(e) => e.span,
        Event::Checkpoint(e) => e.span,
        Event::Transition(e) => e.span,
        Event::Custom(e) => e.span,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowscope::wire::{
        EntryType, Event, SpanId, SpanKind, StepStart, TraceEnd, TraceId, TraceStart,
    };

    use super::*;
    use crate::store::index::Indexes;

    const TRACE: TraceId = TraceId(0xabc);

    fn origin(service: &str) -> Arc<Origin> {
        Arc::new(Origin::named(service))
    }

    fn start(t: u64, flow: &str, span: u64, remote: Option<u64>) -> Event {
        Event::TraceStart(Box::new(TraceStart {
            t,
            trace: TRACE,
            flow: flow.into(),
            entry: EntryType::Api,
            span: Some(SpanId(span)),
            remote_parent: remote.map(SpanId),
            ..TraceStart::default()
        }))
    }

    fn end(t: u64, span: u64) -> Event {
        Event::TraceEnd(TraceEnd {
            t,
            trace: TRACE,
            span: Some(SpanId(span)),
            ..TraceEnd::default()
        })
    }

    fn step(t: u64, span: u64, parent: u64, name: &str, kind: SpanKind) -> Event {
        Event::StepStart(StepStart {
            t,
            trace: TRACE,
            span: SpanId(span),
            parent: Some(SpanId(parent)),
            name: name.to_owned().into(),
            kind,
            attrs: None,
        })
    }

    fn run(events: Vec<(&Arc<Origin>, Event)>) -> Trace {
        let mut idx = Indexes::default();
        let first = events[0].0;
        let mut trace = Trace::new(TRACE, Arc::clone(first), 1, 1);
        idx.add_trace(&trace);
        for (origin, event) in events {
            apply(
                &mut trace,
                &mut idx,
                origin,
                event,
                1,
                &TraceCaps::default(),
            );
        }
        trace
    }

    #[test]
    fn a_callee_opens_a_segment_and_the_trace_ends_with_its_last_segment() {
        let (a, b) = (origin("a"), origin("b"));
        let trace = run(vec![
            (&a, start(10, "checkout", 1, None)),
            (&a, step(11, 2, 1, "call-b", SpanKind::Internal)),
            (&a, step(12, 3, 2, "POST", SpanKind::Client)),
            (&b, start(13, "inventory", 4, Some(3))),
            (&b, step(14, 5, 4, "reserve", SpanKind::Internal)),
            (&a, end(20, 1)),
        ]);
        assert_eq!(trace.segments.len(), 2);
        assert_eq!(
            trace.flow(),
            "checkout",
            "the root service describes the trace"
        );
        assert_eq!(trace.status, TraceStatus::Running, "b has not ended");
        let reserve = trace.step(SpanId(5)).unwrap();
        assert_eq!((reserve.parent, reserve.segment), (None, 1));
        assert_eq!(trace.service_of(reserve), "b");
        let call = trace.step(SpanId(3)).unwrap();
        assert_eq!(
            (call.parent, call.kind),
            (Some(SpanId(2)), SpanKind::Client)
        );
        assert_eq!(trace.services(), vec!["a", "b"]);
    }

    #[test]
    fn a_group_set_by_hand_stays_manual_when_a_callee_reports_the_header_first() {
        let (a, b) = (origin("a"), origin("b"));
        let correlate = |method| {
            Event::Correlate(flowscope::wire::Correlate {
                t: 12,
                trace: TRACE,
                cid: "order-7".into(),
                method,
                name: None,
            })
        };
        for events in [
            vec![
                (&b, correlate(CorrelationMethod::Header)),
                (&a, correlate(CorrelationMethod::Manual)),
            ],
            vec![
                (&a, correlate(CorrelationMethod::Manual)),
                (&b, correlate(CorrelationMethod::Header)),
            ],
        ] {
            let trace = run(events);
            assert_eq!(trace.correlation_id.as_deref(), Some("order-7"));
            assert_eq!(trace.correlation_method, Some(CorrelationMethod::Manual));
        }
    }

    #[test]
    fn the_root_service_wins_even_when_a_callee_reports_first() {
        let (a, b) = (origin("a"), origin("b"));
        let mut trace = run(vec![
            (&b, start(13, "inventory", 4, Some(3))),
            (&b, step(14, 5, 4, "reserve", SpanKind::Internal)),
            (&b, end(15, 4)),
        ]);
        assert_eq!(trace.flow(), "inventory");
        assert_eq!(trace.status, TraceStatus::Completed);
        let mut idx = Indexes::default();
        apply(
            &mut trace,
            &mut idx,
            &a,
            start(10, "checkout", 1, None),
            1,
            &TraceCaps::default(),
        );
        assert_eq!(trace.flow(), "checkout");
        assert_eq!(trace.origin.service, "a");
        assert_eq!(trace.start_ns, 10);
        assert_eq!(
            trace.status,
            TraceStatus::Running,
            "a late root reopens the trace"
        );
        apply(
            &mut trace,
            &mut idx,
            &a,
            end(30, 1),
            1,
            &TraceCaps::default(),
        );
        assert_eq!(
            (trace.status, trace.end_ns),
            (TraceStatus::Completed, Some(30))
        );
    }

    #[test]
    fn steps_that_overtake_their_segment_start_are_adopted() {
        let b = origin("b");
        let trace = run(vec![
            (&b, step(14, 5, 4, "reserve", SpanKind::Internal)),
            (&b, start(13, "inventory", 4, Some(3))),
        ]);
        let reserve = trace.step(SpanId(5)).unwrap();
        assert_eq!((reserve.parent, reserve.segment), (None, 0));
    }

    #[test]
    fn an_open_client_call_fails_when_its_segment_ends() {
        let a = origin("a");
        let trace = run(vec![
            (&a, start(10, "checkout", 1, None)),
            (&a, step(12, 3, 1, "GET", SpanKind::Client)),
            (&a, end(20, 1)),
        ]);
        let call = trace.step(SpanId(3)).unwrap();
        assert_eq!(call.status, StepStatus::Failed);
        assert_eq!(
            call.error.as_ref().and_then(|e| e.code.as_deref()),
            Some(NO_RESPONSE)
        );
    }

    fn step_end(t: u64, span: u64, name: Option<&str>, status: EndStatus) -> Event {
        Event::StepEnd(flowscope::wire::StepEnd {
            t,
            trace: TRACE,
            span: SpanId(span),
            status,
            error: (status == EndStatus::Failed)
                .then(|| Box::new(flowscope::wire::ErrorInfo::new("boom"))),
            name: name.map(|n| n.to_owned().into()),
            attrs: Some(
                [("http.response.status_code".to_owned(), 200.into())]
                    .into_iter()
                    .collect(),
            ),
        })
    }

    fn op_in(t: u64, span: u64, key: &str) -> Event {
        Event::Op(flowscope::wire::Op::new(
            OpKind::State,
            flowscope::wire::OpAction::Get,
            Some(key.to_owned().into()),
            None,
        ))
        .with_times(t, TRACE, Some(SpanId(span)))
    }

    trait WithTimes {
        fn with_times(self, t: u64, trace: TraceId, span: Option<SpanId>) -> Event;
    }

    impl WithTimes for Event {
        fn with_times(self, t: u64, trace: TraceId, span: Option<SpanId>) -> Event {
            match self {
                Event::Op(mut op) => {
                    op.t = t;
                    op.trace = trace;
                    op.span = span;
                    Event::Op(op)
                }
                other => other,
            }
        }
    }

    #[test]
    fn an_end_before_its_start_and_ops_before_their_step_merge_into_one_step() {
        let a = origin("a");
        let trace = run(vec![
            (&a, op_in(12, 2, "cart")),
            (&a, step_end(15, 2, Some("late-name"), EndStatus::Completed)),
            (&a, start(10, "checkout", 1, None)),
            (&a, step(11, 2, 1, "", SpanKind::Internal)),
            (&a, end(20, 1)),
        ]);
        assert_eq!(trace.steps.len(), 1, "one step, not three");
        let step = &trace.steps[0];
        // The end's name fills an empty start name; the start's time and the end's status win.
        assert_eq!(step.name, "late-name");
        assert_eq!((step.start_ns, step.end_ns), (Some(11), Some(15)));
        assert_eq!(step.status, StepStatus::Completed);
        assert_eq!(step.ops.len(), 1, "the early op stays with its step");
        assert_eq!(
            step.attributes
                .as_ref()
                .and_then(|a| a.get("http.response.status_code")),
            Some(&serde_json::Value::from(200)),
            "end attributes merge into the step's"
        );
        assert_eq!(trace.status, TraceStatus::Completed);
        assert_eq!(trace.start_ns, 10);
    }

    #[test]
    fn a_failed_end_fails_the_step_and_a_late_segment_reopens_a_finished_trace() {
        let (a, b) = (origin("a"), origin("b"));
        let mut events = vec![
            (&a, start(10, "checkout", 1, None)),
            (&a, step(11, 2, 1, "charge", SpanKind::Internal)),
            (&a, step_end(12, 2, None, EndStatus::Failed)),
            (&a, end(13, 1)),
        ];
        let finished = run(events.clone());
        assert_eq!(
            finished.status,
            TraceStatus::Completed,
            "a failed step alone does not fail the trace"
        );
        assert_eq!(finished.steps[0].status, StepStatus::Failed);
        assert_eq!(
            finished.steps[0].error.as_ref().map(|e| e.message.as_str()),
            Some("boom")
        );
        // Another service's segment arriving after the end: the trace runs again until it ends.
        events.push((&b, start(14, "notify", 7, Some(2))));
        let reopened = run(events.clone());
        assert_eq!(reopened.status, TraceStatus::Running);
        events.push((&b, end(16, 7)));
        let ended = run(events);
        assert_eq!(ended.status, TraceStatus::Completed);
        assert_eq!(ended.end_ns, Some(16));
    }
}
