//! `GET /api/executions/{executionId}/trace`: the hierarchical root/children shape of the Orcheo
//! workflow-tracing design. The execution id is the trace id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use flowscope::wire::{Event, SpanId};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;
use crate::trace::{Step, StepStatus, Trace, TraceStatus};

fn otel_status(failed: bool, running: bool) -> &'static str {
    if failed {
        "ERROR"
    } else if running {
        "UNSET"
    } else {
        "OK"
    }
}

/// A node's own fields (everything but `children`).
fn node_fields(step: &Step, trace: &Trace) -> Value {
    let (start, duration) = shapes::step_timing(step, trace.start_ns);
    let mut prompts = Vec::new();
    let mut responses = Vec::new();
    let mut artifacts = Vec::new();
    let (mut prompt_tokens, mut completion_tokens, mut has_tokens) = (0u64, 0u64, false);
    for event in &step.events {
        match event {
            Event::Llm(llm) => {
                prompts.extend(llm.prompt.clone());
                responses.extend(llm.response.clone());
                if llm.input_tokens.is_some() || llm.output_tokens.is_some() {
                    has_tokens = true;
                    prompt_tokens = prompt_tokens.saturating_add(llm.input_tokens.unwrap_or(0));
                    completion_tokens =
                        completion_tokens.saturating_add(llm.output_tokens.unwrap_or(0));
                }
            }
            Event::Artifact(a) => artifacts
                .push(json!({"name": a.name, "url": a.url, "mime": a.mime, "size": a.size})),
            _ => {}
        }
    }
    json!({
        "name": step.name,
        "span_id": step.id,
        "status": otel_status(step.status == StepStatus::Failed, step.status == StepStatus::Running),
        "start_ms": start,
        "duration_ms": duration,
        "operations": {"state": step.counts.state, "emit": step.counts.emit, "stream": step.counts.stream},
        "token_usage": has_tokens.then(|| json!({"prompt": prompt_tokens, "completion": completion_tokens})),
        "prompts": prompts,
        "responses": responses,
        "artifacts": artifacts,
        "error": step.error,
    })
}

/// Appends a JSON object without its closing brace, then `,"children":[`.
fn open_object(out: &mut Vec<u8>, fields: &Value) {
    let start = out.len();
    let _ = serde_json::to_writer(&mut *out, fields);
    if out.len() > start && out.last() == Some(&b'}') {
        out.pop();
        if out.len() > start + 1 {
            out.push(b',');
        }
    }
    out.extend_from_slice(br#""children":["#);
}

/// Writes the step forest as nested `children` arrays without recursion: one pass over the
/// steps, each written once. Steps deeper than `max_depth` (possible only through out-of-order
/// parents) and steps on a parent cycle are written at the top level instead.
fn write_children(out: &mut Vec<u8>, trace: &Trace, max_depth: usize) {
    let steps = trace.steps_in_time_order();
    let position: HashMap<SpanId, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    let mut roots = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        // A parent we never heard of makes the step a root child.
        match step.parent.and_then(|p| position.get(&p)) {
            Some(&parent) => children[parent].push(i),
            None => roots.push(i),
        }
    }
    let mut written = vec![false; steps.len()];
    let mut first_top = true;
    let mut pending_tops: Vec<usize> = Vec::new();
    let mut top = 0;
    let mut next_unwritten = 0;
    loop {
        // The next top-level node: a root, then anything pushed down past the depth limit,
        // then anything unreachable (a parent cycle).
        let node = if top < roots.len() {
            top += 1;
            roots[top - 1]
        } else if let Some(node) = pending_tops.pop() {
            node
        } else {
            while next_unwritten < steps.len() && written[next_unwritten] {
                next_unwritten += 1;
            }
            if next_unwritten == steps.len() {
                break;
            }
            next_unwritten
        };
        if written[node] {
            continue;
        }
        if !first_top {
            out.push(b',');
        }
        first_top = false;
        written[node] = true;
        open_object(out, &node_fields(steps[node], trace));
        // (children of the node on top, next child to visit)
        let mut stack: Vec<(usize, usize)> = vec![(node, 0)];
        while let Some(frame) = stack.last_mut() {
            let (parent, next) = *frame;
            let kids = &children[parent];
            if next == kids.len() {
                out.extend_from_slice(b"]}");
                stack.pop();
                continue;
            }
            frame.1 += 1;
            let child = kids[next];
            if written[child] {
                continue;
            }
            if stack.len() >= max_depth {
                pending_tops.push(child);
                continue;
            }
            if out.last() == Some(&b'}') {
                out.push(b',');
            }
            written[child] = true;
            open_object(out, &node_fields(steps[child], trace));
            stack.push((child, 0));
        }
    }
}

/// The execution tree.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let max_depth = usize::from(state.config.limits.max_depth);
    let execution_id = id.clone();
    params::render_trace(&state, &id, "execution", move |v| {
        let body = execution_tree(&execution_id, &v.trace, max_depth);
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    })
    .await
}

/// The `{execution_id, trace_id, root: {…, children}, dashboards}` document, written without
/// recursion; nesting stops at `max_depth` (deeper steps are written at the top level).
pub fn execution_tree(id: &str, trace: &Trace, max_depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + trace.steps.len() * 256);
    let head = json!({"execution_id": id, "trace_id": trace.id});
    let _ = serde_json::to_writer(&mut out, &head);
    out.pop(); // `}`
    out.extend_from_slice(br#","root":"#);
    let root = json!({
        "name": format!("flow {}", trace.flow()),
        "status": otel_status(trace.status == TraceStatus::Failed, trace.status == TraceStatus::Running),
        "start_time": shapes::unix_ms(trace.start_ns),
        "duration_ms": trace.duration_ns().map(shapes::ms),
        "attributes": trace.attributes,
        "error": trace.error,
        "truncated": shapes::truncation(&trace.truncated),
    });
    open_object(&mut out, &root);
    write_children(&mut out, trace, max_depth.max(1));
    out.extend_from_slice(br#"]},"dashboards":{}}"#);
    out
}
