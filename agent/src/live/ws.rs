//! `GET /api/ws`: WebSocket; each text message is `{"type", "seq", "data"}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;

use super::LiveFilter;
use super::subscription::Subscription;
use crate::AgentState;
use crate::api::ApiError;

/// Policy-violation close code, used for slow clients.
const CLOSE_SLOW_CLIENT: u16 = 1008;

/// Upgrades to a WebSocket stream.
pub async fn upgrade(
    State(state): State<Arc<AgentState>>,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<impl IntoResponse, ApiError> {
    let filter = LiveFilter::parse(raw.as_deref())?;
    let subscription = Subscription::new(Arc::clone(&state.live), filter, state.config.heartbeat)
        .ok_or(ApiError::Overloaded("too many live subscribers"))?;
    let send_timeout = state.config.limits.http_idle_timeout;
    Ok(ws.on_upgrade(move |socket| serve(socket, subscription, send_timeout)))
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
