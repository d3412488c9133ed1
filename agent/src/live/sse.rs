//! `GET /api/stream`: Server-Sent Events (`event: <type>`, `data: <json>`, `id: <seq>`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use futures_util::stream;

use super::LiveFilter;
use super::subscription::Subscription;
use crate::AgentState;
use crate::api::ApiError;

/// Opens an SSE stream.
pub async fn stream(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let filter = LiveFilter::parse(raw.as_deref())?;
    let subscription = Subscription::new(Arc::clone(&state.live), filter, state.config.heartbeat)
        .ok_or(ApiError::Overloaded("too many live subscribers"))?;
    let events = stream::unfold(subscription, |mut sub| async move {
        let event = sub.next().await?;
        let sse = Event::default()
            .event(event.kind)
            .id(event.seq.to_string())
            .data(event.data.clone());
        Some((Ok::<_, Infallible>(sse), sub))
    });
    Ok(Sse::new(events))
}
