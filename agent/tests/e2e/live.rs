//! Live streams: SSE and WebSocket event order, heartbeats, filters, slow clients.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

use crate::support::{Agent, flush};

/// One SSE message.
#[derive(Debug)]
struct Sse {
    event: String,
    id: u64,
    data: Value,
}

/// Reads an SSE stream on a thread; messages arrive on the channel.
fn sse(agent: &Agent, query: &str) -> mpsc::Receiver<Sse> {
    let url = format!("{}/api/stream{query}", agent.base);
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let resp = client.get(url).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut event, mut id, mut data) = (String::new(), 0, String::new());
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_owned();
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            } else if line.is_empty() && !event.is_empty() {
                let msg = Sse {
                    event: std::mem::take(&mut event),
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
                data.clear();
                if tx.send(msg).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for the first message satisfying `want`, returning it and everything before it.
#[track_caller]
fn until(rx: &mpsc::Receiver<Sse>, want: impl Fn(&Sse) -> bool) -> (Sse, Vec<Sse>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("timed out; got {before:?}"));
        if want(&msg) {
            return (msg, before);
        }
        before.push(msg);
    }
}

#[test]
fn sse_reports_creation_then_completion_with_group_and_flow_updates() {
    let agent = Agent::start(&["--heartbeat", "1h"]);
    let rx = sse(&agent, "");
    let client = agent.client();
    let trace = client
        .trace("live-flow")
        .correlation_id("live-group")
        .start();
    let id = trace.id().to_string();
    let step = trace.step("first").start();
    flush(&client);
    let (created, _) = until(&rx, |m| m.event == "trace.created");
    assert_eq!(created.data["id"], id);
    assert_eq!(created.data["status"], "running");
    let (group, _) = until(&rx, |m| m.event == "group.updated");
    assert_eq!(group.data["id"], "live-group");
    assert_eq!(group.data["status"], "active");
    let (flow, _) = until(&rx, |m| m.event == "flow.status");
    assert_eq!(flow.data["flowName"], "live-flow");
    assert_eq!(flow.data["activeTraces"], 1);
    assert_eq!(flow.data["steps"][0]["running"], 1);

    step.end();
    trace.end();
    flush(&client);
    let (done, between) = until(&rx, |m| m.event == "trace.completed");
    assert_eq!(done.data["id"], id);
    assert_eq!(done.data["status"], "completed");
    assert!(
        between.iter().all(|m| m.event != "trace.created"),
        "created twice: {between:?}"
    );
    assert!(done.id > created.id, "sequence numbers increase");
    let (flow, _) = until(&rx, |m| m.event == "flow.status");
    assert_eq!(
        (
            flow.data["activeTraces"].as_u64(),
            flow.data["successRate"].as_f64()
        ),
        (Some(0), Some(1.0))
    );
    let flows = agent.get_ok("/api/flows");
    assert_eq!(
        flows["flows"][0], flow.data,
        "/api/flows serves the same status"
    );
}

#[test]
fn heartbeats_and_filters() {
    let agent = Agent::start(&["--heartbeat", "100ms"]);
    let only_b = sse(&agent, "?flow=flow-b");
    let started = Instant::now();
    let (beat, _) = until(&only_b, |m| m.event == "heartbeat");
    assert!(beat.data["time"].as_u64().is_some());
    assert!(started.elapsed() < Duration::from_secs(2));

    let client = agent.client();
    for flow in ["flow-a", "flow-b", "flow-a"] {
        client.trace(flow).start().end();
    }
    flush(&client);
    let (b, before) = until(&only_b, |m| m.event == "trace.completed");
    assert_eq!(b.data["flowName"], "flow-b");
    let (flow_status, _) = until(&only_b, |m| m.event == "flow.status");
    assert_eq!(flow_status.data["flowName"], "flow-b");
    std::thread::sleep(Duration::from_millis(200));
    let rest: Vec<Sse> = before.into_iter().chain(only_b.try_iter()).collect();
    assert!(
        rest.iter()
            .all(|m| m.event == "heartbeat" || m.data["flowName"] == "flow-b"),
        "flow filter leaked: {rest:?}"
    );

    // A traceId filter over WebSocket.
    let target = client.trace("flow-a").start();
    let target_id = target.id().to_string();
    let url = format!(
        "{}/api/ws?traceId={target_id}",
        agent.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    client.trace("flow-a").start().end();
    target.end();
    flush(&client);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no trace event on the websocket");
        let Message::Text(text) = ws.read().unwrap() else {
            continue;
        };
        let msg: Value = serde_json::from_str(&text).unwrap();
        if msg["type"] == "heartbeat" {
            continue;
        }
        assert_eq!(msg["data"]["id"], target_id, "traceId filter leaked: {msg}");
        if msg["type"] == "trace.completed" {
            break;
        }
    }

    let (status, body) = agent.get("/api/stream?colour=red");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

#[test]
fn a_slow_websocket_client_is_dropped_with_a_reason_and_the_agent_stays_fast() {
    let agent = Agent::start(&["--live-buffer", "8", "--heartbeat", "1h"]);
    let url = format!("{}/api/ws", agent.base.replace("http://", "ws://"));
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    // Never read while the agent publishes far more than the socket and the buffer hold.
    let client = agent.client();
    for i in 0..20_000 {
        client.trace(format!("flood-{}", i % 50)).start().end();
        if i % 2_000 == 0 {
            client.flush(Duration::from_secs(5));
        }
    }
    flush(&client);
    let t = Instant::now();
    agent.wait_for("/healthz", |_, b| b["live"]["droppedClients"] == 1);
    assert!(t.elapsed() < Duration::from_secs(5));
    let t = Instant::now();
    agent.get_ok("/api/traces?limit=10");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "API slowed by a stuck client: {:?}",
        t.elapsed()
    );

    if let MaybeTlsStream::Plain(stream) = ws.get_mut() {
        TcpStream::set_read_timeout(stream, Some(Duration::from_secs(5))).unwrap();
    }
    let mut last_text = Value::Null;
    let close = loop {
        match ws.read() {
            Ok(Message::Text(text)) => last_text = serde_json::from_str(&text).unwrap(),
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}; last {last_text}"),
        }
    };
    assert_eq!(last_text["type"], "error");
    assert_eq!(last_text["data"]["code"], "slow_client");
    let close = close.expect("close frame");
    assert_eq!(u16::from(close.code), 1008);
}
