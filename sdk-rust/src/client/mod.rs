//! The client: a bounded, non-blocking event queue drained by a background writer thread.
//!
//! [`Client::emit`] is O(1): it moves the event into the queue and returns. The queue is one lane
//! per emitting thread (see `lane`), drained by the writer; it is bounded by estimated bytes
//! (256 MiB by default) and optionally by events. When it is full the event is
//! dropped and counted per trace, and the writer tells the agent, which marks the trace
//! `incomplete`; with [`Overflow::Block`] the caller waits a bounded time for room first. Nothing
//! ever panics the caller.

mod api;
mod config;
mod context;
mod future;
mod lane;
mod names;
mod shared;
pub mod socket;
mod trace_context;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod writer;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// Events accepted and not yet written or dropped (the batch the writer holds included).
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
    /// Tells this client's lanes apart from other clients' in a thread's list.
    id: u64,
    /// Whether a writer thread runs (false when disabled).
    writing: bool,
    /// Whether the writer's `membarrier` stands in for a fence in every emit.
    asymmetric: bool,
    /// Budget a thread reserves at a time (a 1024th of the byte bound, at most 64 KiB).
    credit_chunk: usize,
    /// Whether an event bound is configured (each event then takes the shared path).
    counts_events: bool,
    shared: Arc<Shared>,
    config: Config,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Source of [`Inner::id`].
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's lanes, one per client it emitted on; the last used first.
    static LANES: RefCell<Vec<(u64, lane::Producer<Event>)>> = const { RefCell::new(Vec::new()) };
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.inner.config.service)
            .field("socket", &self.inner.config.socket_path)
            .field("disabled", &!self.inner.writing)
            .finish()
    }
}

impl Client {
    /// Starts a client (and its writer thread, unless disabled). Never fails: an absent agent
    /// only means events wait in the queue, then drop when it is full.
    pub fn new(config: Config) -> Self {
        let shared = Arc::new(Shared::default());
        let writing = !config.disabled && {
            let writer_shared = Arc::clone(&shared);
            let writer_config = config.clone();
            // Its first sample is taken here, before any event of this client is stamped.
            let clock = crate::clock::WallClock::new();
            std::thread::Builder::new()
                .name("flowscope-writer".into())
                .spawn(move || writer::run(writer_shared, writer_config, clock))
                .is_ok()
        };
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::new(Inner {
                id,
                writing,
                asymmetric: shared::asymmetric_fences(),
                credit_chunk: (config.queue_bytes / 1024).min(64 * 1024),
                counts_events: config.queue_capacity != usize::MAX,
                shared,
                config,
            }),
        }
    }

    /// Whether `other` is a handle to this same client.
    pub(crate) fn same_as(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
        !self.inner.writing
    }

    /// Queues one event. Returns `false` when it was dropped (queue full, or disabled).
    #[inline]
    pub fn emit(&self, event: Event) -> bool {
        if !self.inner.writing {
            return false;
        }
        let size = event.queued_size();
        // Its thread-locals being torn down, this thread has no lanes left. (Checked first, so
        // the event moves into `with` whole: one copy into the slot, not one more through an
        // `Option`, whose partial loads of it stalled on the stores that had just built it.)
        if LANES.try_with(|_| ()).is_err() {
            return self.emit_shared(event, size);
        }
        LANES.with(|lanes| {
            // An emit already running on this thread's lanes (from a drop inside one).
            let Ok(mut lanes) = lanes.try_borrow_mut() else {
                return self.emit_shared(event, size);
            };
            if lanes.first().is_none_or(|(id, _)| *id != self.inner.id) {
                self.put_lane_first(&mut lanes);
            }
            let Some((_, lane)) = lanes.first_mut() else {
                return self.emit_shared(event, size);
            };
            let mut credit = lane.credit();
            if !self.admit(&mut credit, size) {
                self.inner.shared.record_drop(event.trace_id(), 1);
                return false;
            }
            lane.set_credit(credit);
            lane.push(event);
            self.inner.shared.wake_writer(self.inner.asymmetric);
            true
        })
    }

    /// [`emit`](Self::emit) without this thread's lanes: the event goes on the shared queue.
    #[cold]
    fn emit_shared(&self, event: Event, size: usize) -> bool {
        let mut credit = 0;
        let admitted = self.admit(&mut credit, size);
        let trace = event.trace_id();
        if admitted {
            self.inner.shared.spill(event);
        }
        // Only a chunk beyond `size` can be left; give it back.
        self.inner
            .shared
            .queued_bytes
            .fetch_sub(credit, Ordering::Relaxed);
        if !admitted {
            self.inner.shared.record_drop(trace, 1);
            return false;
        }
        self.inner.shared.wake_writer(self.inner.asymmetric);
        true
    }

    /// Takes one event's share of the queue's bounds: `size` bytes from `credit` when it holds
    /// enough, else through [`admit_shared`](Self::admit_shared).
    #[inline]
    fn admit(&self, credit: &mut usize, size: usize) -> bool {
        if *credit >= size && !self.inner.counts_events {
            *credit -= size;
            return true;
        }
        self.admit_shared(credit, size)
    }

    /// Reserves from the shared budget what `credit` lacks, plus a chunk for the events to come
    /// when that fits; counts the event against the event bound, if there is one. When the
    /// queue is full the overflow policy decides: drop now, or wait a bounded time for room.
    #[cold]
    fn admit_shared(&self, credit: &mut usize, size: usize) -> bool {
        let shared = &self.inner.shared;
        let config = &self.inner.config;
        let need = size.saturating_sub(*credit);
        let reserve = || {
            if self.inner.counts_events
                && shared.queued_events.load(Ordering::Relaxed) >= config.queue_capacity
            {
                return None;
            }
            [need + self.inner.credit_chunk, need]
                .into_iter()
                .find(|&want| {
                    shared
                        .queued_bytes
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                            (queued + want <= config.queue_bytes).then_some(queued + want)
                        })
                        .is_ok()
                })
        };
        let reserved = match (reserve(), config.overflow) {
            (Some(got), _) => Some(got),
            (None, Overflow::Drop) => None,
            (None, Overflow::Block(wait)) => {
                let got = std::cell::Cell::new(None);
                shared.wait_for_room(std::time::Instant::now() + wait, || {
                    got.set(reserve());
                    got.get().is_some()
                });
                got.get()
            }
        };
        let Some(got) = reserved else {
            return false;
        };
        if self.inner.counts_events {
            shared.queued_events.fetch_add(1, Ordering::Relaxed);
        }
        *credit = *credit + got - size;
        true
    }

    /// Moves this client's lane to the front of the thread's list, making it when there is none
    /// (and forgetting lanes whose writer has stopped).
    #[cold]
    fn put_lane_first(&self, lanes: &mut Vec<(u64, lane::Producer<Event>)>) {
        if let Some(at) = lanes.iter().position(|(id, _)| *id == self.inner.id) {
            lanes.swap(0, at);
            return;
        }
        lanes.retain(|(_, lane)| !lane.is_closed());
        let (producer, consumer) = lane::lane();
        self.inner.shared.add_lane(consumer, producer.count());
        lanes.insert(0, (self.inner.id, producer));
    }

    /// Waits up to `timeout` until every event queued before the call is written (or dropped).
    /// Returns whether that happened in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        if !self.inner.writing {
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
            enqueued: shared.accepted(),
            sent: shared.sent.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            reconnects: shared.reconnects.load(Ordering::Relaxed),
            queued: shared.unprocessed(),
            queued_bytes: shared.waiting_bytes() as u64,
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
