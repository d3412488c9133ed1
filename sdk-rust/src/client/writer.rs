//! The background writer thread: drains the queue, batches events into frames, writes them to the
//! agent socket, and reconnects with exponential backoff when the agent is absent or restarts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::config::Config;
use super::lane::Consumer;
use super::shared::Shared;
use crate::clock::WallClock;
use crate::wire::{
    self, AgentReply, ClientStats, EncodeError, Encoding, Event, HEADER_LEN, Hello,
    PROTOCOL_VERSION,
};

/// Longest handshake reply the writer reads.
const MAX_REPLY: usize = 64 * 1024;
/// Empty looks at the lanes with a growing spin between them, then with a yield, before the
/// writer sleeps (as crossbeam's channels back off).
const IDLE_SPINS: u32 = 6;
const IDLE_YIELDS: u32 = 10;
/// How long the writer sleeps without events between rounds of housekeeping.
const IDLE_TICK: Duration = Duration::from_millis(50);
/// For this long after its last events the writer naps instead of sleeping: it wakes by itself
/// every [`NAP`], and emitting threads do not wake it. Waking a sleeping thread is a system call
/// (and, on a virtual machine, an interrupt to another CPU) that the emit pays: about a third of
/// an op's cost in a process emitting bursts a few milliseconds apart. Past this window, the
/// writer sleeps until an emit wakes it, so an idle process has no timer firing.
const NAP_WINDOW: Duration = Duration::from_millis(20);
/// The longest an event waits while the writer naps.
const NAP: Duration = Duration::from_millis(1);

/// An open, handshaken connection and the frame limit the agent announced.
struct Connection {
    stream: UnixStream,
    max_frame: usize,
    sample_ratio: Option<f64>,
}

/// Runs until every [`Client`](super::Client) handle is dropped and the queue is drained.
pub(crate) fn run(shared: Arc<Shared>, config: Config, mut clock: WallClock) {
    shared.set_writer(std::thread::current());
    let mut writer = Writer {
        shared,
        config,
        conn: None,
        ever_connected: false,
        backoff: Duration::ZERO,
        next_attempt: Instant::now(),
        last_stats: Instant::now(),
        buf: Vec::with_capacity(64 * 1024),
    };
    writer.backoff = writer.config.backoff_min;
    let max_batch = writer.config.max_batch_events;
    let mut batch: Vec<Event> = Vec::with_capacity(max_batch);
    let mut lanes: Vec<Consumer<Event>> = Vec::new();
    // What this round took from each lane (by the lane's index), before it joins the batch.
    let mut runs: Vec<VecDeque<Event>> = Vec::new();
    // Lanes are visited from a rotating start, so one busy thread cannot starve the others.
    let mut first_lane = 0usize;
    let asymmetric = super::shared::asymmetric_fences();
    let mut last_housekeeping = Instant::now();
    let mut idle_rounds = 0u32;
    // When the writer last had events (the nap window starts there).
    let mut last_busy = Instant::now();
    let count_events = writer.config.queue_capacity != usize::MAX;
    loop {
        // Read before looking at the lanes: once it is set no new event can arrive, so empty
        // lanes after it mean everything was taken.
        let closing = writer.shared.is_closed();
        writer.shared.adopt_lanes(&mut lanes);
        let before = batch.len();
        let mut taken = 0usize;
        let count = lanes.len();
        runs.resize_with(count, VecDeque::new);
        let room = max_batch.saturating_sub(batch.len());
        let mut got = 0;
        for k in 0..count {
            let at = (first_lane + k) % count;
            while got < room {
                let Some(event) = lanes[at].pop() else { break };
                taken += event.queued_size();
                runs[at].push_back(event);
                got += 1;
            }
        }
        if got > 0 {
            // Every stamp just taken was read before this sample: it can place them all.
            clock.refresh();
            for run in &mut runs {
                for event in run.iter_mut() {
                    writer.settle(&clock, event);
                }
            }
        }
        if count > 1 && got > 0 {
            // A task that moved between threads left its earlier events in another lane, which
            // may have been looked at before they were there. They happened before what was
            // taken, so they are visible now and no later: take every event emitted up to the
            // latest one taken (at most another batch), then send in emit order.
            let horizon = runs.iter().flatten().map(emitted).max().unwrap_or(0);
            let mut more = 0;
            for (lane, run) in lanes.iter_mut().zip(runs.iter_mut()) {
                while more < max_batch {
                    let Some(mut event) = lane.pop_if(|e| emitted_at(&clock, e) <= horizon) else {
                        break;
                    };
                    taken += event.queued_size();
                    writer.settle(&clock, &mut event);
                    run.push_back(event);
                    more += 1;
                }
            }
            merge_runs(&mut runs, &mut batch);
        } else {
            for run in &mut runs {
                batch.extend(run.drain(..));
            }
        }
        if count > 0 {
            first_lane = (first_lane + 1) % count;
            // A finished lane's thread is gone and everything it pushed was taken.
            lanes.retain(|lane| {
                let finished = lane.is_finished();
                if finished {
                    writer.shared.retire_lane(lane);
                }
                !finished
            });
            // The runs are empty again; keep one per lane.
            runs.truncate(lanes.len());
        }
        if batch.len() < max_batch && writer.shared.spilling() {
            let mut spilled = Vec::new();
            writer.shared.unspill(&mut spilled, max_batch - batch.len());
            clock.refresh();
            for mut event in spilled {
                taken += event.queued_size();
                writer.settle(&clock, &mut event);
                batch.push(event);
            }
        }
        let added = batch.len() - before;
        // The events left the queue: their bytes are room for new events (one update per batch).
        if taken > 0 {
            writer
                .shared
                .queued_bytes
                .fetch_sub(taken, Ordering::Relaxed);
        }
        if count_events && added > 0 {
            writer
                .shared
                .queued_events
                .fetch_sub(added, Ordering::Relaxed);
        }
        if batch.is_empty() {
            if closing {
                return;
            }
            // Events often follow events: look again a few times before sleeping, since waking
            // a sleeping writer costs the emitting thread a system call.
            if idle_rounds < IDLE_SPINS + IDLE_YIELDS {
                idle_rounds += 1;
                if idle_rounds <= IDLE_SPINS {
                    for _ in 0..1u32 << idle_rounds {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            idle_rounds = 0;
            if last_housekeeping.elapsed() >= IDLE_TICK {
                writer.report_drops();
                writer.maybe_send_stats();
                for lane in &mut lanes {
                    lane.drop_spares_if_idle();
                }
                last_housekeeping = Instant::now();
            }
            if last_busy.elapsed() < NAP_WINDOW {
                // Unparked early by a new lane, a flush or the last handle going away.
                std::thread::park_timeout(NAP);
                // Nothing came for a round of spins and a nap: the next empty look naps at once.
                idle_rounds = IDLE_SPINS + IDLE_YIELDS;
            } else {
                writer.shared.writer_sleep(&lanes, asymmetric, IDLE_TICK);
            }
            continue;
        }
        idle_rounds = 0;
        last_busy = Instant::now();
        writer.report_drops();
        if writer.deliver(&batch, closing) {
            batch.clear();
        } else if closing {
            // Last chance failed: nobody is left to deliver to.
            writer.count_done(batch.len(), false);
            batch.clear();
        }
    }
}

/// When an event was emitted: the end of what it describes (a timed operation is sent when it
/// ends), 0 for the kinds without a time.
fn emitted(event: &Event) -> u64 {
    event.times().map_or(0, |(_, end)| end)
}

/// [`emitted`] for an event still in its lane, whose time may be a stamp.
fn emitted_at(clock: &WallClock, event: &Event) -> u64 {
    event
        .times()
        .map_or(0, |(start, end)| clock.resolve(start) + (end - start))
}

/// Moves the events of `runs` into `batch`, each run in its own order, the runs interleaved by
/// emit time (ties: the lane listed first).
fn merge_runs(runs: &mut [VecDeque<Event>], batch: &mut Vec<Event>) {
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = runs
        .iter()
        .enumerate()
        .filter_map(|(at, run)| run.front().map(|e| Reverse((emitted(e), at))))
        .collect();
    while let Some(Reverse((_, at))) = heads.pop() {
        batch.extend(runs[at].pop_front());
        if let Some(next) = runs[at].front() {
            heads.push(Reverse((emitted(next), at)));
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    config: Config,
    conn: Option<Connection>,
    ever_connected: bool,
    backoff: Duration,
    next_attempt: Instant,
    last_stats: Instant,
    buf: Vec<u8>,
}

impl Writer {
    /// Readies an event taken from the queue: its stamp becomes unix time, then the configured
    /// redaction applies, before it can leave the process.
    fn settle(&self, clock: &WallClock, event: &mut Event) {
        if let Some(t) = event.time_mut() {
            *t = clock.resolve(*t);
        }
        if let Some(rules) = &self.config.redact {
            rules.apply(event);
        }
        if let Some(hook) = &self.config.redact_hook {
            (hook.0)(event);
        }
    }

    /// Tries to write `batch`; `true` when it is done with (sent, or dropped as unsendable).
    /// `false` keeps it for a later attempt (no connection yet).
    fn deliver(&mut self, batch: &[Event], closing: bool) -> bool {
        if self.conn.is_none() && !self.try_connect(closing) {
            return false;
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        self.buf.clear();
        let (framed, oversized) =
            encode_fitting(self.config.encoding, batch, conn.max_frame, &mut self.buf);
        match conn.stream.write_all(&self.buf) {
            Ok(()) => {
                self.count_done(framed, true);
                self.count_done(oversized, false);
                true
            }
            Err(_) => {
                // The agent went away mid-write: it discards a partial frame, so resend it whole.
                self.disconnect();
                false
            }
        }
    }

    fn try_connect(&mut self, closing: bool) -> bool {
        let now = Instant::now();
        if now < self.next_attempt && !closing {
            std::thread::sleep((self.next_attempt - now).min(IDLE_TICK));
            return false;
        }
        match connect(&self.config) {
            Ok(conn) => {
                if let Some(ratio) = conn.sample_ratio {
                    self.shared.set_sample_ratio(ratio);
                }
                self.conn = Some(conn);
                self.backoff = self.config.backoff_min;
                self.shared.connected.store(true, Ordering::Relaxed);
                if self.ever_connected {
                    self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.ever_connected = true;
                self.shared.set_error(None);
                true
            }
            Err(err) => {
                // An absent agent is normal (it may start later); a refusal is worth telling.
                if matches!(
                    err.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ConnectionRefused
                ) && err.get_ref().is_some()
                {
                    self.shared.set_error(Some(err.to_string()));
                }
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(self.config.backoff_max);
                false
            }
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
        self.shared.connected.store(false, Ordering::Relaxed);
        self.next_attempt = Instant::now();
    }

    fn count_done(&self, events: usize, sent: bool) {
        if events == 0 {
            return;
        }
        let counter = if sent {
            &self.shared.sent
        } else {
            &self.shared.dropped
        };
        counter.fetch_add(events as u64, Ordering::Relaxed);
        self.shared.mark_processed(events as u64);
    }

    /// Tells the agent which traces lost events (so it marks them incomplete); kept for later
    /// when there is no connection.
    fn report_drops(&mut self) {
        let drops = self.shared.take_drops();
        if drops.is_empty() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            self.shared.restore_drops(drops);
            return;
        };
        let t = crate::now_nanos();
        let events: Vec<Event> = drops
            .iter()
            .map(|&(trace, n)| Event::Dropped(crate::wire::Dropped { t, trace, n }))
            .collect();
        self.buf.clear();
        let (framed, _) =
            encode_fitting(self.config.encoding, &events, conn.max_frame, &mut self.buf);
        if framed == 0 || conn.stream.write_all(&self.buf).is_err() {
            self.disconnect();
            self.shared.restore_drops(drops);
        }
    }

    /// Sends the client's counters now and then so the agent can show them.
    fn maybe_send_stats(&mut self) {
        if self.last_stats.elapsed() < self.config.stats_interval {
            return;
        }
        self.last_stats = Instant::now();
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let stats = Event::Stats(ClientStats {
            t: crate::now_nanos(),
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
        });
        self.buf.clear();
        if wire::encode_batch(
            self.config.encoding,
            &[stats],
            conn.max_frame,
            &mut self.buf,
        )
        .is_ok()
            && conn.stream.write_all(&self.buf).is_err()
        {
            self.disconnect();
        }
    }
}

/// Frames `batch` into `out`, splitting it into several frames when it exceeds `max_frame`.
/// Returns (events framed, events dropped because one alone exceeds `max_frame`).
fn encode_fitting(
    encoding: Encoding,
    batch: &[Event],
    max_frame: usize,
    out: &mut Vec<u8>,
) -> (usize, usize) {
    match wire::encode_batch(encoding, batch, max_frame, out) {
        Ok(()) => (batch.len(), 0),
        Err(EncodeError::TooLarge { .. }) if batch.len() > 1 => {
            let (left, right) = batch.split_at(batch.len() / 2);
            let (a, b) = encode_fitting(encoding, left, max_frame, out);
            let (c, d) = encode_fitting(encoding, right, max_frame, out);
            (a + c, b + d)
        }
        Err(_) => (0, batch.len()),
    }
}

/// Connects and performs the handshake.
fn connect(config: &Config) -> io::Result<Connection> {
    super::socket::check_socket(&config.socket_path)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    let mut stream = UnixStream::connect(&config.socket_path)?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let hello = Hello {
        v: PROTOCOL_VERSION,
        encoding: config.encoding,
        sdk: config.sdk.clone(),
        service: config.service.clone(),
        pid: Some(std::process::id()),
        host: hostname(),
    };
    let mut frame = Vec::new();
    wire::encode_frame(Encoding::Json, &hello, MAX_REPLY, &mut frame).map_err(io::Error::other)?;
    stream.write_all(&frame)?;
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header)?;
    let len = wire::frame_len(header);
    if len > MAX_REPLY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake reply too large",
        ));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    let reply: AgentReply = serde_json::from_slice(&payload).map_err(io::Error::other)?;
    if !reply.ok {
        let why = reply
            .error
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default();
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, why));
    }
    stream.set_read_timeout(None)?;
    let max_frame = reply
        .max_frame
        .map_or(config.max_frame, |m| (m as usize).min(config.max_frame));
    Ok(Connection {
        stream,
        max_frame,
        sample_ratio: reply.sample_ratio,
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
