//! `GET /metrics` (OpenMetrics text) and the middleware timing every API route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AgentState;
use crate::telemetry::RouteLabels;

/// Every metric, with scrape-time gauges refreshed.
pub async fn metrics(State(state): State<Arc<AgentState>>) -> Response {
    let _ = state.store.read().counters(); // refreshes the stored-traces gauge
    let m = &state.metrics;
    m.live_subscribers.set(state.live.subscribers() as i64);
    m.live_dropped_clients.set(
        state
            .live
            .dropped_clients
            .load(std::sync::atomic::Ordering::Relaxed) as i64,
    );
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], m.encode()).into_response()
}

/// Observes each request's latency under its route pattern and status.
pub async fn track_latency(
    State(state): State<Arc<AgentState>>,
    request: Request,
    next: Next,
) -> Response {
    // `/api/traces/{id}` is labelled `/api/traces/:id`: braces inside label values trip some parsers.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |m| {
            m.as_str().replace('{', ":").replace('}', "")
        });
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RouteLabels {
        route,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .api
        .request_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
