//! One client connection: handshake, then length-prefixed batches until EOF. A protocol error
//! answers an error frame and closes this connection only; batches already applied stay.

use std::sync::Arc;
use std::time::Duration;

use flowscope::wire::{self, AgentReply, Encoding, HEADER_LEN, Hello, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::oneshot;

use super::store::{Batches, Decoded, Handed};
use crate::AgentState;
use crate::telemetry::{EVENT_KINDS, Rejection, kind_index};
use crate::trace::Origin;

/// Largest hello accepted.
const MAX_HELLO: usize = 64 * 1024;
/// Time a client has to send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket read buffer per connection (allocated up front, so kept modest).
const READ_BUFFER: usize = 64 * 1024;
/// A frame buffer larger than this is released after use rather than kept for the next frame.
const KEEP_BUFFER: usize = 1024 * 1024;

/// How long reads may wait.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// For the first byte of a frame.
    idle: Duration,
    /// For the rest of a started frame.
    frame: Duration,
}

/// Answers a connection over the `--max-connections` bound with an error frame, then closes it.
pub async fn refuse(mut stream: UnixStream, state: Arc<AgentState>) {
    let why = Rejection::TooManyConnections;
    state.metrics.ingest.rejected(why);
    let message = format!(
        "the agent already serves {} connections",
        state.config.limits.max_connections
    );
    if let Some(frame) = error_frame(why, message) {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&frame)).await;
    }
    let _ = stream.shutdown().await;
}

/// The JSON error frame telling a client why it is being closed.
fn error_frame(why: Rejection, message: String) -> Option<Vec<u8>> {
    let mut frame = Vec::new();
    wire::encode_frame(
        Encoding::Json,
        &AgentReply::error(why.code(), message),
        MAX_HELLO,
        &mut frame,
    )
    .ok()?;
    Some(frame)
}

/// Why reading a frame stopped.
enum ReadEnd {
    /// Clean EOF at a frame boundary.
    Closed,
    /// A protocol error to report.
    Rejected(Rejection, String),
    /// The agent began stopping while this connection waited for a frame: read on in drain mode.
    Stopping,
}

/// After the agent begins stopping, a connection ends once nothing more arrives for this long:
/// what its client had already sent is read, stored and committed before the agent exits.
const DRAIN_IDLE: Duration = Duration::from_millis(50);

/// The agent's stop signal, as a connection sees it.
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Watches `signal` (true: the agent is stopping).
    pub fn new(signal: tokio::sync::watch::Receiver<bool>) -> Self {
        Self(signal)
    }

    /// Whether the agent is stopping (or gone).
    fn stopping(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves when the signal changes.
    async fn changed(&mut self) {
        let _ = self.0.changed().await;
    }
}

/// Serves one connection to completion.
pub async fn serve(stream: UnixStream, state: Arc<AgentState>, batches: Batches, mut stop: Stop) {
    let metrics = &state.metrics.ingest;
    metrics.connections_total.inc();
    metrics.connections_open.inc();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, read);
    if let Err((why, message)) = session(&mut reader, &mut write, &state, &batches, &mut stop).await
    {
        metrics.rejected(why);
        if let Some(frame) = error_frame(why, message) {
            let _ = write.write_all(&frame).await;
        }
        let _ = write.shutdown().await;
    }
    metrics.connections_open.dec();
}

async fn session(
    reader: &mut BufReader<OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    state: &AgentState,
    batches: &Batches,
    stop: &mut Stop,
) -> Result<(), (Rejection, String)> {
    let mut payload = Vec::new();
    let handshake = Deadlines {
        idle: HANDSHAKE_TIMEOUT,
        frame: HANDSHAKE_TIMEOUT,
    };
    let hello = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame(reader, MAX_HELLO, &mut payload, handshake, stop),
    )
    .await
    {
        Err(_) => {
            return Err((
                Rejection::HandshakeTimeout,
                "no hello received in time".into(),
            ));
        }
        Ok(Err(ReadEnd::Closed | ReadEnd::Stopping)) => return Ok(()),
        Ok(Err(ReadEnd::Rejected(why, msg))) => return Err((why, msg)),
        Ok(Ok(())) => serde_json::from_slice::<Hello>(&payload).map_err(|e| {
            (
                Rejection::MalformedHello,
                format!("hello is not valid JSON: {e}"),
            )
        })?,
    };
    if hello.v != PROTOCOL_VERSION {
        return Err((
            Rejection::UnsupportedVersion,
            format!(
                "protocol version {} is not supported; this agent speaks {PROTOCOL_VERSION}",
                hello.v
            ),
        ));
    }
    let max_frame = state.config.max_frame;
    let mut reply = Vec::new();
    let mut accept = AgentReply::accept(env!("CARGO_PKG_VERSION"), max_frame as u32);
    // SDKs set the sampled flag they propagate by the same ratio the exporter uses.
    accept.sample_ratio = Some(state.config.export.sample_ratio.clamp(0.0, 1.0));
    if wire::encode_frame(Encoding::Json, &accept, MAX_HELLO, &mut reply).is_err()
        || write.write_all(&reply).await.is_err()
    {
        return Ok(());
    }
    let origin = Arc::new(Origin {
        service: if hello.service.is_empty() {
            "unknown_service".into()
        } else {
            hello.service
        },
        sdk: hello.sdk,
        pid: hello.pid,
        host: hello.host,
        otlp: false,
    });
    tracing::debug!(service = %origin.service, sdk = %origin.sdk, pid = ?origin.pid, "client connected");

    let deadlines = Deadlines {
        idle: state.config.limits.idle_timeout,
        frame: state.config.limits.frame_timeout,
    };
    let redact = state
        .config
        .redact
        .is_active()
        .then_some(&state.config.redact);
    // The journal keeps the payload as sent unless redaction changed what it holds.
    let journal_payload = state.persist.get().is_some() && redact.is_none();
    let read = async {
        loop {
            match read_frame(reader, max_frame, &mut payload, deadlines, stop).await {
                Ok(()) => {}
                Err(ReadEnd::Stopping) => continue,
                Err(ReadEnd::Closed) => return Ok(()),
                Err(ReadEnd::Rejected(why, msg)) => return Err((why, msg)),
            }
            let mut events = wire::decode_batch(hello.encoding, &payload)
                .map_err(|e| (Rejection::MalformedBatch, e.to_string()))?;
            if let Some(rules) = redact {
                // Before the store lock, and before anything is stored or exported.
                events.iter_mut().for_each(|event| rules.apply(event));
            }
            let mut kinds = [0u64; EVENT_KINDS.len()];
            for event in &events {
                kinds[kind_index(event)] += 1;
            }
            state.metrics.ingest.batch(&kinds, payload.len());
            let batch = Decoded {
                origin: Arc::clone(&origin),
                events,
                // Handed over whole: the next frame is read into a fresh buffer.
                payload: journal_payload.then(|| std::mem::take(&mut payload)),
                encoding: hello.encoding,
            };
            if batches.send(Handed::Batch(batch)).await.is_err() {
                return Ok(()); // the storing thread is gone (the agent is stopping)
            }
            if payload.capacity() > KEEP_BUFFER {
                payload = Vec::new();
            }
        }
    };
    let outcome = read.await;
    // The connection ends (an error answered included) once what it sent is stored.
    let (done, stored) = oneshot::channel();
    if batches.send(Handed::Stored(done)).await.is_ok() {
        let _ = stored.await;
    }
    outcome
}

/// Reads one frame's payload into `buf`. The buffer grows as bytes arrive (never to the announced
/// length up front); the first byte may take `deadlines.idle` (once the agent is stopping,
/// [`DRAIN_IDLE`]), the rest `deadlines.frame`.
async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    limit: usize,
    buf: &mut Vec<u8>,
    deadlines: Deadlines,
    stop: &mut Stop,
) -> Result<(), ReadEnd> {
    let mut header = [0u8; HEADER_LEN];
    let stopping = stop.stopping();
    let idle = if stopping { DRAIN_IDLE } else { deadlines.idle };
    let first = tokio::select! {
        read = tokio::time::timeout(idle, reader.read(&mut header)) => match read {
            // Stopping, and the client sent nothing more: everything it sent has been read.
            Err(_) if stopping => return Err(ReadEnd::Closed),
            Err(_) => {
                return Err(ReadEnd::Rejected(
                    Rejection::IdleTimeout,
                    format!("nothing received for {:?}", deadlines.idle),
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadEnd::Closed),
            Ok(Ok(n)) => n,
        },
        // A read not yet complete takes nothing from the buffer, so none is lost here.
        () = stop.changed(), if !stopping => return Err(ReadEnd::Stopping),
    };
    let rest = async {
        let mut filled = first;
        while filled < HEADER_LEN {
            match reader.read(&mut header[filled..]).await {
                Ok(0) => {
                    return Err(ReadEnd::Rejected(
                        Rejection::Truncated,
                        "connection closed inside a frame header".into(),
                    ));
                }
                Ok(n) => filled += n,
                Err(_) => return Err(ReadEnd::Closed),
            }
        }
        let len = wire::frame_len(header);
        if len > limit {
            return Err(ReadEnd::Rejected(
                Rejection::FrameTooLarge,
                format!("frame of {len} bytes exceeds the limit of {limit} bytes"),
            ));
        }
        buf.clear();
        buf.reserve(len.min(READ_BUFFER));
        let read = (&mut *reader)
            .take(len as u64)
            .read_to_end(buf)
            .await
            .unwrap_or(0);
        if read < len {
            return Err(ReadEnd::Rejected(
                Rejection::Truncated,
                format!("connection closed inside a frame of {len} bytes"),
            ));
        }
        Ok(())
    };
    match tokio::time::timeout(deadlines.frame, rest).await {
        Ok(result) => result,
        Err(_) => Err(ReadEnd::Rejected(
            Rejection::FrameTimeout,
            format!(
                "a started frame did not arrive whole within {:?}",
                deadlines.frame
            ),
        )),
    }
}
