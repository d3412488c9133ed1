//! `GET /api/traces` (filtered, paginated list) and `GET /api/traces/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;

/// The trace list, newest first: `{traces, nextCursor}`.
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = params::trace_query(raw.as_deref())?;
    let store = state.store.read();
    let page = store.query(&query);
    let traces: Vec<_> = page
        .traces
        .iter()
        .map(|t| shapes::trace_summary(&store, t))
        .collect();
    Ok(
        Json(json!({ "traces": traces, "nextCursor": page.next.map(|c| c.encode()) }))
            .into_response(),
    )
}

/// One trace with its steps, operations and events.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::render_trace(&state, &id, raw.as_deref(), "trace", |store, trace| {
        Json(shapes::trace_full(store, trace)).into_response()
    })
}
