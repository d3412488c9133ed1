//! Applies events to a trace, keeping the indexes in step. Events may arrive in any order:
//! an end before its start, operations before their step, anything before `trace_start`.

use flowscope::wire::{CorrelationMethod, EndStatus, Event, OpKind, SpanId};

use super::model::{Operation, Step, StepStatus, Trace, TraceStatus};
use crate::store::index::{Indexes, insert_key};

/// Why a trace failed when it stopped receiving events.
pub const ABANDONED: &str = "abandoned";

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
    /// The trace ended.
    TraceEnded,
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
    let known = |span: SpanId| trace.step_index.contains_key(&span);
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

/// Applies one event (already routed to `trace` by its trace id) within `caps`.
pub fn apply(
    trace: &mut Trace,
    idx: &mut Indexes,
    event: Event,
    now_ns: u64,
    caps: &TraceCaps,
) -> Applied {
    let id = trace.id;
    trace.last_activity_ns = now_ns;
    if !admit(trace, &event, caps) {
        return Applied::Nothing;
    }
    if let Some((t, end)) = event_times(&event) {
        trace.last_event_ns = trace.last_event_ns.max(end);
        if !trace.started && t < trace.start_ns {
            idx.move_start(id, trace.correlation_id.as_deref(), trace.start_ns, t);
            trace.start_ns = t;
        }
    }
    match event {
        Event::TraceStart(start) => {
            if trace.flow_name.as_deref() != Some(start.flow.as_str()) {
                if let Some(old) = &trace.flow_name {
                    crate::store::index::remove_key(&mut idx.flow, old, id);
                }
                insert_key(&mut idx.flow, &start.flow, id);
                trace.flow_name = Some(start.flow);
            }
            idx.move_start(id, trace.correlation_id.as_deref(), trace.start_ns, start.t);
            trace.start_ns = start.t;
            trace.started = true;
            trace.entry = start.entry;
            trace.entry_step = start.step;
            trace.parent_trace = start.parent;
            trace.attributes = start.attrs;
            if let Some(cid) = start.cid {
                correlate(trace, idx, cid, CorrelationMethod::Manual, None);
            }
            Applied::Nothing
        }
        Event::TraceEnd(end) => {
            let status = match end.status {
                EndStatus::Completed => TraceStatus::Completed,
                EndStatus::Failed => TraceStatus::Failed,
            };
            set_status(trace, idx, status);
            trace.failure_reason = (status == TraceStatus::Failed).then_some("error");
            trace.end_ns = Some(end.t);
            trace.error = end.error;
            Applied::TraceEnded
        }
        Event::StepStart(start) => {
            let (parent, depth, flattened) = place(trace, start.parent, caps.max_depth);
            if flattened {
                trace.truncated.depth = trace.truncated.depth.saturating_add(1);
            }
            let (step, _) = trace.step_mut(start.span);
            step.start_ns = Some(start.t);
            step.parent = parent;
            step.depth = depth;
            if step.status == StepStatus::Waiting {
                step.status = StepStatus::Running;
            }
            rename_step(step, idx, id, start.name);
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
            if step.name.is_empty()
                && let Some(name) = end.name
            {
                rename_step(step, idx, id, name);
            }
            Applied::StepEnded(end.span)
        }
        Event::Op(mut op) => {
            // Moved, not copied: decoded strings have no spare capacity, so boxing is free.
            let subject = match op.kind {
                OpKind::State => op.key.take(),
                OpKind::Emit => op.topic.take(),
                OpKind::Stream => op.stream.take(),
            };
            if let Some(subject) = subject.as_deref() {
                match op.kind {
                    OpKind::State => insert_key(&mut idx.state_key, subject, id),
                    OpKind::Emit => insert_key(&mut idx.topic, subject, id),
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
                subject: subject.map(String::into_boxed_str),
                detail: match kind {
                    OpKind::Emit => op.to.map(String::into_boxed_str),
                    _ => op.id.map(String::into_boxed_str),
                },
                error: op.error.map(String::into_boxed_str),
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
    idx: &mut Indexes,
    cid: String,
    method: CorrelationMethod,
    name: Option<String>,
) {
    idx.set_group(
        trace.id,
        trace.start_ns,
        trace.correlation_id.as_deref(),
        &cid,
        name,
    );
    if trace.correlation_id.as_deref() != Some(cid.as_str()) {
        trace.correlation_id = Some(cid);
        trace.correlation_method = Some(method);
    }
}

/// Marks a running trace failed because nothing arrived for too long; its running steps fail too.
pub fn abandon(trace: &mut Trace, idx: &mut Indexes) {
    set_status(trace, idx, TraceStatus::Failed);
    trace.failure_reason = Some(ABANDONED);
    trace.end_ns = Some(trace.last_event_ns);
    for step in trace
        .steps
        .iter_mut()
        .filter(|s| s.status == StepStatus::Running)
    {
        step.status = StepStatus::Failed;
        step.end_ns = Some(trace.last_event_ns);
        step.error = Some(flowscope::wire::ErrorInfo {
            code: Some(ABANDONED.into()),
            ..flowscope::wire::ErrorInfo::new("no events received before the abandon timeout")
        });
    }
}

fn set_status(trace: &mut Trace, idx: &mut Indexes, status: TraceStatus) {
    idx.set_status(trace.id, trace.status, status);
    trace.status = status;
}

fn rename_step(step: &mut Step, idx: &mut Indexes, id: flowscope::wire::TraceId, name: String) {
    if step.name != name {
        if !step.name.is_empty() {
            crate::store::index::remove_key(&mut idx.step, &step.name, id);
        }
        insert_key(&mut idx.step, &name, id);
        step.name = name;
    }
}

/// (start, end) of an event, unix ns.
pub fn event_times(event: &Event) -> Option<(u64, u64)> {
    let t = match event {
        Event::TraceStart(e) => e.t,
        Event::TraceEnd(e) => e.t,
        Event::StepStart(e) => e.t,
        Event::StepEnd(e) => e.t,
        Event::Op(e) => return Some((e.t, e.t.saturating_add(e.dur))),
        Event::Log(e) => e.t,
        Event::Llm(e) => return Some((e.t, e.t.saturating_add(e.dur))),
        Event::Artifact(e) => e.t,
        Event::Retry(e) => e.t,
        Event::Checkpoint(e) => e.t,
        Event::Transition(e) => e.t,
        Event::Correlate(e) => e.t,
        Event::Custom(e) => e.t,
        Event::Stats(_) | Event::Unknown => return None,
    };
    Some((t, t))
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
