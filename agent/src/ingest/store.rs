//! The one thread that stores what every socket connection decodes.
//!
//! Connections read and decode on the runtime's workers and hand their batches here, so decoding
//! the next batches overlaps storing this one. Done in each connection's task, a connection's
//! events took decode time plus store time one after the other, and connections queued on the
//! store's write lock while holding a worker. One storing thread takes the lock without
//! contention from other ingest, and applies batches in the order they were handed over, which
//! keeps each connection's order.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use flowscope::wire::{Encoding, Event};
use tokio::sync::{mpsc, oneshot};

use crate::AgentState;
use crate::trace::Origin;

/// Decoded batches waiting for the store, across all connections (each connection also holds
/// at most the one it is handing over, so memory stays within a few batches per connection).
const WAITING: usize = 4;

/// A decoded batch on its way to the store.
pub(super) struct Decoded {
    /// Who sent it.
    pub origin: Arc<Origin>,
    /// The events, redacted when rules are on.
    pub events: Vec<Event>,
    /// The payload as sent, when the journal keeps it (persistence on, no redaction).
    pub payload: Option<Vec<u8>>,
    /// How `payload` is encoded.
    pub encoding: Encoding,
}

/// What a connection hands the storing thread.
pub(super) enum Handed {
    /// A batch to store.
    Batch(Decoded),
    /// Answered once everything handed over before it is stored.
    Stored(oneshot::Sender<()>),
}

/// Where connections hand their batches.
pub(super) type Batches = mpsc::Sender<Handed>;

/// Starts the storing thread; it ends once every [`Batches`] handle is gone and all it was given
/// is stored, which the returned receiver reports (it resolves, with an error, when the thread
/// ends).
pub(super) fn start(state: Arc<AgentState>) -> std::io::Result<(Batches, oneshot::Receiver<()>)> {
    let (batches, handed) = mpsc::channel(WAITING);
    let (ended, ended_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("flowscope-store".into())
        .spawn(move || {
            run(handed, &state);
            drop(ended);
        })?;
    Ok((batches, ended_rx))
}

fn run(mut handed: mpsc::Receiver<Handed>, state: &AgentState) {
    while let Some(item) = handed.blocking_recv() {
        match item {
            Handed::Batch(batch) => {
                // A panic in one batch must not stop ingest for every connection.
                if std::panic::catch_unwind(AssertUnwindSafe(|| store(state, batch))).is_err() {
                    state.metrics.task_restarts.inc();
                    tracing::error!("storing a batch panicked; its events are lost");
                }
            }
            Handed::Stored(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Stamps, journals and applies one batch under one hold of the receive order, so receive
/// times follow apply order (see `crate::receive`).
fn store(state: &AgentState, batch: Decoded) {
    let persist = state.persist.get();
    let mut stamp = state.receive_order.blocking_lock(persist.is_some());
    let now = stamp.receive_time();
    if let Some(persist) = persist {
        match batch.payload {
            Some(payload) => persist.record(crate::persist::Record {
                origin: Arc::clone(&batch.origin),
                encoding: batch.encoding,
                payload,
                traces: crate::persist::distinct_traces(&batch.events),
                received_ns: now,
            }),
            // What is kept on disk is what was redacted, never the payload as sent.
            None => persist.record_events(&batch.origin, &batch.events, now),
        }
    }
    state
        .store
        .write()
        .apply_batch(&batch.origin, batch.events, now);
    drop(stamp);
}
