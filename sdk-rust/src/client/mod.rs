//! The client: a bounded, non-blocking event queue drained by a background writer thread.
//!
//! [`Client::emit`] is O(1): it moves the event into the queue and returns. The queue is bounded
//! by estimated bytes (256 MiB by default) and optionally by events. When it is full the event is
//! dropped and counted per trace, and the writer tells the agent, which marks the trace
//! `incomplete`; with [`Overflow::Block`] the caller waits a bounded time for room first. Nothing
//! ever panics the caller.

mod api;
mod config;
mod context;
mod future;
mod names;
mod shared;
pub mod socket;
mod trace_context;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

/// Events the preallocated channel holds; beyond it (within the byte bound) they spill.
const CHANNEL_CAPACITY: usize = 65_536;
use parking_lot::RwLock;

pub use api::*;
pub use config::{Config, DEFAULT_QUEUE_BYTES, Overflow, RedactHook};
pub use context::{ContextGuard, SpanContext};
pub use future::Instrumented;
pub use names::{name_by_id, name_id, name_of};
use shared::Shared;
pub use socket::default_socket_path;
pub use trace_context::{FLAG_RANDOM, FLAG_SAMPLED, TraceContext, TraceOptions};
#[cfg(feature = "tracing")]
pub use tracing_layer::FlowscopeLayer;

use crate::wire::Event;

/// Counters of a client, as returned by [`Client::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events written to the agent.
    pub sent: u64,
    /// Events dropped (queue full, oversized, undeliverable at shutdown).
    pub dropped: u64,
    /// Reconnects after a lost connection.
    pub reconnects: u64,
    /// Events waiting in the queue.
    pub queued: u64,
    /// Estimated bytes waiting in the queue.
    pub queued_bytes: u64,
    /// Whether the writer holds a live connection.
    pub connected: bool,
}

/// A handle to one queue + writer. Cheap to clone; the writer stops when the last handle drops.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Option<Sender<Event>>,
    shared: Arc<Shared>,
    config: Config,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.inner.config.service)
            .field("socket", &self.inner.config.socket_path)
            .field("disabled", &self.inner.tx.is_none())
            .finish()
    }
}

impl Client {
    /// Starts a client (and its writer thread, unless disabled). Never fails: an absent agent
    /// only means events wait in the queue, then drop when it is full.
    pub fn new(config: Config) -> Self {
        let shared = Arc::new(Shared::default());
        let tx = if config.disabled {
            None
        } else {
            // A fixed channel for the fast path; past its capacity events spill into a list that
            // the byte and event budgets checked in `emit` bound.
            let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
            let writer_shared = Arc::clone(&shared);
            let writer_config = config.clone();
            let spawned = std::thread::Builder::new()
                .name("flowscope-writer".into())
                .spawn(move || writer::run(rx, writer_shared, writer_config));
            spawned.ok().map(|_| tx)
        };
        Self {
            inner: Arc::new(Inner { tx, shared, config }),
        }
    }

    /// A client whose every call is a no-op.
    pub fn disabled() -> Self {
        Self::new(Config::new("disabled").disabled(true))
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether calls are no-ops.
    pub fn is_disabled(&self) -> bool {
        self.inner.tx.is_none()
    }

    /// Queues one event. Returns `false` when it was dropped (queue full, or disabled).
    #[inline]
    pub fn emit(&self, event: Event) -> bool {
        let Some(tx) = &self.inner.tx else {
            return false;
        };
        let shared = &self.inner.shared;
        let config = &self.inner.config;
        let size = event.queued_size();
        let fits = || {
            shared.queued_bytes.load(Ordering::Relaxed) + size <= config.queue_bytes
                && shared.queued_events.load(Ordering::Relaxed) < config.queue_capacity
        };
        if !fits() {
            let room = match config.overflow {
                Overflow::Drop => false,
                Overflow::Block(wait) => {
                    shared.wait_for_room(std::time::Instant::now() + wait, fits)
                }
            };
            if !room {
                shared.record_drop(event.trace_id(), 1);
                return false;
            }
        }
        shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if config.queue_capacity != usize::MAX {
            shared.queued_events.fetch_add(1, Ordering::Relaxed);
        }
        shared.enqueued.fetch_add(1, Ordering::AcqRel);
        if shared.spilling() {
            shared.spill(event);
            return true;
        }
        match tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(event)) => {
                shared.spill(event);
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                shared.enqueued.fetch_sub(1, Ordering::AcqRel);
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits up to `timeout` until every event queued before the call is written (or dropped).
    /// Returns whether that happened in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        if self.inner.tx.is_none() {
            return true;
        }
        self.inner.shared.wait_processed(timeout)
    }

    /// Why the writer refuses or fails to connect (a socket owned by another user, a refused
    /// handshake); `None` while connected or when the agent is simply not running.
    pub fn last_error(&self) -> Option<String> {
        self.inner.shared.last_error.lock().clone()
    }

    /// The client's counters.
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        Stats {
            enqueued: shared.enqueued.load(Ordering::Relaxed),
            sent: shared.sent.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            reconnects: shared.reconnects.load(Ordering::Relaxed),
            queued: self.inner.tx.as_ref().map_or(0, |tx| tx.len() as u64)
                + shared.spilled() as u64,
            queued_bytes: shared.queued_bytes.load(Ordering::Relaxed) as u64,
            connected: shared.connected.load(Ordering::Relaxed),
        }
    }
}

static GLOBAL: RwLock<Option<Client>> = RwLock::new(None);

/// Starts a client with `config` and makes it the global one used by [`trace`].
pub fn init(config: Config) -> Client {
    let client = Client::new(config);
    *GLOBAL.write() = Some(client.clone());
    client
}

/// The global client set by [`init`], if any.
pub fn global() -> Option<Client> {
    GLOBAL.read().clone()
}

/// Flushes the global client (see [`Client::flush`]); `true` when there is none.
pub fn flush(timeout: Duration) -> bool {
    global().is_none_or(|c| c.flush(timeout))
}

/// The global client's counters (zeros when there is none).
pub fn stats() -> Stats {
    global().map(|c| c.stats()).unwrap_or_default()
}
