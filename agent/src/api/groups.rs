//! `GET /api/groups` and `GET /api/groups/{id}`: traces linked by a correlation id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;
use crate::trace::group::summarize;

/// Every group, most recently active first (summaries, no member list): `{groups, seq}`, `seq`
/// as in the trace list (the live stream's last event number before the store was read).
pub async fn list(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let seq = state.live.current_seq();
    let members = state.store.read().all_group_members();
    let stall = state.config.stall_after.as_nanos() as u64;
    state
        .render_off_lock(move || {
            let now = flowscope::now_nanos();
            let mut groups: Vec<_> = members
                .into_iter()
                .map(|m| summarize(m, now, stall))
                .collect();
            groups.sort_by(|a, b| {
                b.last_activity_ns
                    .cmp(&a.last_activity_ns)
                    .then_with(|| a.id.cmp(&b.id))
            });
            let groups: Vec<_> = groups
                .iter()
                .map(|g| shapes::group_json(g, false))
                .collect();
            Json(json!({ "groups": groups, "seq": seq })).into_response()
        })
        .await
}

/// One group with its traces in time order and the gaps between them.
pub async fn get(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    params::none(raw.as_deref())?;
    let members = state
        .store
        .read()
        .group_members(&id)
        .ok_or_else(|| ApiError::NotFound {
            what: "group",
            id: id.clone(),
        })?;
    let stall = state.config.stall_after.as_nanos() as u64;
    state
        .render_off_lock(move || {
            let group = summarize(members, flowscope::now_nanos(), stall);
            Json(shapes::group_json(&group, true)).into_response()
        })
        .await
}
