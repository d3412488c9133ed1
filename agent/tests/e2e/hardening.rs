//! Hostile but valid-looking input (issue: "safe to run beside production"): each test is one
//! attack that used to crash the agent, grow it without bound or expose data, now answered with
//! a clear error or a bounded cost while the agent stays up and responsive.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Agent, RawConn};

fn tr(n: u64) -> String {
    format!("{n:032x}")
}

fn sp(n: u64) -> String {
    format!("{n:016x}")
}

/// A trace of `steps` top-level steps that all started and ended, in frames of 2,000 steps.
fn send_wide_trace(conn: &mut RawConn, trace: &str, flow: &str, steps: u64) {
    conn.send_events(&[json!({"k":"trace_start","t":1_000,"tr":trace,"flow":flow})]);
    let mut batch = Vec::new();
    for i in 1..=steps {
        let name = format!("step-{i:05}");
        batch.push(json!({"k":"step_start","t":1_000 + i,"tr":trace,"sp":sp(i),"name":name}));
        batch.push(json!({"k":"step_end","t":1_001 + i,"tr":trace,"sp":sp(i)}));
        if batch.len() >= 4_000 {
            conn.send_events(&batch);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        conn.send_events(&batch);
    }
}

/// Deepest bracket nesting of a JSON text (strings skipped), without parsing it.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn get_text(agent: &Agent, path: &str) -> (u16, String) {
    let resp = reqwest::blocking::get(format!("{}{path}", agent.base)).expect("http get");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// Sends a raw HTTP request and returns the status code and the whole response head + body read
/// until the server closes or 2 s pass.
fn raw_http(agent: &Agent, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(agent.http_addr()).expect("connect http");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !request.contains("Upgrade") {
            // Enough for the status line and headers of a small error response.
            if out.len() > 64 && (out.ends_with(b"}") || out.ends_with(b"\n")) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn deep_nesting_is_capped_and_every_view_renders() {
    let mut agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0xdee9);
    let mut events = vec![json!({"k":"trace_start","t":1_000,"tr":trace,"flow":"deep"})];
    for i in 1..=3_000u64 {
        let mut e =
            json!({"k":"step_start","t":1_000 + i,"tr":trace,"sp":sp(i),"name":format!("s{i}")});
        if i > 1 {
            e["ps"] = json!(sp(i - 1));
        }
        events.push(e);
    }
    conn.send_events(&events);
    let full = agent.wait_trace(&trace, |t| t["metadata"]["totalSteps"] == 3_000);
    // Depth 100 is kept; the 2,900 steps below it hang at that depth instead.
    assert_eq!(full["truncated"]["depth"], 2_900, "{}", full["truncated"]);

    let started = Instant::now();
    let (status, body) = get_text(&agent, &format!("/api/executions/{trace}/trace"));
    assert_eq!(status, 200, "{body:.200}");
    assert_eq!(body.matches("\"span_id\"").count(), 3_000);
    let depth = json_depth(&body);
    assert!(depth <= 2 * 100 + 8, "execution tree nests {depth} levels");
    for view in [
        "?view=timeline",
        "/export?format=otlp",
        "/export?format=csv",
    ] {
        let (status, _) = get_text(&agent, &format!("/api/traces/{trace}{view}"));
        assert_eq!(status, 200, "{view}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "renders took {:?}",
        started.elapsed()
    );
    assert!(agent.alive());
}

#[test]
fn out_of_order_chains_and_cycles_render_without_recursion() {
    let mut agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0xc1c1e);
    let mut events = vec![json!({"k":"trace_start","t":1_000,"tr":trace,"flow":"tangled"})];
    // A 2,000-long chain sent deepest first (so no depth is known when each arrives) ...
    for i in (1..=2_000u64).rev() {
        let mut e = json!({"k":"step_start","t":1_000 + i,"tr":trace,"sp":sp(i),"name":"chain"});
        if i > 1 {
            e["ps"] = json!(sp(i - 1));
        }
        events.push(e);
    }
    // ... and a parent cycle, which no root reaches.
    events
        .push(json!({"k":"step_start","t":5,"tr":trace,"sp":sp(9_001),"ps":sp(9_002),"name":"a"}));
    events
        .push(json!({"k":"step_start","t":6,"tr":trace,"sp":sp(9_002),"ps":sp(9_001),"name":"b"}));
    conn.send_events(&events);
    agent.wait_trace(&trace, |t| t["metadata"]["totalSteps"] == 2_002);
    let (status, body) = get_text(&agent, &format!("/api/executions/{trace}/trace"));
    assert_eq!(status, 200);
    assert_eq!(
        body.matches("\"span_id\"").count(),
        2_002,
        "every step once"
    );
    assert!(json_depth(&body) <= 2 * 100 + 8);
    assert!(agent.alive());
}

#[test]
fn stalled_frames_hold_no_memory_and_time_out() {
    let agent = Agent::start(&["--frame-timeout", "2s"]);
    let before = agent.rss_kib();
    let mut conns: Vec<RawConn> = (0..250)
        .map(|_| {
            let mut conn = RawConn::handshake(&agent, "json");
            conn.send_raw(&(4 * 1024 * 1024u32).to_be_bytes());
            conn.send_raw(b"[");
            conn
        })
        .collect();
    agent.wait_for("/healthz", |_, h| {
        h["ingest"]["connectionsOpen"].as_u64() >= Some(250)
    });
    let during = agent.rss_kib();
    // 250 announced 4 MiB frames used to pin 1 GB; now the buffers hold what arrived.
    assert!(
        during.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} to {during} KiB"
    );
    for conn in &mut conns {
        let frame = conn.read_frame().expect("an error frame");
        assert_eq!(frame["error"]["code"], "frame_timeout", "{frame}");
    }
    let health = agent.get_ok("/healthz");
    assert_eq!(health["ingest"]["rejected"]["frame_timeout"], 250);
}

#[test]
fn never_reading_live_clients_are_dropped_within_their_budget() {
    let mut agent = Agent::start(&[
        "--live-client-bytes",
        "65536",
        "--max-steps-per-trace",
        "30000",
    ]);
    let mut conn = RawConn::handshake(&agent, "json");
    let big = tr(0xb16);
    let _ = &mut agent;
    send_wide_trace(&mut conn, &big, "big", 20_000);
    agent.wait_trace(&big, |t| t["metadata"]["totalSteps"] == 20_000);

    // One SSE and one WebSocket subscriber that never read a byte.
    let mut sse = TcpStream::connect(agent.http_addr()).unwrap();
    sse.write_all(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut ws = TcpStream::connect(agent.http_addr()).unwrap();
    ws.write_all(
        b"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    agent.wait_for("/healthz", |_, h| h["live"]["subscribers"] == 2);
    let before = agent.rss_kib();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0u64;
    loop {
        // Small updates to the big trace and to 200 others: each tick has messages to publish.
        let mut batch = vec![json!({"k":"log","t":2_000 + round,"tr":big,"sp":sp(1),"msg":"tick"})];
        for i in 0..200u64 {
            let t = tr(0x1_0000 + i);
            batch.push(json!({"k":"log","t":2_000 + round,"tr":t,"msg":"tick"}));
        }
        conn.send_events(&batch);
        round += 1;
        let health = agent.get_ok("/healthz");
        if health["live"]["droppedClients"].as_u64() >= Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slow clients never dropped: {}",
            health["live"]
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let after = agent.rss_kib();
    assert!(
        after.saturating_sub(before) < 128 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    assert!(agent.alive());
    drop((sse, ws));
}

#[test]
fn live_messages_stay_small_for_huge_traces() {
    let agent = Agent::start(&["--max-steps-per-trace", "30000"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let big = tr(0xb17);
    send_wide_trace(&mut conn, &big, "huge", 20_000);
    agent.wait_trace(&big, |t| t["metadata"]["totalSteps"] == 20_000);
    let resp = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
        .get(format!("{}/api/stream?traceId={big}", agent.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Wait for the subscriber, then one 60-byte log.
    agent.wait_for("/healthz", |_, h| h["live"]["subscribers"] == 1);
    conn.send_events(&[json!({"k":"log","t":5_000,"tr":big,"sp":sp(7),"msg":"hello"})]);
    let mut reader = std::io::BufReader::new(resp);
    let mut line = String::new();
    let mut event = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "stream ended"
        );
        if let Some(kind) = line.strip_prefix("event: ") {
            event = kind.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data: ")
            && event.starts_with("trace.")
        {
            assert!(
                data.len() < 16 * 1024,
                "a trace message of {} bytes",
                data.len()
            );
            let summary: Value = serde_json::from_str(data).unwrap();
            assert_eq!(summary["stepNamesTruncated"], true);
            assert_eq!(summary["stepNames"].as_array().unwrap().len(), 50);
            assert_eq!(summary["metadata"]["totalSteps"], 20_000);
            break;
        }
    }
}

#[test]
fn metric_series_are_bounded() {
    let agent = Agent::start(&[
        "--max-traces",
        "100",
        "--metrics-max-flows",
        "20",
        "--metrics-max-steps",
        "40",
    ]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut batch = Vec::new();
    for i in 1..=2_000u64 {
        let trace = tr(0x5000_0000 + i);
        batch.push(json!({"k":"trace_start","t":1_000,"tr":trace,"flow":format!("flow-{i}")}));
        batch.push(
            json!({"k":"step_start","t":1_001,"tr":trace,"sp":sp(i),"name":format!("step-{i}")}),
        );
        batch.push(json!({"k":"step_end","t":1_002,"tr":trace,"sp":sp(i)}));
        batch.push(json!({"k":"trace_end","t":1_003,"tr":trace}));
        if batch.len() >= 2_000 {
            conn.send_events(&batch);
            batch.clear();
        }
    }
    agent.wait_for("/healthz", |_, h| h["store"]["tracesCreated"] == 2_000);
    let (status, text) = get_text(&agent, "/metrics");
    assert_eq!(status, 200);
    assert!(text.len() < 400_000, "/metrics is {} bytes", text.len());
    let flows: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("flowscope_workflow_duration_seconds_count"))
        .filter_map(|l| l.split("flow=\"").nth(1)?.split('"').next())
        .collect();
    assert!(flows.contains("other"), "{flows:?}");
    assert!(flows.len() <= 21, "{} flow series", flows.len());
}

#[test]
fn heavy_reads_do_not_stall_health_or_ingest() {
    let agent = Arc::new(Agent::start(&[
        "--max-steps-per-trace",
        "60000",
        "--max-events-per-trace",
        "200000",
    ]));
    let mut conn = RawConn::handshake(&agent, "json");
    let big = tr(0xbeef);
    send_wide_trace(&mut conn, &big, "heavy", 50_000);
    agent.wait_trace(&big, |t| t["metadata"]["totalSteps"] == 50_000);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (agent, stop, path) = (
            Arc::clone(&agent),
            Arc::clone(&stop),
            format!("/api/traces/{big}"),
        );
        std::thread::spawn(move || {
            let mut renders = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = get_text(&agent, &path);
                assert_eq!(status, 200);
                renders += 1;
            }
            renders
        })
    };
    // Ingest keeps writing to another trace meanwhile (a writer waiting on the lock used to
    // queue every reader behind the render).
    let writer = {
        let stop = Arc::clone(&stop);
        let mut conn = RawConn::handshake(&agent, "json");
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                conn.send_events(&[json!({"k":"log","t":1_000 + i,"tr":tr(0x77),"msg":"w"})]);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut latencies = Vec::new();
    let client = reqwest::blocking::Client::new();
    while latencies.len() < 40 {
        let started = Instant::now();
        let resp = client
            .get(format!("{}/healthz", agent.base))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        latencies.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let renders = reader.join().unwrap();
    writer.join().unwrap();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    eprintln!("healthz during {renders} renders of 50k steps: median {median:?}, max {worst:?}");
    assert!(renders >= 1);
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(worst < Duration::from_millis(500), "max {worst:?}");
}

#[test]
fn a_group_of_20k_members_renders_in_n_log_n() {
    let agent = Agent::start(&["--max-traces", "25000"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let mut batch = Vec::new();
    for i in 1..=20_000u64 {
        let trace = tr(0x6000_0000 + i);
        batch.push(json!({"k":"trace_start","t":1_000 + i * 10,"tr":trace,"flow":"chat","cid":"thread-big"}));
        batch.push(json!({"k":"trace_end","t":1_005 + i * 10,"tr":trace}));
        if batch.len() >= 4_000 {
            conn.send_events(&batch);
            batch.clear();
        }
    }
    agent.wait_for("/healthz", |_, h| h["store"]["tracesCreated"] == 20_000);
    let started = Instant::now();
    let group = agent.get_ok("/api/groups/thread-big");
    let elapsed = started.elapsed();
    assert_eq!(group["metadata"]["totalTraces"], 20_000);
    assert_eq!(group["traces"][19_999]["metadata"]["traceIndex"], 19_999);
    assert!(elapsed < Duration::from_secs(3), "group took {elapsed:?}");
    let started = Instant::now();
    let page = agent.get_ok("/api/traces?correlationId=thread-big&limit=1000");
    assert_eq!(page["traces"].as_array().unwrap().len(), 1_000);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn http_limits_header_timeout_idle_timeout_and_connection_cap() {
    let agent = Agent::start(&[
        "--http-header-timeout",
        "1s",
        "--http-idle-timeout",
        "2s",
        "--max-http-connections",
        "50",
    ]);
    // Half a request header, then nothing: closed after the header timeout.
    let mut half = TcpStream::connect(agent.http_addr()).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let _ = half.read(&mut buf); // an error response, EOF, or a reset
    let _ = half.read(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a stalled header held its connection for {:?}",
        started.elapsed()
    );

    // 60 idle connections against a cap of 50: the excess is refused with a 503 at once.
    let idle: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(agent.http_addr()).unwrap())
        .collect();
    let mut last = idle.last().unwrap().try_clone().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut response = Vec::new();
    let _ = last.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    // The Unix socket keeps working meanwhile.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_events(&[json!({"k":"trace_start","t":1,"tr":tr(0xf100d),"flow":"during-flood"})]);
    // The idle ones are closed after the idle timeout; then HTTP answers again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let path = format!("{}/api/traces/{}", agent.base, tr(0xf100d));
    loop {
        let answered = reqwest::blocking::get(&path)
            .ok()
            .filter(|r| r.status() == 200)
            .and_then(|r| r.json::<Value>().ok());
        if let Some(trace) = answered {
            assert_eq!(trace["flowName"], "during-flood");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HTTP never recovered from the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(idle);
}

#[test]
fn foreign_hosts_and_origins_are_refused_and_responses_are_locked_down() {
    let agent = Agent::start(&["--cors-origin", "http://dash.example:8080"]);
    let (status, text) = raw_http(
        &agent,
        "GET /api/traces HTTP/1.1\r\nHost: rebind.evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421, "{text}");
    assert!(text.contains("host_not_allowed"));

    let upgrade = |origin: &str| {
        format!(
            "GET /api/ws HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            agent.http_addr()
        )
    };
    let (status, text) = raw_http(&agent, &upgrade("https://evil.example"));
    assert_eq!(status, 403, "{text}");
    let (status, _) = raw_http(&agent, &upgrade(&format!("http://{}", agent.http_addr())));
    assert_eq!(status, 101, "same-origin WebSocket");

    let resp = reqwest::blocking::get(format!("{}/", agent.base)).unwrap();
    let headers = resp.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("access-control-allow-origin").is_none());

    let client = reqwest::blocking::Client::new();
    let resp = client
        .get(format!("{}/api/traces", agent.base))
        .header("Origin", "http://dash.example:8080")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://dash.example:8080"
    );
    let resp = client
        .get(format!("{}/api/traces", agent.base))
        .header("Origin", "http://other.example")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[test]
fn the_token_guards_data_streams_and_metrics_but_not_the_ui_shell() {
    let agent = Agent::start(&["--token", "s3cret"]);
    let client = reqwest::blocking::Client::new();
    let get = |path: &str, auth: Option<&str>| {
        let mut req = client.get(format!("{}{path}", agent.base));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.send().unwrap()
    };
    for path in [
        "/api/traces",
        "/api/groups",
        "/motia/traces",
        "/metrics",
        "/api/stream",
    ] {
        let resp = get(path, None);
        assert_eq!(resp.status(), 401, "{path}");
        assert!(resp.headers().contains_key("www-authenticate"));
        assert_eq!(get(path, Some("Bearer wrong")).status(), 401, "{path}");
    }
    assert_eq!(get("/api/traces", Some("Bearer s3cret")).status(), 200);
    assert_eq!(get("/metrics", Some("bearer s3cret")).status(), 200);
    // EventSource cannot send headers: the stream takes the token as a parameter.
    assert_eq!(get("/api/stream?token=s3cret", None).status(), 200);
    assert_eq!(get("/api/stream?token=nope", None).status(), 401);
    assert_eq!(
        get("/api/traces?token=s3cret", None).status(),
        401,
        "only streams"
    );
    assert_eq!(get("/", None).status(), 200);
    assert_eq!(get("/healthz", None).status(), 200);
}

#[test]
fn a_public_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("flowscope.sock");
    let stderr = Agent::refused(&socket, &["--http", "0.0.0.0:0"]);
    assert!(stderr.contains("--token"), "{stderr}");
    let mut agent = Agent::start_at(&socket, &["--http", "0.0.0.0:0", "--insecure-no-auth"]);
    assert!(agent.alive());
}

#[test]
fn absurd_times_counts_and_ids_are_validated_not_wrapped() {
    let mut agent = Agent::start(&[]);
    // A live subscriber makes the publisher summarize every change (it used to overflow).
    let resp = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
        .get(format!("{}/api/stream", agent.base))
        .send()
        .unwrap();
    agent.wait_for("/healthz", |_, h| h["live"]["subscribers"] == 1);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0xab5);
    let max = u64::MAX;
    conn.send_events(&[
        json!({"k":"trace_start","t":0,"tr":trace,"flow":"absurd"}),
        json!({"k":"step_start","t":0,"tr":trace,"sp":sp(1),"name":"s"}),
        json!({"k":"op","t":max,"tr":trace,"sp":sp(1),"op":"state","action":"get","key":"k","dur":max,"ok":true}),
        json!({"k":"llm","t":1,"tr":trace,"sp":sp(1),"model":"m","input_tokens":max,"output_tokens":max,"dur":max}),
        json!({"k":"step_end","t":max,"tr":trace,"sp":sp(1)}),
        json!({"k":"trace_end","t":max,"tr":trace}),
        json!({"k":"trace_start","t":5,"tr":tr(0),"flow":"zero-id"}),
        json!({"k":"step_start","t":5,"tr":trace,"sp":sp(0),"name":"zero-span"}),
    ]);
    let full = agent.wait_trace(&trace, |t| t["status"] == "completed");
    let llm = &full["steps"][0]["events"][0];
    assert_eq!(llm["totalTokens"], max, "saturated, not wrapped: {llm}");
    assert_eq!(
        full["metadata"]["totalSteps"], 1,
        "the zero span id was refused"
    );
    for path in ["/api/traces", "/api/flows", "/motia/traces", "/metrics"] {
        assert_eq!(agent.get(path).0, 200, "{path}");
    }
    let health = agent.get_ok("/healthz");
    assert_eq!(health["store"]["eventsInvalid"]["invalid_trace_id"], 1);
    assert_eq!(health["store"]["eventsInvalid"]["invalid_span_id"], 1);
    assert_eq!(health["taskRestarts"], 0, "no background task panicked");
    assert_eq!(agent.get(&format!("/api/traces/{}", tr(0))).0, 404);
    assert!(agent.alive());
    drop(resp);
}

#[test]
fn csv_cells_cannot_become_formulas() {
    let agent = Agent::start(&[]);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0xc5f);
    conn.send_events(&[
        json!({"k":"trace_start","t":1,"tr":trace,"flow":"csv"}),
        json!({"k":"step_start","t":2,"tr":trace,"sp":sp(1),"name":"=HYPERLINK(\"http://evil.example\",\"x\")"}),
        json!({"k":"step_start","t":3,"tr":trace,"sp":sp(2),"name":"@SUM(1+1)"}),
        json!({"k":"step_start","t":4,"tr":trace,"sp":sp(3),"name":"plain"}),
    ]);
    agent.wait_trace(&trace, |t| t["metadata"]["totalSteps"] == 3);
    let (status, csv) = get_text(&agent, &format!("/api/traces/{trace}/export?format=csv"));
    assert_eq!(status, 200);
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://evil.example"",""x"")""#),
        "{csv}"
    );
    assert!(csv.contains(r#""'@SUM(1+1)""#), "{csv}");
    assert!(csv.contains(",plain,"));
    for line in csv.lines().skip(1) {
        for cell in line.split(',') {
            assert!(
                !cell.starts_with(['=', '+', '@']),
                "formula cell {cell} in {line}"
            );
        }
    }
}

#[test]
fn per_trace_caps_mark_the_trace_truncated() {
    let agent = Agent::start(&["--max-steps-per-trace", "5", "--max-events-per-trace", "10"]);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0x7c);
    let mut events = vec![json!({"k":"trace_start","t":1,"tr":trace,"flow":"capped"})];
    for i in 1..=8u64 {
        events
            .push(json!({"k":"step_start","t":1 + i,"tr":trace,"sp":sp(i),"name":format!("s{i}")}));
    }
    for i in 0..15u64 {
        events.push(json!({"k":"log","t":20 + i,"tr":trace,"sp":sp(1),"msg":"x"}));
    }
    events.push(json!({"k":"trace_end","t":99,"tr":trace}));
    conn.send_events(&events);
    let full = agent.wait_trace(&trace, |t| t["status"] == "completed");
    assert_eq!(full["metadata"]["totalSteps"], 5);
    assert_eq!(full["truncated"], json!({"steps": 3, "events": 5}));
    let list = agent.get_ok("/api/traces?flow=capped");
    assert_eq!(list["traces"][0]["truncated"]["steps"], 3);
}

#[test]
fn redaction_happens_before_storing_and_exporting() {
    let agent = Agent::start(&[
        "--redact",
        "password",
        "--redact",
        "re:sk-[A-Za-z0-9]{8,}",
        "--hide-llm-content",
    ]);
    let mut conn = RawConn::handshake(&agent, "json");
    let trace = tr(0x5ec);
    conn.send_events(&[
        json!({"k":"trace_start","t":1,"tr":trace,"flow":"secrets","attrs":{"password":"p1","user":"ann"}}),
        json!({"k":"step_start","t":2,"tr":trace,"sp":sp(1),"name":"s"}),
        json!({"k":"log","t":3,"tr":trace,"sp":sp(1),"msg":"using sk-abcdefgh1234","fields":{"Password":"hunter2","nested":{"password":"x"}}}),
        json!({"k":"llm","t":4,"tr":trace,"sp":sp(1),"model":"gpt-x","prompt":"my secret prompt","response":"a secret answer","input_tokens":3,"output_tokens":4,"dur":1}),
        json!({"k":"trace_end","t":9,"tr":trace}),
    ]);
    agent.wait_trace(&trace, |t| t["status"] == "completed");
    for path in [
        format!("/api/traces/{trace}"),
        format!("/api/traces/{trace}/export?format=otlp"),
        format!("/api/executions/{trace}/trace"),
    ] {
        let (status, text) = get_text(&agent, &path);
        assert_eq!(status, 200);
        for secret in [
            "hunter2",
            "sk-abcdefgh1234",
            "secret prompt",
            "secret answer",
            "\"p1\"",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {path}");
        }
        assert!(text.contains("[redacted]"), "{path}");
    }
    let full = agent.get_ok(&format!("/api/traces/{trace}"));
    let llm = &full["steps"][0]["events"][1];
    assert_eq!(
        (llm["model"].as_str(), llm["totalTokens"].as_u64()),
        (Some("gpt-x"), Some(7))
    );
    assert_eq!(full["attributes"]["user"], "ann");
}

fn is_root() -> bool {
    flowscope::socket::current_uid() == 0
}

#[test]
fn open_or_squatted_socket_directories_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let open = root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = Agent::refused(&open.join("flowscope.sock"), &[]);
    assert!(stderr.contains("writable by other users"), "{stderr}");
    if !is_root() {
        eprintln!("skipping the foreign-owner half: changing owners needs root");
        return;
    }
    // Another user created the directory first (as /tmp/flowscope.sock squatting used to be).
    let foreign = root.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let stderr = Agent::refused(&foreign.join("flowscope.sock"), &[]);
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
}

#[test]
fn the_sdk_refuses_a_socket_another_user_owns() {
    if !is_root() {
        eprintln!("skipping: changing a socket's owner needs root");
        return;
    }
    let agent = Agent::start(&[]);
    std::os::unix::fs::chown(&agent.socket, Some(65534), Some(65534)).unwrap();
    let client = agent.client();
    let trace = client.trace("never-sent").start();
    trace.end();
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        if let Some(error) = client.last_error() {
            break error;
        }
        assert!(
            Instant::now() < deadline,
            "no error reported: {:?}",
            client.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(error.contains("owned by uid 65534"), "{error}");
    assert!(!client.stats().connected);
    assert_eq!(agent.get_ok("/healthz")["ingest"]["connectionsTotal"], 0);
}

#[test]
fn the_rust_sdk_redacts_before_events_leave_the_process() {
    let agent = Agent::start(&[]);
    let rules = flowscope::redact::RedactConfig::parse(
        &["password".into(), "re:sk-[a-z0-9]{8,}".into()],
        true,
    )
    .unwrap();
    let client = flowscope::Client::new(
        flowscope::Config::new("redacting")
            .socket(&agent.socket)
            .redact(rules)
            .redact_hook(|event| {
                if let flowscope::wire::Event::Log(log) = event {
                    log.msg = log.msg.replace("4111", "####");
                }
            }),
    );
    let trace = client.trace("redaction-rust").start();
    let id = trace.id();
    {
        let _step = trace.step("s").start();
        let mut fields = serde_json::Map::new();
        fields.insert("password".into(), json!("hunter2"));
        flowscope::log_with(
            flowscope::LogLevel::Info,
            "card 4111 key sk-abcdefgh12",
            Some(fields),
        );
        flowscope::llm("m-1")
            .prompt("secret prompt")
            .tokens(1, 2)
            .record();
    }
    trace.end();
    crate::support::flush(&client);
    let full = agent.wait_trace(id, |t| t["status"] == "completed");
    let text = full.to_string();
    for secret in ["hunter2", "sk-abcdefgh12", "4111", "secret prompt"] {
        assert!(!text.contains(secret), "{secret} left the process");
    }
    assert_eq!(
        full["steps"][0]["events"][0]["message"],
        "card #### key [redacted]"
    );
}
