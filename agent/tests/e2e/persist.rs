//! Persistence (`--data-dir`) against real agent processes: traces and groups survive SIGTERM and
//! SIGKILL (with the loss window measured), traces evicted from memory load back from disk, a
//! torn or corrupt journal does not stop the agent, and an unusable or full disk degrades
//! `/readyz` while the agent keeps serving from memory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Agent, flush};

fn start(dir: &Path, extra: &[&str]) -> Agent {
    let path = dir.to_str().unwrap();
    let mut args = vec!["--data-dir", path];
    args.extend_from_slice(extra);
    Agent::start(&args)
}

/// `n` traces of one step with one op each, `every`-th joins group `cid`; returns their ids.
fn send_traces(client: &flowscope::Client, n: usize, cid: &str, every: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut builder = client.trace("persisted");
            if i % every == 0 {
                builder = builder.correlation_id(cid);
            }
            let run = builder.start();
            let id = run.id().to_string();
            {
                let step = run.step(format!("step-{}", i % 3)).start();
                flowscope::state_set(format!("key-{i}")).record();
                step.end();
            }
            run.end();
            id
        })
        .collect()
}

/// Posts one OTLP/JSON trace of two spans (`b7ad6b7169203331` and its child `…332`).
fn post_otlp_pair(agent: &Agent) {
    let otlp = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel-app"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
             "name": "GET /", "kind": 2, "startTimeUnixNano": "1700000000000000000",
             "endTimeUnixNano": "1700000000100000000"},
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203332",
             "parentSpanId": "b7ad6b7169203331", "name": "work", "kind": 1,
             "startTimeUnixNano": "1700000000010000000", "endTimeUnixNano": "1700000000090000000"}
        ]}]
    }]});
    let posted = reqwest::blocking::Client::new()
        .post(format!("{}/v1/traces", agent.base))
        .json(&otlp)
        .send()
        .unwrap();
    assert_eq!(posted.status().as_u16(), 200);
}

/// A real receiver (its gRPC and HTTP addresses), a fresh data dir, and the flags that export
/// to the receiver's OTLP/HTTP address, retrying quickly.
fn export_setup() -> (
    crate::support::Receiver,
    (String, String),
    tempfile::TempDir,
    Vec<String>,
) {
    let receiver = crate::support::Receiver::start();
    let addresses = (receiver.grpc.clone(), receiver.http.clone());
    let args = vec![
        "--otlp-endpoint".into(),
        format!("http://{}", addresses.1),
        "--otlp-max-backoff".into(),
        "100ms".into(),
    ];
    (receiver, addresses, tempfile::tempdir().unwrap(), args)
}

/// [`start`] with owned flags.
fn start_with(dir: &Path, extra: &[String]) -> Agent {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    start(dir, &extra)
}

/// Waits until the agent has `traces` traces and everything it received is committed.
fn wait_committed(agent: &Agent, traces: u64) {
    agent.wait_for("/healthz", |_, h| {
        h["store"]["tracesCreated"].as_u64() >= Some(traces)
            && h["persistence"]["pendingBatches"] == 0
            && h["persistence"]["batchesWritten"].as_u64() == h["ingest"]["frames"].as_u64()
    });
}

fn listed(agent: &Agent) -> std::collections::HashSet<String> {
    let body = agent.get_ok("/api/traces?limit=1000");
    body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn traces_and_groups_survive_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(dir.path(), &[]);
    let client = agent.client();
    let ids = send_traces(&client, 200, "order-7", 20);
    flush(&client);
    agent.wait_for("/api/traces?limit=1000", |_, b| {
        b["traces"].as_array().map(Vec::len) == Some(200)
    });
    let before = agent.get_ok(&format!("/api/traces/{}", ids[7]));
    agent.terminate();

    let agent = start(dir.path(), &[]);
    assert_eq!(
        listed(&agent),
        ids.iter().cloned().collect(),
        "every trace came back"
    );
    let after = agent.get_ok(&format!("/api/traces/{}", ids[7]));
    assert_eq!(
        after["steps"], before["steps"],
        "steps, ops and timings identical"
    );
    assert_eq!(after["status"], "completed");
    let group = agent.get_ok("/api/groups/order-7");
    assert_eq!(
        group["traces"].as_array().map(Vec::len),
        Some(10),
        "the group is rebuilt"
    );
    let flows = agent.get_ok("/api/flows");
    assert!(
        flows.to_string().contains("persisted"),
        "flow statistics are back: {flows}"
    );
    assert_eq!(agent.get_ok("/readyz")["persistence"]["state"], "ok");
}

#[test]
fn sigterm_right_after_a_flush_keeps_everything_the_client_sent() {
    // No waiting for the API: what the client wrote to the socket before SIGTERM is read,
    // stored and committed before the agent exits.
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(dir.path(), &[]);
    let client = agent.client();
    let ids = send_traces(&client, 1000, "burst", 100);
    flush(&client);
    agent.terminate();

    let agent = start(dir.path(), &[]);
    let back = listed(&agent);
    let missing = ids.iter().filter(|id| !back.contains(*id)).count();
    assert_eq!(missing, 0, "{missing} of {} traces lost", ids.len());
}

/// The bound this agent states: a batch applied this long before SIGKILL is on disk.
const KILL_WINDOW: Duration = Duration::from_millis(250);

#[test]
fn sigkill_loses_at_most_the_last_commit_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(dir.path(), &["--max-traces", "5000"]);
    let client = agent.client();
    let committed = send_traces(&client, 1000, "g", 1000);
    flush(&client);
    wait_committed(&agent, 1000);
    // Applied, then KILL_WINDOW later SIGKILL: the stated bound, asserted.
    let applied = send_traces(&client, 1000, "g", 1000);
    flush(&client);
    agent.wait_for("/healthz", |_, h| h["store"]["tracesCreated"] == 2000);
    std::thread::sleep(KILL_WINDOW);
    // A third burst killed as soon as the SDK has written it: what the window costs.
    let tail = send_traces(&client, 1000, "g", 1000);
    flush(&client);
    let written = Instant::now();
    agent.kill();
    let killed_after = written.elapsed();

    let agent = start(dir.path(), &["--max-traces", "5000"]);
    let present = |id: &String| agent.get(&format!("/api/traces/{id}")).0 == 200;
    for id in committed.iter().chain(&applied) {
        assert!(
            present(id),
            "trace {id}, applied {KILL_WINDOW:?} before SIGKILL, was lost"
        );
    }
    let back: Vec<&String> = tail.iter().filter(|id| present(id)).collect();
    println!(
        "kill -9 {killed_after:?} after the SDK wrote the last burst: {}/1000 of it restored \
         (commit every {:?}); everything applied {KILL_WINDOW:?} before the kill restored",
        back.len(),
        flowscope_agent::persist::COMMIT_EVERY
    );
    // Whatever came back is what a commit held: a prefix of what was sent (a trace whose frames
    // straddled the kill may lack its later events), so an ended trace has its step.
    for id in back.into_iter().take(50) {
        let t = agent.get_ok(&format!("/api/traces/{id}"));
        let steps = t["steps"].as_array().map_or(0, Vec::len);
        assert!(steps <= 1, "{t}");
        if t["status"] != "running" {
            assert_eq!(steps, 1, "an ended trace without its step: {t}");
        }
    }
}

#[test]
fn traces_evicted_from_memory_load_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(dir.path(), &["--max-traces", "50"]);
    let client = agent.client();
    let ids = send_traces(&client, 300, "g", 1000);
    flush(&client);
    wait_committed(&agent, 300);
    assert_eq!(agent.get_ok("/healthz")["store"]["traces"], 50);
    // The first trace left memory long ago; its page still answers, from the journal.
    let old = agent.get_ok(&format!("/api/traces/{}", ids[0]));
    assert_eq!(old["id"], ids[0]);
    assert_eq!(old["steps"][0]["ops"][0]["key"], "key-0");
    let (status, _) = agent.get("/api/traces/00000000000000000000000000000001");
    assert_eq!(status, 404);
}

#[test]
fn restart_with_ten_thousand_traces_serves_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(dir.path(), &["--max-traces", "10000"]);
    let client = agent.client();
    send_traces(&client, 10_000, "g", 100_000);
    flush(&client);
    wait_committed(&agent, 10_000);
    agent.terminate();
    let started = Instant::now();
    let agent = start(dir.path(), &["--max-traces", "10000"]);
    let body = agent.get_ok("/healthz");
    let elapsed = started.elapsed();
    assert_eq!(body["store"]["traces"], 10_000);
    println!("restart with 10,000 stored traces (debug build): API up in {elapsed:?}");
    // A debug build; the release figure is in benches/persist.rs.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn a_torn_or_corrupt_journal_does_not_stop_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(dir.path(), &[]);
    let client = agent.client();
    let ids = send_traces(&client, 100, "g", 1000);
    flush(&client);
    wait_committed(&agent, 100);
    agent.kill(); // the WAL stays: its tail is torn below
    let wal = dir.path().join("flowscope.db-wal");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    if len > 1000 {
        let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
        file.set_len(len - 777).unwrap();
    }
    let mut agent = start(dir.path(), &[]);
    let back = listed(&agent);
    assert!(back.iter().all(|id| ids.contains(id)), "nothing invented");
    assert_eq!(agent.get_ok("/readyz")["persistence"]["state"], "ok");
    agent.terminate();

    // A file that is not SQLite at all: set aside, started empty, and said so.
    std::fs::write(dir.path().join("flowscope.db"), vec![0x5a; 8192]).unwrap();
    let _ = std::fs::remove_file(&wal);
    let agent = start(dir.path(), &[]);
    let ready = agent.get_ok("/readyz");
    assert_eq!(ready["persistence"]["state"], "ok", "{ready}");
    assert!(
        ready["persistence"]["note"]
            .as_str()
            .unwrap_or("")
            .contains("moved to"),
        "{ready}"
    );
    let moved = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("corrupt-"));
    assert!(moved, "the damaged file is kept for inspection");
    // And it records again.
    let client = agent.client();
    let fresh = send_traces(&client, 3, "g", 1000);
    flush(&client);
    agent.wait_trace(&fresh[2], |t| t["status"] == "completed");
}

#[test]
fn an_unusable_data_dir_degrades_readiness_and_the_agent_keeps_serving() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let agent = start(&file.join("state"), &[]);
    let ready = agent.get_ok("/readyz");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["persistence"]["state"], "degraded");
    assert!(ready["persistence"]["reason"].as_str().is_some(), "{ready}");
    let client = agent.client();
    let ids = send_traces(&client, 5, "g", 1000);
    flush(&client);
    agent.wait_trace(&ids[4], |t| t["status"] == "completed");
}

#[test]
fn a_second_agent_on_the_same_data_dir_keeps_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start(dir.path(), &[]);
    let second = start(dir.path(), &[]);
    let ready = second.get_ok("/readyz");
    assert_eq!(ready["persistence"]["state"], "degraded");
    assert!(
        ready["persistence"]["reason"]
            .as_str()
            .unwrap()
            .contains("in use by another"),
        "{ready}"
    );
}

#[test]
fn a_full_disk_degrades_then_retention_makes_room_and_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    // A journal capped at 400 pages (1.6 MB) with --max-disk (1 MiB, the smallest) below it:
    // the 2 MB burst fills the file, a write fails with "database or disk is full", retention
    // deletes the oldest traces and the rest is written.
    let agent = Agent::start_with_env(
        &[
            "--data-dir",
            path,
            "--max-disk",
            "1MiB",
            "--max-traces",
            "5000",
        ],
        &[("FLOWSCOPE_TEST_MAX_PAGES", "400")],
    );
    let client = agent.client();
    let ids = send_traces(&client, 4000, "g", 100_000);
    flush(&client);
    let deadline = Instant::now() + Duration::from_secs(15);
    let health: Value = loop {
        let h = agent.get_ok("/healthz");
        if h["store"]["tracesCreated"] == 4000
            && h["persistence"]["batchesWritten"].as_u64() == h["ingest"]["frames"].as_u64()
            && h["persistence"]["pendingBatches"] == 0
            && h["persistence"]["state"] == "ok"
        {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {}",
            agent.get_ok("/readyz")["persistence"]
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        health["persistence"]["writeFailures"].as_u64().unwrap() > 0,
        "the capped journal never filled: {health}"
    );
    // Room was made oldest first: the journal holds the newest traces, within the cap.
    let persistence = &health["persistence"];
    assert!(
        persistence["diskBytes"].as_u64().unwrap() <= 400 * 4096,
        "{persistence}"
    );
    let on_disk = persistence["tracesOnDisk"].as_u64().unwrap();
    assert!(on_disk > 0 && on_disk < 4000, "{persistence}");
    // Served from memory throughout.
    agent.wait_trace(&ids[3999], |t| t["status"] == "completed");
    assert_eq!(health["store"]["traces"], 4000);
}

#[test]
fn max_memory_moves_the_least_recent_traces_to_disk_whatever_their_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(
        dir.path(),
        &["--max-memory", "2MiB", "--max-traces", "10000"],
    );
    let client = agent.client();
    // One huge trace (20,000 ops, ~5 MB estimated), then many small ones.
    let huge = {
        let run = client.trace("huge").start();
        let id = run.id().to_string();
        {
            let step = run.step("bulk").start();
            for i in 0..20_000 {
                flowscope::state_set(format!("big-key-{i}")).record();
            }
            step.end();
        }
        run.end();
        id
    };
    let small = send_traces(&client, 2000, "g", 100_000);
    flush(&client);
    wait_committed(&agent, 2001);
    let store = agent.get_ok("/healthz")["store"].clone();
    let memory = store["memoryBytes"].as_u64().unwrap();
    assert!(
        memory <= 2 << 20,
        "memory {memory} over --max-memory: {store}"
    );
    assert!(store["traces"].as_u64().unwrap() < 2001, "{store}");
    // The newest small traces stayed; the huge one left memory and loads back from disk whole.
    agent.wait_trace(&small[1999], |t| t["status"] == "completed");
    let back = agent.get_ok(&format!("/api/traces/{huge}"));
    assert_eq!(back["steps"][0]["operations"]["state"], 20_000);
}

/// Collector down → agent killed (SIGKILL: no chance to save its export queue) → restarted →
/// collector up: the spans the collector never got are exported from the journal, also for the
/// traces the restart does not restore into memory (it keeps 5 of the 22). A trace the collector
/// did get before the kill is not sent again.
#[test]
fn spans_a_killed_agent_never_delivered_are_exported_after_restart() {
    let (mut receiver, (grpc, http), dir, args) = export_setup();
    // First, with the collector up: one trace delivered, and the watermark committed past it.
    let mut agent = start_with(dir.path(), &args);
    let client = agent.client();
    let delivered = send_traces(&client, 1, "g", 1000);
    flush(&client);
    receiver.wait_spans(|s| s.len() >= 3);
    wait_committed(&agent, 1);
    let acked = agent.wait_for("/readyz", |_, b| {
        b["exporter"]["queuedSpans"] == 0 && b["exporter"]["ackedThroughNs"].as_u64() > Some(0)
    })["exporter"]["ackedThroughNs"]
        .clone();
    // The journal holds that watermark: the delivered trace is behind it.
    agent.wait_for("/healthz", |_, h| {
        h["persistence"]["exportAckedNs"] == acked
    });
    // Then the collector goes down: 20 more traces wait in the export queue, and an OTLP request
    // waits to be forwarded.
    receiver.kill();
    let ids = send_traces(&client, 20, "g", 1000);
    flush(&client);
    post_otlp_pair(&agent);
    // Committed: every socket frame and the OTLP request.
    agent.wait_for("/healthz", |_, h| {
        h["store"]["tracesCreated"] == 22
            && h["persistence"]["pendingBatches"] == 0
            && h["persistence"]["batchesWritten"].as_u64()
                == h["ingest"]["frames"].as_u64().map(|frames| frames + 1)
    });
    agent.wait_for("/readyz", |_, b| {
        b["exporter"]["state"] == "down" && b["exporter"]["queuedSpans"] == 60
    });
    agent.kill();

    let receiver = crate::support::Receiver::start_on(&grpc, &http);
    let mut restart = args.clone();
    restart.extend(["--max-traces".to_owned(), "5".to_owned()]);
    let agent = start_with(dir.path(), &restart);
    // 20 traces × (root + step + op), and the OTLP pair, derived again from the journal (its
    // as-received copy went with the killed process); 17 of those traces are not in memory.
    let spans = receiver.wait_spans(|s| s.len() >= 62);
    agent.wait_for("/readyz", |_, b| {
        b["exporter"]["state"] == "up" && b["exporter"]["queuedSpans"] == 0
    });
    let spans_now = receiver.spans();
    assert_eq!(spans.len(), 62, "{spans:#?}");
    assert_eq!(spans_now.len(), 62, "more arrived: {}", spans_now.len());
    let restored = agent.get_ok("/healthz")["store"]["traces"].as_u64();
    assert_eq!(
        restored,
        Some(5),
        "the restart restores its --max-traces only"
    );
    for id in ["b7ad6b7169203331", "b7ad6b7169203332"] {
        assert!(
            spans_now.iter().any(|s| s["spanId"] == id),
            "the OTLP-ingested span {id}"
        );
    }
    for id in &ids {
        let of_trace = spans_now
            .iter()
            .filter(|s| s["traceId"] == id.as_str())
            .count();
        assert_eq!(of_trace, 3, "trace {id} upstream");
    }
    assert!(
        !spans_now
            .iter()
            .any(|s| s["traceId"] == delivered[0].as_str()),
        "the trace delivered before the kill went again"
    );
}

/// A backlog saved at SIGTERM outlives a next run that is killed before it could send it: the
/// journal forgets it only once it has all left.
#[test]
fn a_saved_backlog_survives_a_run_killed_before_sending_it() {
    let (mut receiver, (grpc, http), dir, args) = export_setup();
    receiver.kill(); // down through the first two runs
    let mut agent = start_with(dir.path(), &args);
    let client = agent.client();
    let ids = send_traces(&client, 20, "g", 1000);
    flush(&client);
    agent.wait_for("/readyz", |_, b| b["exporter"]["queuedSpans"] == 60);
    agent.terminate(); // saves the 60 spans as the backlog

    // The second run takes the backlog into its forward queue as it starts (before it answers
    // HTTP) and dies before the collector is back.
    let mut agent = start_with(dir.path(), &args);
    agent.kill();

    let receiver = crate::support::Receiver::start_on(&grpc, &http);
    let agent = start_with(dir.path(), &args);
    let spans = receiver.wait_spans(|s| s.len() >= 60);
    agent.wait_for("/healthz", |_, h| h["otlp"]["forwardedSpans"] == 60);
    assert_eq!(spans.len(), 60);
    assert_eq!(receiver.spans().len(), 60, "a span arrived twice");
    for id in &ids {
        assert!(
            spans.iter().any(|s| s["traceId"] == id.as_str()),
            "trace {id} missing upstream"
        );
    }
}

/// Collector down → agent restarted (SIGTERM) → collector up: every span, the SDK's and the
/// OTLP-ingested ones, reaches the real receiver exactly once.
#[test]
fn spans_waiting_for_a_down_collector_survive_a_restart_and_arrive_once() {
    let (mut receiver, (grpc, http), dir, args) = export_setup();
    receiver.kill(); // the collector is down from the start
    let mut agent = start_with(dir.path(), &args);
    let client = agent.client();
    let ids = send_traces(&client, 20, "g", 1000);
    flush(&client);
    // 20 traces × (root + step + op) = 60 spans queued; plus 2 spans ingested as OTLP/JSON.
    post_otlp_pair(&agent);
    agent.wait_for("/readyz", |_, b| {
        b["exporter"]["state"] == "down" && b["exporter"]["queuedSpans"] == 60
    });
    agent.terminate();

    let agent = start_with(dir.path(), &args);
    let receiver = crate::support::Receiver::start_on(&grpc, &http);
    let spans = receiver.wait_spans(|s| s.len() >= 62);
    // Nothing more arrives once the backlog is through: wait for the forwarder to be idle.
    agent.wait_for("/healthz", |_, h| h["otlp"]["forwardedSpans"] == 62);
    let spans_now = receiver.spans();
    let mut seen = std::collections::HashMap::new();
    for s in &spans_now {
        *seen
            .entry(s["spanId"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(spans.len(), 62);
    assert_eq!(spans_now.len(), 62, "a span arrived twice");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    for id in &ids {
        assert!(
            spans_now.iter().any(|s| s["traceId"] == id.as_str()),
            "trace {id} missing upstream"
        );
    }
    assert!(
        seen.contains_key("b7ad6b7169203332"),
        "the OTLP-ingested span"
    );
}

#[test]
fn a_data_dir_others_can_write_to_is_refused_and_the_agent_serves_from_memory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let agent = start(dir.path(), &[]);
    let ready = agent.get_ok("/readyz");
    assert_eq!(ready["persistence"]["state"], "degraded", "{ready}");
    assert!(
        !dir.path().join("flowscope.db").exists(),
        "nothing written there"
    );
}
