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
    params::none(raw.as_deref())?;
    let trace_id = params::trace_id(&id)?;
    let store = state.store.read();
    let trace = store
        .peek(trace_id)
        .ok_or(ApiError::NotFound { what: "trace", id })?;
    Ok(Json(shapes::trace_full(&store, trace)).into_response())
}
