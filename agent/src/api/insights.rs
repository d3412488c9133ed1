//! `GET /api/flows/{flow}/insights` (per-step percentiles, bottleneck, operations, state keys,
//! LLM usage over a flow's stored runs) and `GET /api/compare?a=&b=` (two traces step by step).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::params;
use crate::AgentState;

/// Insights over the stored runs of `flow`, optionally those started in `since..=until` (unix ms).
pub async fn flow(
    State(state): State<Arc<AgentState>>,
    Path(flow): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut since, mut until) = (None, None);
    for (name, value) in params::pairs(raw.as_deref())? {
        match name.as_str() {
            "since" => since = Some(params::millis("since", &value)?),
            "until" => until = Some(params::millis("until", &value)?.saturating_add(999_999)),
            _ => {
                return Err(ApiError::bad_param(
                    &name,
                    "unknown parameter; expected since or until",
                ));
            }
        }
    }
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(ApiError::bad_param("since", "must not be after `until`"));
    }
    let members = {
        let store = state.store.read();
        if !store.indexes().flow.contains_key(flow.as_str()) {
            return Err(ApiError::NotFound {
                what: "flow",
                id: flow,
            });
        }
        store.flow_members(&flow)
    };
    state
        .render_off_lock(move || {
            let runs = members.iter().map(|t| &**t).filter(|t| {
                since.is_none_or(|s| t.start_ns >= s) && until.is_none_or(|u| t.start_ns <= u)
            });
            Json(crate::insights::flow_insights(&flow, runs)).into_response()
        })
        .await
}

/// Two traces compared step by step (`a` and `b` are trace ids).
pub async fn compare(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut a, mut b) = (None, None);
    for (name, value) in params::pairs(raw.as_deref())? {
        match name.as_str() {
            "a" => a = Some(params::trace_id(&value).map_err(|_| bad_trace("a", &value))?),
            "b" => b = Some(params::trace_id(&value).map_err(|_| bad_trace("b", &value))?),
            _ => {
                return Err(ApiError::bad_param(
                    &name,
                    "unknown parameter; expected a and b",
                ));
            }
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return Err(ApiError::bad_param(
            if a.is_none() { "a" } else { "b" },
            "required: the trace ids to compare",
        ));
    };
    let (ta, tb) = {
        let store = state.store.read();
        let find = |id| {
            store.snapshot(id).ok_or_else(|| ApiError::NotFound {
                what: "trace",
                id: id.to_string(),
            })
        };
        (find(a)?, find(b)?)
    };
    state
        .render_off_lock(move || {
            let comparison = crate::insights::compare(&ta, &tb);
            let side = |t: &crate::trace::Trace| {
                serde_json::json!({
                    "id": t.id,
                    "flowName": t.flow(),
                    "status": t.status.as_str(),
                    "startTime": super::shapes::unix_ms(t.start_ns),
                    "duration": t.duration_ns().map(super::shapes::ms),
                })
            };
            let mut body = serde_json::to_value(&comparison).unwrap_or_default();
            body["a"] = side(&ta);
            body["b"] = side(&tb);
            Json(body).into_response()
        })
        .await
}

fn bad_trace(name: &str, value: &str) -> ApiError {
    ApiError::bad_param(
        name,
        format!("expected a trace id (32 hex digits), got `{value}`"),
    )
}
