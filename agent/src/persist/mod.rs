//! Persistence (`--data-dir`): every applied batch is journaled to SQLite by a writer thread, off
//! the ingest path, in transactions of at most [`COMMIT_EVERY`]; at start the most recently
//! active traces are replayed through the builder, so traces, groups and flow statistics survive
//! SIGTERM and SIGKILL. Traces evicted from memory stay on disk and load back on request.
//!
//! Disk trouble (full, read-only, unwritable directory) never stops the agent: it keeps serving
//! from memory, `/readyz` reports `degraded` with the reason, failed batches wait (bounded) and
//! are retried, and the state returns to `ok` when a write succeeds again.

pub mod journal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use flowscope::wire::{Encoding, Event, TraceId};
use parking_lot::Mutex;

pub use journal::{Journal, JournalError, Record, ReplayStats};

use crate::trace::Origin;

/// Longest time a journaled batch waits before its transaction commits (the SIGKILL loss window,
/// plus what is still in the channel).
pub const COMMIT_EVERY: Duration = Duration::from_millis(50);
/// Batches waiting for the writer before ingest waits for it (backpressure to the sockets).
const CHANNEL_RECORDS: usize = 1024;
/// Bytes of batches kept for retry while the disk fails; beyond, the oldest are dropped (counted).
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// How often a failing disk is retried.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often retention runs.
const RETAIN_EVERY: Duration = Duration::from_secs(10);

/// Persistence settings.
#[derive(Debug, Clone, Default)]
pub struct PersistConfig {
    /// Data directory; `None` = memory only.
    pub dir: Option<PathBuf>,
    /// Traces older than this (last activity) are deleted from disk.
    pub retention: Option<Duration>,
    /// Traces kept on disk at most (oldest deleted first).
    pub max_stored_traces: Option<u64>,
    /// Journal bytes at most (oldest traces deleted first).
    pub max_disk: Option<u64>,
}

/// The per-user default: `$XDG_STATE_HOME/flowscope`, else `~/.local/state/flowscope`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        })
        .map(|base| base.join("flowscope"))
}

/// What `/readyz` and `/healthz` say about persistence.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// `None` while writes succeed; the reason while they fail.
    pub degraded: Option<String>,
    /// A note from start-up (a damaged journal replaced, a replay summary).
    pub note: Option<String>,
    /// Batches committed since start.
    pub batches_written: u64,
    /// Batches given up while the disk failed (past the retry bound).
    pub batches_dropped: u64,
    /// Batches waiting for a retry.
    pub pending: usize,
    /// Commits that failed (each is retried).
    pub write_failures: u64,
    /// Traces on disk (updated by retention).
    pub traces_on_disk: u64,
    /// Journal bytes in use (updated by retention).
    pub disk_bytes: u64,
    /// The export watermark the journal holds, once this run wrote one: batches received later
    /// are exported again after a crash.
    pub export_acked_ns: Option<u64>,
}

/// How far export got: the newest batch time whose spans all left (see
/// `ExportQueue::acked_through`). Unset without an exporter: then every committed batch counts.
type ExportTracker = Arc<Mutex<Option<Arc<dyn Fn() -> u64 + Send + Sync>>>>;

enum Message {
    Record(Record),
    Flush(Sender<()>),
    Backlog(Vec<(Vec<u8>, u64)>),
    ClearBacklog,
}

/// The handle ingest and the API use.
pub struct Persistence {
    tx: Sender<Message>,
    status: Arc<Mutex<Status>>,
    reader: Option<Mutex<Journal>>,
    dir: PathBuf,
    /// The data directory's lock, held for the life of the process.
    _lock: Option<std::fs::File>,
    /// Another agent holds the lock: nothing is journaled.
    in_use: bool,
    /// OTLP requests saved by the previous run, until the exporter takes them.
    backlog: Mutex<Vec<(Vec<u8>, u64)>>,
    /// Where the writer reads how far export got (see `track_export`).
    export_acked: ExportTracker,
}

impl Persistence {
    /// Journals a batch. Waits (backpressure) only when the writer is `CHANNEL_RECORDS` behind.
    pub fn record(&self, record: Record) {
        if self.in_use {
            return; // another agent owns the directory: memory only
        }
        match self.tx.try_send(Message::Record(record)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(message)) => {
                let send = || {
                    let _ = self.tx.send(message);
                };
                // On a runtime worker, let the runtime move other tasks while this one waits.
                match tokio::runtime::Handle::try_current() {
                    Ok(handle)
                        if handle.runtime_flavor()
                            == tokio::runtime::RuntimeFlavor::MultiThread =>
                    {
                        tokio::task::block_in_place(send)
                    }
                    _ => send(),
                }
            }
        }
    }

    /// Journals `events` (already applied) from `origin`: the payload when it is the events as
    /// received, else the events re-encoded.
    pub fn record_events(&self, origin: &Arc<Origin>, events: &[Event], received_ns: u64) {
        let mut payload = Vec::new();
        if flowscope::wire::encode_batch(Encoding::Msgpack, events, usize::MAX, &mut payload)
            .is_err()
        {
            return;
        }
        // `encode_batch` writes a frame: the journal keeps the payload only.
        payload.drain(..flowscope::wire::HEADER_LEN);
        self.record(Record {
            origin: Arc::clone(origin),
            encoding: Encoding::Msgpack,
            payload,
            traces: distinct_traces(events),
            received_ns,
        });
    }

    /// Saves OTLP requests not delivered before shutdown, in place of the previous backlog; the
    /// next start forwards them.
    pub fn save_backlog(&self, requests: Vec<(Vec<u8>, u64)>) {
        if !self.in_use {
            let _ = self.tx.send(Message::Backlog(requests));
        }
    }

    /// The backlog taken at start has all left (sent, or dropped by the forward bound).
    pub fn backlog_sent(&self) {
        if !self.in_use {
            let _ = self.tx.send(Message::ClearBacklog);
        }
    }

    /// Lets the journal record how far export got, so a restart after a crash exports again
    /// what the collector may not have received.
    pub fn track_export(&self, acked_through: Arc<dyn Fn() -> u64 + Send + Sync>) {
        *self.export_acked.lock() = Some(acked_through);
    }

    /// The OTLP requests the previous run saved (taken once, at start).
    pub fn take_backlog(&self) -> Vec<(Vec<u8>, u64)> {
        std::mem::take(&mut *self.backlog.lock())
    }

    /// Waits until everything recorded before the call is committed (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = crossbeam_channel::bounded(1);
        if self.tx.send_timeout(Message::Flush(ack), timeout).is_err() {
            return false;
        }
        done.recv_timeout(timeout).is_ok()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Rebuilds a trace that is no longer in memory from the journal (`None` when unknown).
    pub fn load(
        &self,
        id: TraceId,
        caps: crate::trace::builder::TraceCaps,
    ) -> Option<Arc<crate::trace::Trace>> {
        let reader = self.reader.as_ref()?;
        let mut scratch = crate::store::Store::new(std::num::NonZeroUsize::MIN);
        scratch.set_caps(caps);
        let found = reader
            .lock()
            .load(id, |origin, events, t| {
                scratch.apply_batch(origin, events, t)
            })
            .map_err(
                |err| tracing::warn!(%err, trace = %id, "loading a trace from the journal failed"),
            )
            .ok()?;
        if !found {
            return None;
        }
        scratch.snapshot(id)
    }
}

/// The distinct trace ids of `events`, in first-seen order.
pub fn distinct_traces(events: &[Event]) -> Vec<TraceId> {
    let mut out: Vec<TraceId> = Vec::new();
    for id in events.iter().filter_map(Event::trace_id) {
        // Batches are mostly runs of one trace: the last id answers most lookups.
        if out.last() != Some(&id) && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Replays, for export only, the traces the collector may still be owed that the store did not
/// restore (beyond its `--max-traces` most recent), `chunk` traces at a time: `apply_owed` gets
/// each batch with the index of its chunk, so the caller can build each chunk in a scratch store
/// and let it go.
fn replay_owed(
    journal: &Journal,
    acked: u64,
    chunk: usize,
    apply_owed: &mut impl FnMut(usize, &Arc<Origin>, Vec<Event>, u64, bool),
) {
    let started = Instant::now();
    let owed = match journal.owed_traces(acked, chunk) {
        Ok(owed) => owed,
        Err(err) => {
            tracing::warn!(%err, "could not list the traces still owed to the collector");
            return;
        }
    };
    for (index, traces) in owed.chunks(chunk.max(1)).enumerate() {
        let replayed = journal.replay_traces(traces, |origin, events, received| {
            apply_owed(index, origin, events, received, received > acked)
        });
        if let Err(err) = replayed {
            tracing::warn!(%err, "replay for export failed; some spans may not be sent");
            return;
        }
    }
    if !owed.is_empty() {
        tracing::info!(
            traces = owed.len(),
            ms = started.elapsed().as_millis() as u64,
            "replayed traces not restored, for the spans the collector may not have"
        );
    }
}

/// Opens the journal in `config.dir`, replays up to `replay_traces` traces through `apply`, and
/// starts the writer thread. `apply` gets each batch with its receive time and whether its spans
/// may not have reached the collector (received after the journal's export watermark: a crash
/// lost them from the export queue). When `exporting` (an exporter is configured) it also takes
/// the export backlog, and replays the other traces the collector may still be owed through
/// `apply_owed`, `replay_traces` at a time (the chunk's index comes first). A directory or file
/// that cannot be used gives a handle that is degraded from the start (the agent runs from
/// memory).
pub fn open(
    config: &PersistConfig,
    replay_traces: usize,
    exporting: bool,
    mut apply: impl FnMut(&Arc<Origin>, Vec<Event>, u64, bool),
    mut apply_owed: impl FnMut(usize, &Arc<Origin>, Vec<Event>, u64, bool),
) -> Option<Persistence> {
    let dir = config.dir.clone()?;
    let status = Arc::new(Mutex::new(Status::default()));
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_RECORDS);
    let lock = Journal::prepare_dir(&dir).and_then(|()| journal::lock_dir(&dir));
    let in_use = matches!(lock, Err(JournalError::InUse(_)));
    let (lock, opened) = match lock {
        Ok(file) => (Some(file), Journal::open(&dir)),
        Err(err) => (None, Err(err)),
    };
    let journal = match opened {
        Ok((journal, note)) => {
            if let Some(note) = &note {
                tracing::warn!("{note}");
            }
            status.lock().note = note;
            Some(journal)
        }
        Err(err) => {
            tracing::warn!(%err, "persistence unavailable; serving from memory only");
            status.lock().degraded = Some(err.to_string());
            None
        }
    };
    let mut reader = None;
    let mut backlog = Vec::new();
    let mut export_floor = 0;
    let mut journal = journal;
    if let Some(journal) = journal.as_mut().filter(|_| exporting) {
        backlog = journal.backlog().unwrap_or_else(|err| {
            tracing::warn!(%err, "could not read the export backlog");
            Vec::new()
        });
    }
    if let Some(journal) = &journal {
        let started = Instant::now();
        let acked = journal.export_acked_ns().unwrap_or(u64::MAX);
        export_floor = if acked >= i64::MAX as u64 {
            flowscope::now_nanos()
        } else {
            acked
        };
        let replayed = journal.replay(replay_traces, |origin, events, received| {
            apply(origin, events, received, received > acked)
        });
        match replayed {
            Ok(stats) => {
                tracing::info!(
                    traces = stats.traces,
                    events = stats.events,
                    ms = started.elapsed().as_millis() as u64,
                    "restored traces from {}",
                    dir.display()
                );
                if stats.undecodable > 0 {
                    status.lock().note = Some(format!(
                        "{} journaled batches no longer decode and were skipped",
                        stats.undecodable
                    ));
                }
            }
            Err(err) => tracing::warn!(%err, "replay failed; starting with what was restored"),
        }
        if exporting && acked < i64::MAX as u64 {
            replay_owed(journal, acked, replay_traces, &mut apply_owed);
        }
        reader = Journal::open(&dir).ok().map(|(j, _)| Mutex::new(j));
    }
    let writer_status = Arc::clone(&status);
    let writer_config = config.clone();
    let export_acked: ExportTracker = Arc::default();
    let writer_acked = Arc::clone(&export_acked);
    let _ = std::thread::Builder::new()
        .name("flowscope-journal".into())
        .spawn(move || {
            write_loop(
                journal,
                writer_config,
                rx,
                writer_status,
                writer_acked,
                export_floor,
            )
        });
    Some(Persistence {
        tx,
        status,
        reader,
        dir,
        _lock: lock,
        in_use,
        backlog: Mutex::new(backlog),
        export_acked,
    })
}

/// The export watermark as the writer keeps it in the journal. It only moves forward: from
/// `floor`, what the journal held at start (a journal from before the watermark existed starts
/// at the time it was opened, as if everything in it had been delivered).
#[derive(Default)]
struct Watermark {
    floor: u64,
    /// What the journal holds, once written by this run.
    written: Option<u64>,
    /// The newest batch time committed by this run.
    committed_ns: u64,
}

impl Watermark {
    /// Writes how far export got when it moved: the exporter's word, or without an exporter the
    /// newest committed batch (nothing is owed to a collector that was not configured).
    fn update(
        &mut self,
        journal: &mut Journal,
        export_acked: &ExportTracker,
        status: &Mutex<Status>,
    ) {
        let tracker = export_acked.lock().clone();
        let at = match tracker {
            Some(acked_through) => acked_through(),
            None => self.committed_ns,
        };
        let at = at.max(self.written.unwrap_or(self.floor));
        if self.written == Some(at) || (self.written.is_none() && at == self.floor) {
            return;
        }
        match journal.set_export_acked_ns(at) {
            Ok(()) => {
                self.written = Some(at);
                status.lock().export_acked_ns = Some(at);
            }
            Err(err) => tracing::debug!(%err, "could not record the export watermark"),
        }
    }
}

fn write_loop(
    mut journal: Option<Journal>,
    config: PersistConfig,
    rx: Receiver<Message>,
    status: Arc<Mutex<Status>>,
    export_acked: ExportTracker,
    export_floor: u64,
) {
    let mut watermark = Watermark {
        floor: export_floor,
        ..Watermark::default()
    };
    let mut pending: Vec<Record> = Vec::new();
    let mut last_commit = Instant::now();
    let mut last_attempt_failed = false;
    let mut last_retain = Instant::now() - RETAIN_EVERY;
    let mut acks: Vec<Sender<()>> = Vec::new();
    loop {
        let message = rx.recv_timeout(COMMIT_EVERY);
        let closed = matches!(message, Err(RecvTimeoutError::Disconnected));
        if let Ok(first) = message {
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Record(record) => pending.push(record),
                    Message::Flush(ack) => acks.push(ack),
                    Message::Backlog(requests) => {
                        if let Some(journal) = journal.as_mut()
                            && let Err(err) = journal.save_backlog(&requests)
                        {
                            tracing::warn!(%err, "could not save the export backlog");
                        }
                    }
                    Message::ClearBacklog => {
                        if let Some(journal) = journal.as_mut()
                            && let Err(err) = journal.clear_backlog()
                        {
                            tracing::warn!(%err, "could not clear the sent export backlog");
                        }
                    }
                }
                if pending.len() < 4096 {
                    next = rx.try_recv().ok();
                }
            }
        }
        let due = if last_attempt_failed {
            last_commit.elapsed() >= RETRY_EVERY
        } else {
            last_commit.elapsed() >= COMMIT_EVERY || !acks.is_empty() || closed
        };
        if !pending.is_empty() && due {
            last_commit = Instant::now();
            let newest = pending.iter().map(|r| r.received_ns).max().unwrap_or(0);
            if journal.is_none() {
                // The directory was unusable at start: try again, it may have been fixed.
                if let Some(dir) = &config.dir
                    && let Ok((opened, _)) = Journal::open(dir)
                {
                    journal = Some(opened);
                }
            }
            let result = match journal.as_mut() {
                Some(journal) => commit(journal, &mut pending, &config),
                None => Err((
                    0,
                    status
                        .lock()
                        .degraded
                        .clone()
                        .unwrap_or_else(|| "data directory unusable".into()),
                )),
            };
            let mut s = status.lock();
            s.batches_written += result.as_ref().map_or_else(|(n, _)| *n, |(n, _)| *n);
            match result.map_err(|(_, err)| err) {
                Ok((_, was_full)) => {
                    if was_full {
                        // It was full; retention made room. Counted, and the sizes refreshed.
                        s.write_failures += 1;
                        if let Some(journal) = journal.as_ref() {
                            s.traces_on_disk = journal.trace_count().unwrap_or(s.traces_on_disk);
                            s.disk_bytes = journal.disk_bytes().unwrap_or(s.disk_bytes);
                        }
                    }
                    if s.degraded.take().is_some() {
                        tracing::info!("persistence recovered");
                    }
                    pending.clear();
                    last_attempt_failed = false;
                    watermark.committed_ns = watermark.committed_ns.max(newest);
                }
                Err(err) => {
                    s.write_failures += 1;
                    if s.degraded.as_deref() != Some(err.as_str()) {
                        tracing::warn!(%err, "journal write failed; serving from memory, retrying");
                    }
                    s.degraded = Some(err);
                    last_attempt_failed = true;
                    let mut bytes: usize = pending.iter().map(Record::size).sum();
                    while bytes > MAX_PENDING_BYTES && !pending.is_empty() {
                        bytes -= pending.remove(0).size();
                        s.batches_dropped += 1;
                    }
                }
            }
            s.pending = pending.len();
        }
        if !last_attempt_failed && let Some(journal) = journal.as_mut() {
            watermark.update(journal, &export_acked, &status);
        }
        if pending.is_empty() || last_attempt_failed {
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
        if last_retain.elapsed() >= RETAIN_EVERY
            && let Some(journal) = journal.as_mut()
        {
            last_retain = Instant::now();
            let min_seen = config
                .retention
                .map(|age| flowscope::now_nanos().saturating_sub(age.as_nanos() as u64));
            if let Err(err) = journal.retain(config.max_stored_traces, min_seen, config.max_disk) {
                tracing::warn!(%err, "retention failed");
            }
            let mut s = status.lock();
            s.traces_on_disk = journal.trace_count().unwrap_or(s.traces_on_disk);
            s.disk_bytes = journal.disk_bytes().unwrap_or(s.disk_bytes);
        }
        if closed && (pending.is_empty() || last_attempt_failed) {
            return;
        }
    }
}

/// Commits `pending` (emptying it on success) in one transaction; when the journal is full, makes
/// room by retention and commits one batch at a time, keeping those that still do not fit.
/// Returns how many batches were committed and whether the journal was full, with the error when
/// some were not committed.
fn commit(
    journal: &mut Journal,
    pending: &mut Vec<Record>,
    config: &PersistConfig,
) -> Result<(u64, bool), (u64, String)> {
    let err = match journal.append(pending) {
        Ok(()) => return Ok((pending.len() as u64, false)),
        Err(err) => err,
    };
    if !matches!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull)) {
        return Err((0, err.to_string()));
    }
    let mut written = 0u64;
    while !pending.is_empty() {
        let _ = journal.retain(config.max_stored_traces, None, config.max_disk);
        match journal.append(&pending[..1]) {
            Ok(()) => {
                pending.remove(0);
                written += 1;
            }
            Err(err) => return Err((written, err.to_string())),
        }
    }
    Ok((written, true))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn record(n: u64) -> Record {
        let first = u128::from(n) * 1000;
        Record {
            origin: Arc::new(Origin::named("t")),
            encoding: Encoding::Msgpack,
            payload: vec![n as u8; 109_000],
            traces: (first..first + 205).map(TraceId).collect(),
            received_ns: n,
        }
    }

    #[test]
    fn commit_makes_room_when_the_journal_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal.cap_pages_for_tests(400);
        let config = PersistConfig {
            dir: Some(dir.path().to_owned()),
            retention: None,
            max_stored_traces: Some(100_000),
            max_disk: Some(1 << 20),
        };
        let mut first: Vec<Record> = (1..=6).map(record).collect();
        assert_eq!(commit(&mut journal, &mut first, &config), Ok((6, false)));
        let mut burst: Vec<Record> = (7..=22).map(record).collect();
        let result = commit(&mut journal, &mut burst, &config);
        assert_eq!(result, Ok((16, true)), "{:?}", journal.disk_bytes());
        assert!(burst.is_empty());
        assert!(journal.disk_bytes().unwrap() <= 1 << 20 || journal.trace_count().unwrap() > 0);
    }

    #[test]
    fn the_export_watermark_starts_at_zero_and_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        assert_eq!(
            journal.export_acked_ns().unwrap(),
            0,
            "a new journal owes everything"
        );
        let status = Mutex::new(Status::default());
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tracker: ExportTracker = Arc::default();
        let source = Arc::clone(&acked);
        *tracker.lock() = Some(Arc::new(move || source.load(Ordering::Relaxed)));
        let mut watermark = Watermark {
            floor: 100,
            ..Watermark::default()
        };
        // Below the floor (a restarted exporter that has seen nothing yet): nothing written.
        watermark.update(&mut journal, &tracker, &status);
        assert_eq!(status.lock().export_acked_ns, None);
        acked.store(250, Ordering::Relaxed);
        watermark.update(&mut journal, &tracker, &status);
        assert_eq!(journal.export_acked_ns().unwrap(), 250);
        // A lower reading never moves it back.
        acked.store(120, Ordering::Relaxed);
        watermark.update(&mut journal, &tracker, &status);
        assert_eq!(journal.export_acked_ns().unwrap(), 250);
        assert_eq!(status.lock().export_acked_ns, Some(250));
    }
}
