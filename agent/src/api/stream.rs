//! The live streams over HTTP: `GET /api/stream` (Server-Sent Events: `event: <type>`,
//! `data: <json>`, `id: <seq>`) and `GET /api/ws` (WebSocket; each text message is
//! `{"type", "seq", "data"}`). The hub they subscribe to is [`crate::live`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use futures_util::stream;

use super::ApiError;
use super::guard::TOKEN_PARAM;
use crate::AgentState;
use crate::live::{LiveFilter, Subscription};

/// Policy-violation close code, used for slow clients.
const CLOSE_SLOW_CLIENT: u16 = 1008;

/// A subscription for the query `raw` (503 when the hub is full).
fn subscribe(state: &AgentState, raw: Option<&str>) -> Result<Subscription, ApiError> {
    let filter = LiveFilter::parse(raw, &[TOKEN_PARAM])
        .map_err(|e| ApiError::bad_param(&e.name, e.message))?;
    Subscription::new(Arc::clone(&state.live), filter, state.config.heartbeat)
        .ok_or(ApiError::Overloaded("too many live subscribers"))
}

/// Opens an SSE stream.
pub async fn sse(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let subscription = subscribe(&state, raw.as_deref())?;
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

/// Upgrades to a WebSocket stream.
pub async fn ws(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Result<impl IntoResponse, ApiError> {
    let subscription = subscribe(&state, raw.as_deref())?;
    let send_timeout = state.config.limits.http_idle_timeout;
    Ok(upgrade.on_upgrade(move |socket| serve(socket, subscription, send_timeout)))
}

async fn serve(mut socket: WebSocket, mut subscription: Subscription, send_timeout: Duration) {
    loop {
        tokio::select! {
            next = subscription.next() => {
                let Some(event) = next else { break };
                // A client that stops reading cannot hold this task (or its socket) forever.
                let sent = tokio::time::timeout(send_timeout, socket.send(Message::Text(event.envelope().into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
                if event.kind == "error" {
                    let frame = CloseFrame { code: CLOSE_SLOW_CLIENT, reason: "slow client".into() };
                    let _ = tokio::time::timeout(send_timeout, socket.send(Message::Close(Some(frame)))).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
