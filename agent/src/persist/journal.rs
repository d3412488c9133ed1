//! The SQLite journal: every applied batch, as received (msgpack or JSON events), with the origin
//! that sent it, and per trace the range of batches that touched it and when it was last active.
//!
//! ```text
//! origins(id, service, sdk, pid, host, otlp)
//! batches(id, received_ns, origin, encoding, payload)      -- append-only, id order = apply order
//! traces(trace, first_batch, last_batch, last_seen_ns)     -- one row per trace on disk
//! ```
//!
//! WAL mode with `synchronous = NORMAL`: a committed transaction survives a crash of the process
//! (SIGKILL); SQLite detects and drops a torn WAL tail on open. Retention deletes whole traces,
//! oldest first, then the batches no remaining trace can need (those before the oldest remaining
//! trace's first batch).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use flowscope::wire::{self, Encoding, Event, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::trace::Origin;

/// A journal error (SQLite or a payload that no longer decodes).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite failed (full disk, read-only file system, corrupt file…).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another agent holds the directory's lock.
    #[error(
        "data directory {0} is in use by another flowscope agent; this one keeps traces in memory only"
    )]
    InUse(String),
    /// The data directory is unusable.
    #[error("data directory {path}: {message}")]
    Dir {
        /// Directory.
        path: String,
        /// Why.
        message: String,
    },
}

/// One batch to journal.
pub struct Record {
    /// Who sent it.
    pub origin: Arc<Origin>,
    /// How `payload` is encoded.
    pub encoding: Encoding,
    /// The events, encoded.
    pub payload: Vec<u8>,
    /// The traces its events belong to (distinct).
    pub traces: Vec<TraceId>,
    /// When it was applied (unix ns).
    pub received_ns: u64,
}

impl Record {
    /// Bytes this record holds in memory.
    pub fn size(&self) -> usize {
        self.payload.len() + self.traces.len() * 16 + 64
    }
}

/// The open journal.
pub struct Journal {
    conn: Connection,
    origins: HashMap<Origin, i64>,
}

/// Takes the data directory's lock file (`flowscope.lock`, an exclusive `flock`) for the life of
/// the process: two agents never share one journal.
pub fn lock_dir(dir: &Path) -> Result<std::fs::File, JournalError> {
    let path = dir.join("flowscope.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::Dir {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| JournalError::InUse(dir.display().to_string()))?;
    Ok(file)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS origins(
    id INTEGER PRIMARY KEY, service TEXT NOT NULL, sdk TEXT NOT NULL, pid INTEGER, host TEXT,
    otlp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches(
    id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, origin INTEGER NOT NULL,
    encoding INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS traces(
    trace BLOB PRIMARY KEY, first_batch INTEGER NOT NULL, last_batch INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS traces_last_batch ON traces(last_batch);
CREATE INDEX IF NOT EXISTS traces_last_seen ON traces(last_seen_ns);
CREATE TABLE IF NOT EXISTS export_backlog(
    id INTEGER PRIMARY KEY, spans INTEGER NOT NULL, request BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Batches received after this time may not have reached the collector (see `export_acked_ns`).
-- A new journal starts at 0; one written before this key existed counts as all delivered.
INSERT OR IGNORE INTO meta(key, value) SELECT 'export_acked_ns',
    CASE WHEN EXISTS(SELECT 1 FROM batches) THEN 9223372036854775807 ELSE 0 END;
";

/// The order in which replay picks the traces it restores. `owed_traces` skips exactly those, so
/// ties between traces with the same last batch are broken the same way in both.
const MOST_RECENT_FIRST: &str = "ORDER BY last_batch DESC, trace";

fn encoding_code(encoding: Encoding) -> i64 {
    match encoding {
        Encoding::Msgpack => 0,
        Encoding::Json => 1,
    }
}

fn encoding_of(code: i64) -> Encoding {
    if code == 1 {
        Encoding::Json
    } else {
        Encoding::Msgpack
    }
}

/// A journal file that does not open or fails its integrity check is moved aside (kept for
/// inspection) and a fresh one started: the agent must start.
fn open_or_replace(path: &Path) -> Result<(Connection, Option<String>), JournalError> {
    let check = |conn: &Connection| -> rusqlite::Result<()> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if verdict != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(verdict),
            ));
        }
        conn.execute_batch(SCHEMA)
    };
    match Connection::open(path).and_then(|conn| check(&conn).map(|()| conn)) {
        Ok(conn) => Ok((conn, None)),
        Err(err) => {
            let aside = path.with_extension(format!("corrupt-{}", flowscope::now_nanos()));
            let _ = std::fs::rename(path, &aside);
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let conn = Connection::open(path)?;
            check(&conn)?;
            Ok((
                conn,
                Some(format!(
                    "the journal did not open ({err}); moved to {} and started empty",
                    aside.display()
                )),
            ))
        }
    }
}

impl Journal {
    /// Creates `dir` (0700) when missing; an existing one must be a directory of ours that no
    /// one else can write to.
    pub fn prepare_dir(dir: &Path) -> Result<(), JournalError> {
        let dir_error = |message: String| JournalError::Dir {
            path: dir.display().to_string(),
            message,
        };
        if !dir.exists() {
            flowscope::socket::ensure_private_dir(dir).map_err(|e| dir_error(e.to_string()))?;
        } else if !dir.is_dir() {
            return Err(dir_error("not a directory".into()));
        } else {
            // Another user able to write here could plant the journal the agent replays.
            flowscope::socket::check_dir(dir).map_err(|e| dir_error(e.to_string()))?;
        }
        Ok(())
    }

    /// Opens (creating) `dir/flowscope.db`. Returns a note when a damaged file was replaced.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), JournalError> {
        Self::prepare_dir(dir)?;
        let (conn, note) = open_or_replace(&dir.join("flowscope.db"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        if let Ok(pages) = std::env::var("FLOWSCOPE_TEST_MAX_PAGES")
            && let Ok(pages) = pages.parse::<u64>()
        {
            // Tests: a size-capped file, to exercise a full disk.
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let mut journal = Self {
            conn,
            origins: HashMap::new(),
        };
        journal.load_origins()?;
        Ok((journal, note))
    }

    fn load_origins(&mut self) -> rusqlite::Result<()> {
        for (id, origin) in read_origins(&self.conn)? {
            self.origins.insert(origin, id);
        }
        Ok(())
    }

    fn origin_id(&mut self, origin: &Origin) -> rusqlite::Result<i64> {
        if let Some(id) = self.origins.get(origin) {
            return Ok(*id);
        }
        self.conn.execute(
            "INSERT INTO origins(service, sdk, pid, host, otlp) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                origin.service,
                origin.sdk,
                origin.pid,
                origin.host,
                i64::from(origin.otlp)
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.origins.insert(origin.clone(), id);
        Ok(id)
    }

    /// Writes `records` in one transaction (all or nothing).
    pub fn append(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            ids.push(self.origin_id(&record.origin)?);
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO batches(received_ns, origin, encoding, payload) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut touch = tx.prepare_cached(
                "INSERT INTO traces(trace, first_batch, last_batch, last_seen_ns) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(trace) DO UPDATE SET last_batch = excluded.last_batch,
                 last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)",
            )?;
            // One touch per trace per transaction: the first and last batches that named it.
            let mut touched: HashMap<TraceId, (i64, i64, u64)> = HashMap::new();
            for (record, origin) in records.iter().zip(ids) {
                insert.execute(params![
                    record.received_ns as i64,
                    origin,
                    encoding_code(record.encoding),
                    record.payload
                ])?;
                let batch = tx.last_insert_rowid();
                for trace in &record.traces {
                    let entry = touched
                        .entry(*trace)
                        .or_insert((batch, batch, record.received_ns));
                    entry.1 = batch;
                    entry.2 = entry.2.max(record.received_ns);
                }
            }
            for (trace, (first, last, seen)) in touched {
                touch.execute(params![trace.0.to_be_bytes(), first, last, seen as i64])?;
            }
        }
        tx.commit()
    }

    /// Caps the file at `pages` pages (tests: a full disk).
    #[cfg(test)]
    pub fn cap_pages_for_tests(&self, pages: u64) {
        self.conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
    }

    /// The time through which every batch's spans were delivered to the collector (or saved,
    /// or dropped by the export bound): a replay exports again the spans of later batches.
    pub fn export_acked_ns(&self) -> rusqlite::Result<u64> {
        let value: i64 = self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'export_acked_ns'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(value).unwrap_or(0))
    }

    /// Records [`export_acked_ns`](Self::export_acked_ns).
    pub fn set_export_acked_ns(&mut self, at: u64) -> rusqlite::Result<()> {
        let value = i64::try_from(at).unwrap_or(i64::MAX);
        self.conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'export_acked_ns'",
            [value],
        )?;
        Ok(())
    }

    /// Saves OTLP requests that could not be delivered before shutdown (protobuf, span count),
    /// in place of what was saved before (what of it was not sent is among `requests`).
    pub fn save_backlog(&mut self, requests: &[(Vec<u8>, u64)]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM export_backlog", [])?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO export_backlog(spans, request) VALUES (?1, ?2)")?;
            for (request, spans) in requests {
                insert.execute(params![*spans as i64, request])?;
            }
        }
        tx.commit()
    }

    /// The saved OTLP requests. They stay saved until [`clear_backlog`](Self::clear_backlog)
    /// (all sent) or the next [`save_backlog`](Self::save_backlog), so a run killed before
    /// sending them leaves them for the next.
    pub fn backlog(&self) -> rusqlite::Result<Vec<(Vec<u8>, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT request, spans FROM export_backlog ORDER BY id")?;
        stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect()
    }

    /// Forgets the saved OTLP requests (they were all sent).
    pub fn clear_backlog(&mut self) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM export_backlog", [])?;
        Ok(())
    }

    /// Traces on disk.
    pub fn trace_count(&self) -> rusqlite::Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM traces", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }

    /// Bytes of the journal file (pages in use).
    pub fn disk_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// Replays the `limit` most recently active traces: calls `apply` with each batch's origin,
    /// its events that belong to those traces (in journal order) and its receive time.
    pub fn replay(
        &self,
        limit: usize,
        apply: impl FnMut(&Arc<Origin>, Vec<Event>, u64),
    ) -> rusqlite::Result<ReplayStats> {
        let recent = self.trace_rows(
            &format!("SELECT trace, first_batch FROM traces {MOST_RECENT_FIRST} LIMIT ?1"),
            params![i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        self.replay_traces(&recent, apply)
    }

    /// The (trace, first batch) rows `sql` selects.
    fn trace_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<(TraceId, i64)>> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut out = Vec::new();
        for row in stmt.query_map(params, |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (trace, first) = row?;
            if let Ok(bytes) = <[u8; 16]>::try_from(trace.as_slice()) {
                out.push((TraceId(u128::from_be_bytes(bytes)), first));
            }
        }
        Ok(out)
    }

    /// The traces with a batch received after `acked_ns`, other than the `skip_recent` most
    /// recently active (the ones [`replay`](Self::replay) restores), with their first batch,
    /// oldest first: what the collector may still be owed beyond the restored traces.
    pub fn owed_traces(
        &self,
        acked_ns: u64,
        skip_recent: usize,
    ) -> rusqlite::Result<Vec<(TraceId, i64)>> {
        let acked = i64::try_from(acked_ns).unwrap_or(i64::MAX);
        let skip = i64::try_from(skip_recent).unwrap_or(i64::MAX);
        self.trace_rows(
            &format!(
                "SELECT t.trace, t.first_batch FROM traces t JOIN batches b ON b.id = t.last_batch
                 WHERE b.received_ns > ?1
                   AND t.trace NOT IN (SELECT trace FROM traces {MOST_RECENT_FIRST} LIMIT ?2)
                 ORDER BY t.first_batch"
            ),
            params![acked, skip],
        )
    }

    /// The events of `traces` (each with its first batch), in journal order.
    pub fn replay_traces(
        &self,
        traces: &[(TraceId, i64)],
        mut apply: impl FnMut(&Arc<Origin>, Vec<Event>, u64),
    ) -> rusqlite::Result<ReplayStats> {
        let wanted: std::collections::HashSet<TraceId> = traces.iter().map(|(t, _)| *t).collect();
        let first = traces.iter().map(|(_, b)| *b).min().unwrap_or(i64::MAX);
        self.scan(
            first,
            i64::MAX,
            |event| event.trace_id().is_some_and(|t| wanted.contains(&t)),
            &mut apply,
        )
        .map(|mut stats| {
            stats.traces = wanted.len();
            stats
        })
    }

    /// The events of `trace` alone, in journal order (a trace no longer in memory).
    pub fn load(
        &self,
        trace: TraceId,
        apply: impl FnMut(&Arc<Origin>, Vec<Event>, u64),
    ) -> rusqlite::Result<bool> {
        let range: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT first_batch, last_batch FROM traces WHERE trace = ?1",
                [trace.0.to_be_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((first, last)) = range else {
            return Ok(false);
        };
        let mut apply = apply;
        self.scan(
            first,
            last,
            |event| event.trace_id() == Some(trace),
            &mut apply,
        )?;
        Ok(true)
    }

    fn scan(
        &self,
        first: i64,
        last: i64,
        keep: impl Fn(&Event) -> bool,
        apply: &mut impl FnMut(&Arc<Origin>, Vec<Event>, u64),
    ) -> rusqlite::Result<ReplayStats> {
        let mut stats = ReplayStats::default();
        if first == i64::MAX {
            return Ok(stats);
        }
        // Read fresh: a reader opened at start does not know origins added since.
        let origins: HashMap<i64, Arc<Origin>> = read_origins(&self.conn)?
            .into_iter()
            .map(|(id, origin)| (id, Arc::new(origin)))
            .collect();
        let mut stmt = self.conn.prepare(
            "SELECT origin, encoding, payload, received_ns FROM batches
             WHERE id >= ?1 AND id <= ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![first, last])?;
        while let Some(row) = rows.next()? {
            stats.batches += 1;
            let origin = origins.get(&row.get::<_, i64>(0)?).cloned();
            let encoding = encoding_of(row.get(1)?);
            let payload = row.get_ref(2)?.as_blob()?;
            let received = row.get::<_, i64>(3)? as u64;
            let Ok(events) = wire::decode_batch(encoding, payload) else {
                stats.undecodable += 1;
                continue;
            };
            let events: Vec<Event> = events.into_iter().filter(|e| keep(e)).collect();
            if let (Some(origin), false) = (origin, events.is_empty()) {
                stats.events += events.len() as u64;
                apply(&origin, events, received);
            }
        }
        Ok(stats)
    }

    /// Deletes the oldest traces until at most `max_traces` remain, none is older than
    /// `min_seen_ns`, and the file is under `max_bytes`; then the batches nothing needs.
    /// Returns how many traces were deleted.
    pub fn retain(
        &mut self,
        max_traces: Option<u64>,
        min_seen_ns: Option<u64>,
        max_bytes: Option<u64>,
    ) -> rusqlite::Result<u64> {
        let mut deleted = 0u64;
        if let Some(min) = min_seen_ns {
            deleted += self
                .conn
                .execute("DELETE FROM traces WHERE last_seen_ns < ?1", [min as i64])?
                as u64;
        }
        if let Some(max) = max_traces {
            let count = self.trace_count()?;
            if count > max {
                deleted += self.delete_oldest(count - max)?;
            }
        }
        if let Some(max) = max_bytes {
            // A tenth of the traces at a time until the pages in use fit.
            for _ in 0..20 {
                if self.disk_bytes()? <= max {
                    break;
                }
                let count = self.trace_count()?;
                if count == 0 {
                    break;
                }
                deleted += self.delete_oldest((count / 10).max(1))?;
                self.drop_unneeded_batches()?;
            }
        }
        if deleted > 0 {
            self.drop_unneeded_batches()?;
        }
        Ok(deleted)
    }

    fn delete_oldest(&mut self, n: u64) -> rusqlite::Result<u64> {
        Ok(self.conn.execute(
            "DELETE FROM traces WHERE trace IN
             (SELECT trace FROM traces ORDER BY last_batch ASC LIMIT ?1)",
            [n as i64],
        )? as u64)
    }

    fn drop_unneeded_batches(&mut self) -> rusqlite::Result<()> {
        let first: Option<i64> =
            self.conn
                .query_row("SELECT min(first_batch) FROM traces", [], |r| r.get(0))?;
        match first {
            Some(first) => self
                .conn
                .execute("DELETE FROM batches WHERE id < ?1", [first])?,
            None => self.conn.execute("DELETE FROM batches", [])?,
        };
        Ok(())
    }
}

/// Every origin row: (id, origin).
fn read_origins(conn: &Connection) -> rusqlite::Result<Vec<(i64, Origin)>> {
    let mut stmt = conn.prepare("SELECT id, service, sdk, pid, host, otlp FROM origins")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Origin {
                service: r.get(1)?,
                sdk: r.get(2)?,
                pid: r.get(3)?,
                host: r.get(4)?,
                otlp: r.get::<_, i64>(5)? != 0,
            },
        ))
    })?;
    rows.collect()
}

/// What a replay read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayStats {
    /// Traces selected.
    pub traces: usize,
    /// Batches read.
    pub batches: u64,
    /// Events applied.
    pub events: u64,
    /// Batches that no longer decode (skipped).
    pub undecodable: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64, traces: std::ops::Range<u128>) -> Record {
        Record {
            origin: Arc::new(Origin::named("t")),
            encoding: Encoding::Msgpack,
            payload: vec![n as u8; 100_000],
            traces: traces.map(TraceId).collect(),
            received_ns: n,
        }
    }

    #[test]
    fn a_full_journal_makes_room_by_deleting_the_oldest_traces() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal
            .conn
            .pragma_update(None, "max_page_count", 160)
            .unwrap();
        let mut n = 0u64;
        let full = loop {
            n += 1;
            let first = u128::from(n) * 100;
            if let Err(err) = journal.append(&[record(n, first..first + 100)]) {
                break err;
            }
            assert!(n < 100, "never filled");
        };
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        let deleted = journal
            .retain(Some(100_000), Some(0), Some(256 * 1024))
            .unwrap();
        assert!(deleted > 0);
        assert!(journal.disk_bytes().unwrap() <= 256 * 1024);
        journal
            .append(&[record(n, 1_000_000..1_000_100)])
            .expect("room after retention");
    }

    #[test]
    fn after_a_transaction_too_big_to_fit_single_batches_still_fit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal
            .conn
            .pragma_update(None, "max_page_count", 400)
            .unwrap();
        for n in 1..=5u64 {
            let t = u128::from(n) * 1000;
            journal.append(&[record(n, t..t + 200)]).unwrap();
        }
        let big: Vec<Record> = (6..22u64)
            .map(|n| record(n, u128::from(n) * 1000..u128::from(n) * 1000 + 200))
            .collect();
        assert!(
            journal.append(&big).is_err(),
            "1.6 MB cannot fit in 400 pages"
        );
        journal.append(&big[..1]).expect("one batch fits");
    }

    #[test]
    fn a_trace_spanning_batches_of_one_transaction_keeps_its_first_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal
            .append(&[record(1, 7..8), record(2, 7..8), record(3, 8..9)])
            .unwrap();
        let range: (i64, i64) = journal
            .conn
            .query_row(
                "SELECT first_batch, last_batch FROM traces WHERE trace = ?1",
                [7u128.to_be_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(range, (1, 2));
    }

    #[test]
    fn retention_by_count_and_age_deletes_oldest_first_with_their_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        for n in 1..=10u64 {
            let t = u128::from(n);
            journal.append(&[record(n, t..t + 1)]).unwrap();
        }
        assert_eq!(journal.retain(Some(6), None, None).unwrap(), 4);
        assert_eq!(journal.trace_count().unwrap(), 6);
        // Traces 1–4 went with the batches only they needed.
        let batches: i64 = journal
            .conn
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap();
        assert_eq!(batches, 6);
        // Age: last seen before 8 (received_ns = n): traces 5, 6 and 7.
        assert_eq!(journal.retain(None, Some(8), None).unwrap(), 3);
        let mut restored = Vec::new();
        journal
            .replay(100, |_, events, t| restored.push((events.len(), t)))
            .unwrap();
        // Payloads here are not real batches: they do not decode, so nothing is applied.
        assert!(restored.is_empty());
        assert_eq!(journal.trace_count().unwrap(), 3);
    }
}
