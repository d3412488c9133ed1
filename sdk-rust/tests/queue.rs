//! The client's queue against a real socket peer: flush across threads, the byte bound, and the
//! budget that threads reserve ahead and give back when they end.

use std::time::{Duration, Instant};

use flowscope::wire::{Event, Log, LogLevel, TraceId};
use flowscope::{Client, Config};

#[path = "../benches/common/mod.rs"]
mod common;

fn log(n: u64) -> Event {
    Event::Log(Log {
        t: n + 1,
        trace: TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        span: None,
        level: LogLevel::Info,
        msg: format!("event {n:06}"),
        fields: None,
    })
}

/// Waits (up to 10 s) for `done`, checking every millisecond.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A client of a fresh sink (handshake, then discard); `bounded` sets its byte bound. The
/// directory holds the socket, so keep it while the client runs.
fn sink_client(bounded: Option<usize>) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sink.sock");
    common::start_sink(&socket);
    let mut config = Config::new("queue-test").socket(&socket);
    if let Some(bytes) = bounded {
        config = config.queue_bytes(bytes);
    }
    (dir, Client::new(config))
}

#[test]
fn flush_waits_for_the_events_of_every_thread() {
    let (_dir, client) = sink_client(None);
    const THREADS: u64 = 8;
    const EACH: u64 = 20_000;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let client = &client;
            scope.spawn(move || {
                for n in 0..EACH {
                    assert!(client.emit(log(t * EACH + n)));
                }
            });
        }
    });
    assert!(client.flush(Duration::from_secs(10)), "flush timed out");
    let stats = client.stats();
    assert_eq!(stats.enqueued, THREADS * EACH);
    assert_eq!(stats.sent, THREADS * EACH, "{stats:?}");
    assert_eq!((stats.dropped, stats.queued), (0, 0), "{stats:?}");
}

/// Emits one event when its thread's locals are torn down.
struct EmitOnExit(Option<(Client, u64)>);

impl Drop for EmitOnExit {
    fn drop(&mut self) {
        if let Some((client, n)) = self.0.take() {
            assert!(
                client.emit(log(n)),
                "an event from a thread-local destructor"
            );
        }
    }
}

thread_local! {
    static EMIT_ON_EXIT: std::cell::RefCell<EmitOnExit> = const {
        std::cell::RefCell::new(EmitOnExit(None))
    };
}

#[test]
fn an_event_emitted_as_a_thread_ends_is_sent_even_after_its_lanes_are_gone() {
    let (_dir, client) = sink_client(None);
    for t in 0..2 {
        let client = client.clone();
        std::thread::spawn(move || {
            // Destructors of thread-locals run in the reverse order of their first use: the
            // first thread's runs after its lanes are gone (the shared queue takes the event),
            // the second's while they are still there.
            if t == 0 {
                EMIT_ON_EXIT.with(|e| e.borrow_mut().0 = Some((client.clone(), 100)));
            }
            assert!(client.emit(log(t)));
            if t == 1 {
                EMIT_ON_EXIT.with(|e| e.borrow_mut().0 = Some((client.clone(), 101)));
            }
        })
        .join()
        .unwrap();
    }
    assert!(client.flush(Duration::from_secs(10)), "flush timed out");
    let stats = client.stats();
    assert_eq!((stats.enqueued, stats.sent), (4, 4), "{stats:?}");
    assert_eq!((stats.dropped, stats.queued), (0, 0), "{stats:?}");
}

#[test]
fn threads_that_end_give_back_the_budget_they_reserved() {
    // 1 MiB bound: each thread reserves 1 KiB at a time.
    let (_dir, client) = sink_client(Some(1 << 20));
    for t in 0..50 {
        let client = client.clone();
        std::thread::spawn(move || assert!(client.emit(log(t))))
            .join()
            .unwrap();
    }
    assert!(client.flush(Duration::from_secs(10)));
    // The writer retires an ended thread's lane (and returns its unused budget) on its next
    // round; without that, 50 KiB would stay reserved for ever.
    wait_for("the reserved budget to come back", || {
        client.stats().queued_bytes == 0
    });
    assert_eq!(client.stats().sent, 50);
}

#[test]
fn the_byte_bound_holds_with_no_agent_and_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody listens: everything stays queued until the bound (the writer takes one batch of up
    // to 16 events out of it, and holds it waiting for a connection).
    let bound = 64 * 1024;
    let batch = 16;
    let mut config = Config::new("queue-test")
        .socket(dir.path().join("absent.sock"))
        .queue_bytes(bound);
    config.max_batch_events = batch;
    let client = Client::new(config);
    let size = log(0).queued_size();
    let total = 2 * bound / size;
    let accepted = (0..total as u64).filter(|&n| client.emit(log(n))).count();
    let stats = client.stats();
    assert!(stats.queued_bytes as usize <= bound, "{stats:?}");
    assert!(
        accepted <= bound / size + batch,
        "{accepted} events of {size} bytes"
    );
    // Nearly all of the bound is usable (a thread reserves a 1024th of it ahead).
    assert!(accepted >= bound / size - 1, "only {accepted} accepted");
    assert_eq!(stats.dropped as usize, total - accepted, "{stats:?}");
    assert_eq!(stats.enqueued as usize, accepted, "{stats:?}");
}

/// Median time from `emit` to the event being sent, over 21 events `pause` apart. `flush` is not
/// used to wait, since it wakes the writer itself.
fn send_latency(client: &Client, pause: Duration) -> (Duration, Vec<Duration>) {
    let mut latencies: Vec<Duration> = (1..=21)
        .map(|n| {
            std::thread::sleep(pause);
            let sent = client.stats().sent;
            let started = Instant::now();
            assert!(client.emit(log(n)));
            wait_for("the event to be sent", || client.stats().sent > sent);
            started.elapsed()
        })
        .collect();
    latencies.sort();
    (latencies[latencies.len() / 2], latencies)
}

#[test]
fn an_event_after_a_quiet_spell_wakes_the_writer() {
    let (_dir, client) = sink_client(None);
    assert!(client.emit(log(0)));
    assert!(client.flush(Duration::from_secs(10)));
    // 30 ms apart, past the writer's 20 ms nap window: it sleeps each time, and the event must
    // wake it, not wait for its 50 ms tick (a missed wake-up: 45 ms median).
    let (median, all) = send_latency(&client, Duration::from_millis(30));
    assert!(
        median < Duration::from_millis(20),
        "median {median:?}: {all:?}"
    );
}

#[test]
fn events_a_few_milliseconds_apart_wait_at_most_a_nap() {
    let (_dir, client) = sink_client(None);
    assert!(client.emit(log(0)));
    assert!(client.flush(Duration::from_secs(10)));
    // 5 ms apart, within the nap window: the emit does not wake the writer; it looks again
    // within a millisecond by itself (45 ms median if it slept until its tick instead).
    let (median, all) = send_latency(&client, Duration::from_millis(5));
    assert!(
        median < Duration::from_millis(10),
        "median {median:?}: {all:?}"
    );
}
