//! The process-wide client: one queue + writer thread shared by every JavaScript caller.
//!
//! The writer is a plain OS thread, not a libuv handle, so it never keeps the event loop alive;
//! the JavaScript side flushes (bounded) on process exit.

use std::sync::RwLock;
use std::time::Duration;

use flowscope::wire::{Encoding, Event};
use flowscope::{Client, Config};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::error::NapiErrExt;

static CLIENT: RwLock<Option<Client>> = RwLock::new(None);

/// Queues `event` on the client, if one was started. Never blocks, never fails.
#[inline]
pub(crate) fn emit(event: Event) {
    if let Ok(guard) = CLIENT.read()
        && let Some(client) = guard.as_ref()
    {
        client.emit(event);
    }
}

pub(crate) fn current() -> Option<Client> {
    CLIENT.read().ok().and_then(|guard| guard.clone())
}

/// Options of `init` (all optional; the environment fills the rest).
#[napi(object)]
#[derive(Default)]
pub struct InitOptions {
    /// Service name (`service.name`); empty ⇒ `OTEL_SERVICE_NAME`, else `unknown_service`.
    pub service: Option<String>,
    /// Agent socket path; default `FLOWSCOPE_SOCKET`, else the platform default.
    pub socket: Option<String>,
    /// No-op mode; default from `FLOWSCOPE_DISABLED`.
    pub disabled: Option<bool>,
    /// Events the queue holds before new ones overflow (default: no bound beside `queueBytes`).
    pub queue_capacity: Option<u32>,
    /// Estimated bytes the queue holds before new events overflow (default 256 MiB).
    pub queue_bytes: Option<f64>,
    /// `drop` (default: count per trace, never wait), `block` (wait up to 5 s for room) or
    /// `block:<ms>`.
    pub overflow: Option<String>,
    /// Batch encoding: `msgpack` (default) or `json`.
    pub encoding: Option<String>,
    /// What must never leave the process: comma-separated key names, or `re:<regex>` patterns.
    pub redact: Option<Vec<String>>,
    /// Replace every LLM prompt and response with `[redacted]` before sending.
    pub hide_llm_content: Option<bool>,
}

/// What `init` resolved to.
#[napi(object)]
pub struct InitResult {
    /// Whether events are sent (false in no-op mode).
    pub enabled: bool,
    /// The service name in use.
    pub service: String,
    /// The socket path in use.
    pub socket: String,
}

/// Starts (or restarts) the process-wide client. Throws only for invalid options.
#[napi]
pub fn init(options: Option<InitOptions>) -> napi::Result<InitResult> {
    let options = options.unwrap_or_default();
    let mut config = Config::from_env(options.service.unwrap_or_default());
    config.sdk = format!("node/{}", env!("CARGO_PKG_VERSION"));
    if let Some(socket) = options.socket.filter(|s| !s.is_empty()) {
        config = config.socket(socket);
    }
    if let Some(disabled) = options.disabled {
        config = config.disabled(disabled);
    }
    if let Some(capacity) = options.queue_capacity {
        if capacity == 0 {
            return Err(napi::Error::new(
                Status::InvalidArg,
                "queueCapacity must be at least 1",
            ));
        }
        config = config.queue_capacity(capacity as usize);
    }
    if let Some(bytes) = options.queue_bytes {
        if !(bytes >= 1.0 && bytes.is_finite()) {
            return Err(napi::Error::new(
                Status::InvalidArg,
                "queueBytes must be a positive number",
            ));
        }
        config = config.queue_bytes(bytes as usize);
    }
    if let Some(text) = options.overflow {
        let parsed = flowscope::Overflow::parse(&text).ok_or_else(|| {
            napi::Error::new(
                Status::InvalidArg,
                format!("overflow must be \"drop\", \"block\" or \"block:<ms>\", not {text:?}"),
            )
        })?;
        config = config.overflow(parsed);
    }
    let rules = flowscope::redact::RedactConfig::parse(
        &options.redact.unwrap_or_default(),
        options.hide_llm_content.unwrap_or(false),
    )
    .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
    config = config.redact(rules);
    if let Some(encoding) = options.encoding {
        let encoding: Encoding = serde_json::from_value(serde_json::Value::String(encoding))
            .napi_err(
                Status::InvalidArg,
                "encoding must be \"msgpack\" or \"json\"",
            )?;
        config = config.encoding(encoding);
    }
    let result = InitResult {
        enabled: !config.disabled,
        service: config.service.clone(),
        socket: config.socket_path.to_string_lossy().into_owned(),
    };
    let client = Client::new(config);
    let previous = CLIENT
        .write()
        .map(|mut guard| guard.replace(client))
        .napi_err(Status::GenericFailure, "flowscope client lock")?;
    // The previous client's writer drains what it holds, then stops.
    drop(previous);
    Ok(result)
}

/// Stops the client after flushing up to `timeout_ms`; later calls are no-ops until `init`.
#[napi]
pub fn shutdown(timeout_ms: Option<f64>) -> bool {
    let client = CLIENT.write().ok().and_then(|mut guard| guard.take());
    client.is_none_or(|c| c.flush(millis(timeout_ms)))
}

fn millis(ms: Option<f64>) -> Duration {
    Duration::from_secs_f64(ms.unwrap_or(1000.0).clamp(0.0, 3_600_000.0) / 1000.0)
}

/// Waits (blocking this thread) up to `timeout_ms` until every queued event is written.
#[napi]
pub fn flush_sync(timeout_ms: Option<f64>) -> bool {
    current().is_none_or(|c| c.flush(millis(timeout_ms)))
}

/// The `flush` work item, run on the libuv thread pool.
pub struct Flush {
    client: Option<Client>,
    timeout: Duration,
}

impl Task for Flush {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> napi::Result<bool> {
        Ok(self.client.as_ref().is_none_or(|c| c.flush(self.timeout)))
    }

    fn resolve(&mut self, _env: Env, output: bool) -> napi::Result<bool> {
        Ok(output)
    }
}

/// Resolves once every queued event is written (true) or `timeout_ms` passed (false).
#[napi]
pub fn flush(timeout_ms: Option<f64>) -> AsyncTask<Flush> {
    AsyncTask::new(Flush {
        client: current(),
        timeout: millis(timeout_ms),
    })
}

/// The client's counters.
#[napi(object)]
pub struct Stats {
    /// Events accepted into the queue.
    pub enqueued: f64,
    /// Events written to the agent.
    pub sent: f64,
    /// Events dropped (queue full, oversized, undeliverable).
    pub dropped: f64,
    /// Reconnects after a lost connection.
    pub reconnects: f64,
    /// Events waiting in the queue.
    pub queued: f64,
    /// Estimated bytes waiting in the queue (bounded by `queueBytes`).
    pub queued_bytes: f64,
    /// Whether the writer holds a live connection.
    pub connected: bool,
    /// Why the writer refuses or fails to connect (a socket owned by another user…).
    pub last_error: Option<String>,
}

/// The client's counters (zeros before `init`).
#[napi]
pub fn stats() -> Stats {
    let client = current();
    let s = client.as_ref().map(|c| c.stats()).unwrap_or_default();
    Stats {
        last_error: client.and_then(|c| c.last_error()),
        enqueued: s.enqueued as f64,
        sent: s.sent as f64,
        dropped: s.dropped as f64,
        reconnects: s.reconnects as f64,
        queued: s.queued as f64,
        queued_bytes: s.queued_bytes as f64,
        connected: s.connected,
    }
}
