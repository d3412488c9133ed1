//! The HTTP API: trace and group queries, the Motia RFC and execution-tree shapes, health.

mod error;
mod executions;
mod export;
mod flows;
mod groups;
pub mod guard;
mod health;
mod insights;
mod metrics;
mod motia;
mod params;
mod stream;
mod traces;

/// The JSON shapes (shared with the live streams).
pub use crate::view as shapes;

use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use axum::routing::get;

pub use error::ApiError;
pub use executions::execution_tree;

use crate::AgentState;

/// All routes.
pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/api/traces", get(traces::list))
        .route("/api/traces/{id}", get(traces::get))
        .route("/api/traces/{id}/export", get(export::export))
        .route("/api/traces/{id}/steps/{span}", get(traces::step))
        .route("/api/groups", get(groups::list))
        .route("/api/groups/{id}", get(groups::get))
        .route("/api/executions/{id}/trace", get(executions::get))
        .route("/api/flows", get(flows::list))
        .route("/api/flows/{flow}/insights", get(insights::flow))
        .route("/api/compare", get(insights::compare))
        .route("/api/stream", get(stream::sse))
        .route("/api/ws", get(stream::ws))
        .route("/motia/traces", get(motia::list))
        .route("/motia/traces/{id}", get(motia::get))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/traces", axum::routing::post(crate::otlp::receive_http))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track_latency,
        ))
        .merge(crate::ui::router())
        .fallback(|uri: Uri| async move { ApiError::NoRoute(uri.path().to_owned()) })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}
