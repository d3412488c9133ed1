//! `GET /motia/traces` and `GET /motia/traces/{id}`: exactly the Motia RFC `Trace` shape.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;
use crate::trace::Trace;

/// The RFC `Trace` object.
pub fn motia_trace(trace: &Trace, trace_index: Option<usize>) -> Value {
    // The RFC's steps are workflow steps: outgoing-call spans are left out.
    let steps: Vec<Value> = trace
        .steps_in_time_order()
        .into_iter()
        .filter(|step| step.kind == flowscope::wire::SpanKind::Internal)
        .map(|step| {
            let (start, duration) = shapes::step_timing(step, trace.start_ns);
            let mut out = Map::new();
            out.insert("name".into(), json!(step.name));
            out.insert("status".into(), json!(step.status.as_str()));
            if let Some(start) = start {
                out.insert("startTime".into(), json!(start));
            }
            if let Some(duration) = duration {
                out.insert("duration".into(), json!(duration));
            }
            out.insert(
                "operations".into(),
                json!({"state": step.counts.state, "emit": step.counts.emit, "stream": step.counts.stream}),
            );
            if let Some(error) = &step.error {
                let mut e = Map::new();
                e.insert("message".into(), json!(error.message));
                if let Some(code) = &error.code {
                    e.insert("code".into(), json!(code));
                }
                out.insert("error".into(), Value::Object(e));
            }
            Value::Object(out)
        })
        .collect();
    let mut out = Map::new();
    out.insert("id".into(), json!(trace.id));
    if let Some(cid) = &trace.correlation_id {
        out.insert("correlationId".into(), json!(cid));
    }
    if let Some(parent) = trace.parent_trace {
        out.insert("parentTraceId".into(), json!(parent));
    }
    out.insert("flowName".into(), json!(trace.flow()));
    out.insert("status".into(), json!(trace.status.as_str()));
    out.insert("startTime".into(), json!(shapes::unix_ms(trace.start_ns)));
    if let Some(d) = trace.duration_ns() {
        out.insert("duration".into(), json!(shapes::ms(d)));
    }
    let step_name = trace
        .entry_step
        .as_deref()
        .or_else(|| trace.steps_in_time_order().first().map(|s| s.name.as_str()))
        .unwrap_or_default();
    out.insert(
        "entryPoint".into(),
        json!({"type": trace.entry, "stepName": step_name}),
    );
    out.insert("steps".into(), Value::Array(steps));
    let mut meta = Map::new();
    meta.insert("totalSteps".into(), json!(trace.steps.len()));
    meta.insert("completedSteps".into(), json!(trace.completed_steps()));
    meta.insert("errorCount".into(), json!(trace.error_count()));
    if let Some(index) = trace_index {
        meta.insert("traceIndex".into(), json!(index));
        meta.insert(
            "isChildTrace".into(),
            json!(index > 0 || trace.parent_trace.is_some()),
        );
    }
    out.insert("metadata".into(), Value::Object(meta));
    Value::Object(out)
}

/// An array of RFC traces, newest first; accepts the `/api/traces` filters.
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = params::trace_query(raw.as_deref())?;
    let store = state.store.read();
    let page = store.query(&query);
    let traces: Vec<Value> = page
        .traces
        .iter()
        .map(|t| motia_trace(t, store.trace_index(t)))
        .collect();
    Ok(Json(traces).into_response())
}

/// One RFC trace.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    params::render_trace(&state, &id, "trace", |v| {
        Ok(Json(motia_trace(&v.trace, v.index)).into_response())
    })
    .await
}
