//! `GET /api/ws`: WebSocket; each text message is `{"type", "seq", "data"}`.

use std::sync::Arc;

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
    let subscription = Subscription::new(Arc::clone(&state.live), filter, state.config.heartbeat);
    Ok(ws.on_upgrade(move |socket| serve(socket, subscription)))
}

async fn serve(mut socket: WebSocket, mut subscription: Subscription) {
    loop {
        tokio::select! {
            next = subscription.next() => {
                let Some(event) = next else { break };
                if socket.send(Message::Text(event.envelope().into())).await.is_err() {
                    return;
                }
                if event.kind == "error" {
                    let frame = CloseFrame { code: CLOSE_SLOW_CLIENT, reason: "slow client".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
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
