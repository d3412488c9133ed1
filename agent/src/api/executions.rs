//! `GET /api/executions/{executionId}/trace`: the hierarchical root/children shape of the Orcheo
//! workflow-tracing design. The execution id is the trace id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
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

fn node(step: &Step, trace: &Trace, children_of: &HashMap<Option<SpanId>, Vec<&Step>>) -> Value {
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
                    prompt_tokens += llm.input_tokens.unwrap_or(0);
                    completion_tokens += llm.output_tokens.unwrap_or(0);
                }
            }
            Event::Artifact(a) => artifacts
                .push(json!({"name": a.name, "url": a.url, "mime": a.mime, "size": a.size})),
            _ => {}
        }
    }
    let children: Vec<Value> = children_of
        .get(&Some(step.id))
        .map(|kids| kids.iter().map(|k| node(k, trace, children_of)).collect())
        .unwrap_or_default();
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
        "children": children,
    })
}

/// The execution tree.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    params::render_trace(&state, &id, "execution", |_, trace| {
        Ok(Json(execution_tree(&id, trace)).into_response())
    })
}

/// The `{execution_id, trace_id, root: {…, children}}` document.
fn execution_tree(id: &str, trace: &Trace) -> Value {
    let mut children_of: HashMap<Option<SpanId>, Vec<&Step>> = HashMap::new();
    for step in trace.steps_in_time_order() {
        // A parent we never heard of makes the step a root child.
        let parent = step.parent.filter(|p| trace.step(*p).is_some());
        children_of.entry(parent).or_default().push(step);
    }
    let roots: Vec<Value> = children_of
        .get(&None)
        .map(|kids| kids.iter().map(|k| node(k, trace, &children_of)).collect())
        .unwrap_or_default();
    json!({
        "execution_id": id,
        "trace_id": trace.id,
        "root": {
            "name": format!("flow {}", trace.flow()),
            "status": otel_status(trace.status == TraceStatus::Failed, trace.status == TraceStatus::Running),
            "start_time": shapes::unix_ms(trace.start_ns),
            "duration_ms": trace.duration_ns().map(shapes::ms),
            "attributes": trace.attributes,
            "error": trace.error,
            "children": roots,
        },
        "dashboards": {},
    })
}
