//! Query-string parsing for the trace list: every parameter validated, unknown ones refused.

use flowscope::wire::TraceId;

use super::error::ApiError;
use crate::store::{Cursor, TraceQuery};
use crate::trace::TraceStatus;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = 1000;

/// Splits a raw query string into pairs.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_param("query", e.to_string()))
}

fn non_empty(name: &str, value: String) -> Result<String, ApiError> {
    if value.is_empty() {
        Err(ApiError::bad_param(name, "must not be empty"))
    } else {
        Ok(value)
    }
}

/// Parses unix milliseconds into unix nanoseconds.
pub fn millis(name: &str, value: &str) -> Result<u64, ApiError> {
    let ms: u64 = value.parse().map_err(|_| {
        ApiError::bad_param(
            name,
            format!("expected milliseconds as a non-negative integer, got `{value}`"),
        )
    })?;
    ms.checked_mul(1_000_000)
        .ok_or_else(|| ApiError::bad_param(name, "out of range"))
}

/// Parses the trace list parameters (see the README's API table).
pub fn trace_query(raw: Option<&str>) -> Result<TraceQuery, ApiError> {
    let mut q = TraceQuery {
        limit: DEFAULT_LIMIT,
        ..TraceQuery::default()
    };
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs(raw)? {
        if !seen.insert(name.clone()) {
            return Err(ApiError::bad_param(&name, "given more than once"));
        }
        let n = name.as_str();
        match n {
            "flow" => q.flow = Some(non_empty(n, value)?),
            "step" => q.step = Some(non_empty(n, value)?),
            "stateKey" => q.state_key = Some(non_empty(n, value)?),
            "topic" => q.topic = Some(non_empty(n, value)?),
            "correlationId" => q.correlation_id = Some(non_empty(n, value)?),
            "service" => q.service = Some(non_empty(n, value)?),
            "q" => q.text = Some(non_empty(n, value)?.to_lowercase()),
            "status" => {
                q.status = Some(TraceStatus::parse(&value).ok_or_else(|| {
                    ApiError::bad_param(
                        n,
                        format!("expected running, completed or failed, got `{value}`"),
                    )
                })?)
            }
            "since" => q.since_ns = Some(millis(n, &value)?),
            "until" => q.until_ns = Some(millis(n, &value)?.saturating_add(999_999)),
            "minDuration" => q.min_duration_ns = Some(millis(n, &value)?),
            "maxDuration" => q.max_duration_ns = Some(millis(n, &value)?.saturating_add(999_999)),
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_param(
                            n,
                            format!("expected an integer from 1 to {MAX_LIMIT}, got `{value}`"),
                        )
                    })?
            }
            "cursor" => {
                q.cursor = Some(Cursor::decode(&value).ok_or_else(|| {
                    ApiError::bad_param(n, "not a cursor returned by this API (nextCursor)")
                })?)
            }
            _ => {
                return Err(ApiError::bad_param(
                    n,
                    "unknown parameter; expected one of flow, service, status, step, stateKey, topic, \
                     correlationId, q, since, until, minDuration, maxDuration, limit, cursor",
                ));
            }
        }
    }
    if let (Some(since), Some(until)) = (q.since_ns, q.until_ns)
        && since > until
    {
        return Err(ApiError::bad_param("since", "must not be after `until`"));
    }
    Ok(q)
}

/// Parses a trace id from a path segment.
pub fn trace_id(value: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(value).map_err(|e| ApiError::BadId {
        what: "trace id",
        value: value.to_owned(),
        message: e.to_string(),
    })
}

/// A snapshot of one trace with what its renders need from the store.
pub struct TraceView {
    /// The trace, as it was when the request looked.
    pub trace: std::sync::Arc<crate::trace::Trace>,
    /// Its position in its group.
    pub index: Option<usize>,
    /// Its root span's links (parent trace, previous member of its group).
    pub links: crate::export::mapping::RootLinks,
}

/// Looks up the trace a path names, snapshots it under the store's read lock, and renders it
/// after the lock is released, on a blocking thread (bounded in number), so a huge trace holds
/// up neither ingest nor `/healthz`. `what` names the thing in a 404 ("trace", "execution").
pub async fn render_trace(
    state: &std::sync::Arc<crate::AgentState>,
    id: &str,
    what: &'static str,
    render: impl FnOnce(&TraceView) -> Result<axum::response::Response, ApiError> + Send + 'static,
) -> Result<axum::response::Response, ApiError> {
    let trace_id = trace_id(id)?;
    let in_memory = {
        let store = state.store.read();
        store.snapshot(trace_id).map(|trace| TraceView {
            index: store.trace_index(&trace),
            links: store.root_links(&trace),
            trace,
        })
    };
    let not_found = || ApiError::NotFound {
        what,
        id: id.to_owned(),
    };
    let view = match in_memory {
        Some(view) => view,
        // No longer in memory: rebuilt from the journal when it is there.
        None if state.persist.get().is_some() => {
            let loader = std::sync::Arc::clone(state);
            let caps = state.store.read().caps();
            let trace = state
                .render_off_lock(move || loader.persist.get().and_then(|p| p.load(trace_id, caps)))
                .await?
                .ok_or_else(not_found)?;
            TraceView {
                index: None,
                links: crate::export::mapping::RootLinks::default(),
                trace,
            }
        }
        None => return Err(not_found()),
    };
    state.render_off_lock(move || render(&view)).await?
}

/// The `view` parameter of `GET /api/traces/{id}` (`full`, the default, or `timeline`).
pub fn trace_view(raw: Option<&str>) -> Result<super::shapes::View, ApiError> {
    let mut view = super::shapes::View::Full;
    for (name, value) in pairs(raw)? {
        match (name.as_str(), value.as_str()) {
            ("view", "full") => view = super::shapes::View::Full,
            ("view", "timeline") => view = super::shapes::View::Timeline,
            ("view", other) => {
                return Err(ApiError::bad_param(
                    "view",
                    format!("expected full or timeline, got `{other}`"),
                ));
            }
            (other, _) => {
                return Err(ApiError::bad_param(
                    other,
                    "unknown parameter; expected view",
                ));
            }
        }
    }
    Ok(view)
}

/// Refuses any query parameter (for endpoints that take none).
pub fn none(raw: Option<&str>) -> Result<(), ApiError> {
    match pairs(raw)?.into_iter().next() {
        Some((name, _)) => Err(ApiError::bad_param(
            &name,
            "this endpoint takes no parameters",
        )),
        None => Ok(()),
    }
}
