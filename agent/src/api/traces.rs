//! `GET /api/traces` (filtered, paginated list) and `GET /api/traces/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;

/// The trace list, newest first: `{traces, nextCursor, seq}`. `seq` is the live stream's last
/// sequence number before the store was read: a stream event with a higher one may be newer than
/// the page, one with a lower or equal one is not.
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = params::trace_query(raw.as_deref())?;
    let seq = state.live.current_seq();
    let store = state.store.read();
    let page = store.query(&query);
    let traces: Vec<_> = page
        .traces
        .iter()
        .map(|t| shapes::trace_summary(t, store.trace_index(t)))
        .collect();
    // Summaries are bounded (50 step names each), so a page renders under the lock.
    Ok(
        Json(json!({ "traces": traces, "nextCursor": page.next.map(|c| c.encode()), "seq": seq }))
            .into_response(),
    )
}

/// One trace with its steps, operations and events.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let view = params::trace_view(raw.as_deref())?;
    params::render_trace(&state, &id, "trace", move |v| {
        Ok(Json(shapes::trace_full(&v.trace, v.index, view)).into_response())
    })
    .await
}

/// One step with its operations and events (`GET /api/traces/{id}/steps/{spanId}`).
pub async fn step(
    State(state): State<Arc<AgentState>>,
    Path((id, span)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let span_id = flowscope::wire::SpanId::from_hex(&span).map_err(|e| ApiError::BadId {
        what: "span id",
        value: span.clone(),
        message: e.to_string(),
    })?;
    params::render_trace(&state, &id, "trace", move |v| {
        let step = v.trace.step(span_id).ok_or_else(|| ApiError::NotFound {
            what: "step",
            id: span.clone(),
        })?;
        Ok(Json(shapes::step_json(&v.trace, step, shapes::View::Full)).into_response())
    })
    .await
}
