//! `GET /api/groups` and `GET /api/groups/{id}`: traces linked by a correlation id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;

/// Every group, most recently active first (summaries, no member list).
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let store = state.store.read();
    let stall = state.config.stall_after.as_nanos() as u64;
    let groups: Vec<_> = store
        .groups(flowscope::now_nanos(), stall)
        .iter()
        .map(|g| shapes::group_json(&store, g, false))
        .collect();
    Ok(Json(json!({ "groups": groups })).into_response())
}

/// One group with its traces in time order and the gaps between them.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let store = state.store.read();
    let stall = state.config.stall_after.as_nanos() as u64;
    let group = store
        .group(&id, flowscope::now_nanos(), stall)
        .ok_or_else(|| ApiError::NotFound {
            what: "group",
            id: id.clone(),
        })?;
    Ok(Json(shapes::group_json(&store, &group, true)).into_response())
}
