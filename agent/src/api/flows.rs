//! `GET /api/flows`: live status of every flow.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::params;
use crate::AgentState;

/// `{flows: [FlowStatus], seq}` sorted by name; `seq` as in the trace list (the live stream's
/// last event number before the store was read).
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let seq = state.live.current_seq();
    let flows = state.store.read().flows();
    Ok(Json(json!({ "flows": flows, "seq": seq })).into_response())
}
