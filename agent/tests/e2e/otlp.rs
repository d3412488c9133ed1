//! OTLP forwarding to a real receiver process over gRPC and HTTP/protobuf: span tree, names,
//! kinds, attributes, events, status, links, resource; collector outages; no endpoint.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use crate::metrics::{number, scrape};
use crate::registration::send_registration;
use crate::support::{Agent, Receiver, flush, otlp_attr};

// OTLP enum values.
const KIND_INTERNAL: i64 = 1;
const KIND_SERVER: i64 = 2;
const KIND_CLIENT: i64 = 3;
const KIND_PRODUCER: i64 = 4;
const KIND_CONSUMER: i64 = 5;
const STATUS_OK: i64 = 1;
const STATUS_ERROR: i64 = 2;

fn attr(span: &Value, key: &str) -> Value {
    otlp_attr(&span["attributes"], key).unwrap_or(Value::Null)
}

fn by_trace(spans: &[Value]) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for span in spans {
        out.entry(span["traceId"].as_str().unwrap().to_owned())
            .or_default()
            .push(span.clone());
    }
    out
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "expected one span named {name:?}, got {}",
        found.len()
    );
    found[0]
}

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["parentSpanId"] == parent["spanId"])
        .collect()
}

fn event<'a>(span: &'a Value, name: &str) -> &'a Value {
    span["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} event on {}", span["name"]))
}

/// The spans the agent's own OTLP/JSON export endpoint gives for a trace.
fn exported(agent: &Agent, trace: &str) -> Vec<Value> {
    let body = agent.get_ok(&format!("/api/traces/{trace}/export?format=otlp"));
    body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn grpc_export_maps_registration_llm_and_failing_order_flows() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.grpc);
    let agent = Agent::start(&["--otlp-endpoint", &endpoint, "--otlp-protocol", "grpc"]);
    let client = agent.client();
    flowscope_agent::demo::run_round(&client, 1);
    flush(&client);
    let list = agent.wait_for("/api/traces?limit=100", |_, b| {
        b["traces"].as_array().is_some_and(|t| t.len() == 6)
    });
    let traces: Vec<String> = list["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    // Every span of every trace arrives, and it is exactly what the export endpoint shows.
    let expected: HashMap<String, Vec<Value>> = traces
        .iter()
        .map(|t| (t.clone(), exported(&agent, t)))
        .collect();
    let total: usize = expected.values().map(Vec::len).sum();
    let spans = receiver.wait_spans(|s| s.len() >= total);
    assert_eq!(spans.len(), total, "no duplicates");
    let got = by_trace(&spans);
    for (trace, want) in &expected {
        let mut got_ids: Vec<&str> = got[trace]
            .iter()
            .map(|s| s["spanId"].as_str().unwrap())
            .collect();
        let mut want_ids: Vec<&str> = want.iter().map(|s| s["spanId"].as_str().unwrap()).collect();
        got_ids.sort_unstable();
        want_ids.sort_unstable();
        assert_eq!(got_ids, want_ids, "trace {trace}");
    }
    assert!(receiver.requests().iter().all(|r| r["transport"] == "grpc"));

    // Resource and scope.
    let resource = &spans[0]["resource"];
    assert_eq!(
        otlp_attr(resource, "service.name"),
        Some("e2e-tests".into())
    );
    assert_eq!(
        otlp_attr(resource, "process.pid"),
        Some(Value::from(std::process::id()))
    );
    assert_eq!(
        otlp_attr(resource, "telemetry.sdk.name"),
        Some("flowscope".into())
    );
    assert_eq!(
        otlp_attr(resource, "telemetry.sdk.language"),
        Some("rust".into())
    );
    assert!(otlp_attr(resource, "service.instance.id").is_some());
    assert_eq!(spans[0]["scope"], "flowscope");

    // Registration: root → 3 steps → their operations.
    let registration = got
        .values()
        .find(|s| !named(s, "flow user-registration").is_empty())
        .unwrap();
    let root = one(registration, "flow user-registration");
    assert_eq!(root["kind"], KIND_SERVER);
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(root["status"]["code"], STATUS_OK);
    assert_eq!(attr(root, "openinference.span.kind"), "CHAIN");
    let steps: Vec<&str> = children(registration, root)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps.iter().copied().collect::<HashSet<_>>(),
        HashSet::from(["validate-user", "save-user", "send-email"])
    );
    let validate = one(registration, "validate-user");
    assert_eq!(attr(validate, "flowscope.ops.state"), 3);
    let ops: HashSet<&str> = children(registration, validate)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        HashSet::from([
            "state.get user.email",
            "state.set validation.status",
            "state.set validation.result",
            "emit user.validated"
        ])
    );
    let emit = one(registration, "emit user.validated");
    assert_eq!(emit["kind"], KIND_PRODUCER);
    assert_eq!(attr(emit, "messaging.destination.name"), "user.validated");
    assert_eq!(attr(emit, "flowscope.emit.target_step"), "save-user");
    assert_eq!(
        one(registration, "state.get user.email")["kind"],
        KIND_INTERNAL
    );
    assert_eq!(
        event(one(registration, "send-email"), "log")["attributes"][1]["value"]["stringValue"],
        "welcome email queued"
    );

    // Chat: three correlated traces, an LLM span in each, links to the previous message.
    let chats: Vec<&Vec<Value>> = got
        .values()
        .filter(|s| !named(s, "flow chat-message").is_empty())
        .collect();
    assert_eq!(chats.len(), 3);
    let mut linked = 0;
    for chat in &chats {
        let root = one(chat, "flow chat-message");
        assert_eq!(attr(root, "session.id"), "thread-1");
        assert_eq!(attr(root, "gen_ai.conversation.id"), "thread-1");
        assert_eq!(attr(root, "flowscope.correlation_id"), "thread-1");
        let llm = one(chat, "chat gpt-4o-mini");
        assert_eq!(llm["kind"], KIND_CLIENT);
        assert_eq!(attr(llm, "gen_ai.operation.name"), "chat");
        assert_eq!(attr(llm, "gen_ai.provider.name"), "openai");
        assert_eq!(attr(llm, "gen_ai.request.model"), "gpt-4o-mini");
        assert_eq!(attr(llm, "openinference.span.kind"), "LLM");
        assert_eq!(attr(llm, "llm.model_name"), "gpt-4o-mini");
        let (input, output) = (
            attr(llm, "gen_ai.usage.input_tokens"),
            attr(llm, "gen_ai.usage.output_tokens"),
        );
        assert!([42, 52, 62].contains(&input.as_i64().unwrap()), "{input}");
        assert_eq!(attr(llm, "llm.token_count.prompt"), input);
        assert_eq!(attr(llm, "llm.token_count.completion"), output);
        assert_eq!(
            attr(llm, "llm.token_count.total").as_i64(),
            Some(input.as_i64().unwrap() + output.as_i64().unwrap())
        );
        assert!(
            attr(llm, "gen_ai.input.messages")
                .as_str()
                .unwrap()
                .contains("\"role\":\"user\"")
        );
        assert!(attr(llm, "output.value").as_str().is_some());
        assert!(
            event(llm, "gen_ai.content.prompt")["attributes"][0]["value"]["stringValue"]
                .is_string()
        );
        let parent = chat
            .iter()
            .find(|s| s["spanId"] == llm["parentSpanId"])
            .expect("llm parent step");
        assert_eq!(parent["parentSpanId"], root["spanId"]);
        let links = root["links"].as_array().unwrap();
        if let Some(link) = links.first() {
            linked += 1;
            assert_ne!(link["traceId"], root["traceId"]);
            assert!(traces.contains(&link["traceId"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(
        linked, 2,
        "messages 2 and 3 link to the message before them"
    );

    // Order: the event-triggered trace fails; exception event; retry/checkpoint/transition events.
    let failing = got
        .values()
        .find(|s| !named(s, "reserve-inventory").is_empty())
        .unwrap();
    let root = one(failing, "flow order-processing");
    assert_eq!(root["kind"], KIND_CONSUMER);
    assert_eq!(root["status"]["code"], STATUS_ERROR);
    assert_eq!(root["status"]["message"], "sku-123 is out of stock");
    let exception = event(root, "exception");
    assert_eq!(
        otlp_attr(&exception["attributes"], "exception.type"),
        Some("OutOfStock".into())
    );
    assert_eq!(
        root["links"].as_array().unwrap().len(),
        1,
        "link to the create-order trace that emitted it"
    );
    let step = one(failing, "reserve-inventory");
    assert_eq!(step["status"]["code"], STATUS_ERROR);
    let exception = event(step, "exception");
    assert!(
        otlp_attr(&exception["attributes"], "exception.stacktrace")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("inventory.rs:42")
    );
    let payment = one(failing, "process-payment");
    assert_eq!(
        otlp_attr(
            &event(payment, "retry")["attributes"],
            "flowscope.retry.attempt"
        ),
        Some(1.into())
    );
    assert!(
        otlp_attr(
            &event(payment, "checkpoint")["attributes"],
            "flowscope.checkpoint.id"
        )
        .is_some()
    );
    assert_eq!(
        otlp_attr(
            &event(payment, "transition")["attributes"],
            "flowscope.transition.to"
        ),
        Some("paid".into())
    );

    let m = scrape(&agent);
    assert_eq!(
        number(&m, "flowscope_export_spans_sent_total", &[]),
        total as f64
    );
    assert_eq!(number(&m, "flowscope_collector_up", &[]), 1.0);
    assert_eq!(agent.get_ok("/readyz")["exporter"]["state"], "up");
}

#[test]
fn http_protobuf_export_honours_otel_headers_and_csv_export_works() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.http);
    let agent = Agent::start_with_env(
        &["--otlp-protocol", "http/protobuf"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0k"),
        ],
    );
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    let spans = receiver.wait_spans(|s| s.len() >= 15);
    assert_eq!(spans.len(), 15);
    assert!(spans.iter().all(|s| s["traceId"] == id.to_string()));
    let requests = receiver.requests();
    assert!(
        requests
            .iter()
            .all(|r| r["transport"] == "http" && r["authorization"] == "Bearer t0k"),
        "{requests:?}"
    );
    let root = one(&spans, "flow user-registration");
    assert_eq!(
        root["startTimeUnixNano"], "1703943052000000000",
        "int64 as a string, exact start"
    );
    assert_eq!(root["endTimeUnixNano"], "1703943052325000000");

    let resp = reqwest::blocking::get(format!("{}/api/traces/{id}/export?format=csv", agent.base))
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 11, "{csv}");
    assert!(
        lines[1].contains(",step,validate-user,completed,0,95,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(",op,state.get user.email,ok,2,15,"),
        "{}",
        lines[2]
    );
    let (status, body) = agent.get(&format!("/api/traces/{id}/export?format=xml"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

fn wait_metric(agent: &Agent, name: &str, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = number(&scrape(agent), name, &[]);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} = {got}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn collector_outage_loses_nothing_inside_the_bound_and_drops_oldest_beyond_it() {
    let mut receiver = Receiver::start();
    let (grpc, http) = (receiver.grpc.clone(), receiver.http.clone());
    let endpoint = format!("http://{grpc}");
    let agent = Agent::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "grpc",
        "--otlp-queue-spans",
        "200",
        "--otlp-max-backoff",
        "100ms",
    ]);
    let client = agent.client();
    let first = send_registration(&client).to_string();
    flush(&client);
    receiver.wait_spans(|s| s.len() == 15);
    // The receiver has them; wait until the agent has its answer too, or a kill in between makes
    // it send them again (at least once) and the counts below are off by 15.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while number(&scrape(&agent), "flowscope_export_spans_sent_total", &[]) < 15.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never counted the first 15 spans as sent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Down, inside the bound: 10 traces × 15 spans = 150 ≤ 200.
    receiver.kill();
    let during: Vec<String> = (0..10)
        .map(|_| send_registration(&client).to_string())
        .collect();
    flush(&client);
    agent.wait_for("/readyz", |_, b| {
        b["exporter"]["state"] == "down" && b["exporter"]["queuedSpans"] == 150
    });
    let receiver = Receiver::start_on(&grpc, &http);
    let spans = receiver.wait_spans(|s| s.len() >= 150);
    std::thread::sleep(Duration::from_millis(300));
    let spans = if spans.len() == 150 {
        receiver.spans()
    } else {
        spans
    };
    assert_eq!(spans.len(), 150, "every queued span exactly once");
    let ids: HashSet<&str> = spans
        .iter()
        .map(|s| s["spanId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 150);
    let traces: HashSet<&str> = spans
        .iter()
        .map(|s| s["traceId"].as_str().unwrap())
        .collect();
    assert_eq!(
        traces,
        during.iter().map(String::as_str).collect(),
        "not the one sent before: {first}"
    );
    wait_metric(&agent, "flowscope_collector_up", 1.0);
    assert_eq!(
        number(&scrape(&agent), "flowscope_export_spans_dropped_total", &[]),
        0.0
    );
    assert!(number(&scrape(&agent), "flowscope_export_errors_total", &[]) >= 1.0);

    // Down, beyond the bound: 30 traces × 15 = 450 spans; the oldest 250 are dropped.
    let mut receiver = receiver;
    receiver.kill();
    let beyond: Vec<String> = (0..30)
        .map(|_| send_registration(&client).to_string())
        .collect();
    flush(&client);
    wait_metric(&agent, "flowscope_export_spans_dropped_total", 250.0);
    agent.wait_for("/readyz", |_, b| b["exporter"]["queuedSpans"] == 200);
    let receiver = Receiver::start_on(&grpc, &http);
    let spans = receiver.wait_spans(|s| s.len() >= 200);
    std::thread::sleep(Duration::from_millis(300));
    let spans = if spans.len() == 200 {
        receiver.spans()
    } else {
        spans
    };
    assert_eq!(spans.len(), 200);
    let per_trace = by_trace(&spans);
    for newest in &beyond[17..] {
        assert_eq!(
            per_trace.get(newest).map_or(0, Vec::len),
            15,
            "the newest traces arrive whole"
        );
    }
    for oldest in &beyond[..16] {
        assert!(
            !per_trace.contains_key(oldest),
            "the oldest spans were the ones dropped"
        );
    }
}

#[test]
fn no_endpoint_means_no_exporter_and_sampling_zero_sends_nothing() {
    let agent = Agent::start_with_env(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]);
    let client = agent.client();
    let id = send_registration(&client);
    flush(&client);
    agent.wait_trace(id, |t| t["status"] == "completed");
    assert_eq!(agent.get_ok("/readyz")["exporter"]["state"], "off");
    let m = scrape(&agent);
    for metric in [
        "flowscope_export_spans_sent_total",
        "flowscope_export_errors_total",
        "flowscope_export_spans_dropped_total",
    ] {
        assert_eq!(number(&m, metric, &[]), 0.0, "{metric}");
    }
    // The OTLP/JSON export endpoint works without an exporter.
    assert_eq!(exported(&agent, &id.to_string()).len(), 15);

    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.grpc);
    let sampled_out = Agent::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "grpc",
        "--otlp-sample-ratio",
        "0",
    ]);
    let client = sampled_out.client();
    let id = send_registration(&client);
    flush(&client);
    sampled_out.wait_trace(id, |t| t["status"] == "completed");
    // A sentinel the ratio cannot drop (its caller sampled it), sent after: once it arrives,
    // anything the registration would have sent has arrived too.
    let sentinel = format!("{:032x}", 0x5e_171e1);
    let mut conn = crate::support::RawConn::handshake(&sampled_out, "json");
    remote_segment(&mut conn, &sentinel, "0000000000000300", 1);
    let spans = receiver.wait_spans(|spans| spans.iter().any(|s| s["traceId"] == sentinel));
    assert!(
        spans.iter().all(|s| s["traceId"] == sentinel),
        "the sampled-out registration trace was exported"
    );
}

/// Sends a remote-parented segment (as a callee of an uninstrumented caller would) with `flags`.
fn remote_segment(conn: &mut crate::support::RawConn, trace: &str, span: &str, flags: u8) {
    conn.send_events(&[
        serde_json::json!({"k":"trace_start","t":1_000,"tr":trace,"flow":"remote","sp":span,"ps":"00000000000000aa","fl":flags}),
        serde_json::json!({"k":"trace_end","t":2_000,"tr":trace,"sp":span}),
    ]);
}

#[test]
fn incoming_flags_decide_export_and_sdk_flags_agree_with_the_sample_ratio() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.grpc);
    let agent = Agent::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "grpc",
        "--otlp-sample-ratio",
        "0.5",
    ]);
    // Continued traces: the caller's sampled bit decides, whatever the ratio.
    let mut conn = crate::support::RawConn::handshake(&agent, "json");
    let remote: Vec<(String, u8)> = (1..=4u8)
        .map(|f| (format!("{:032x}", 0xf1a9_0000u64 + u64::from(f)), f - 1))
        .collect();
    for (i, (trace, flags)) in remote.iter().enumerate() {
        remote_segment(&mut conn, trace, &format!("{:016x}", 0x100 + i), *flags);
    }
    for (trace, _) in &remote {
        agent.wait_trace(trace, |t| t["status"] == "completed");
    }
    // SDK-started traces: the SDK learns the ratio in the handshake and flags by it.
    let client = agent.client();
    let warmup = client.trace("warmup").start();
    warmup.end();
    flush(&client);
    assert_eq!(client.sample_ratio(), 0.5);
    let mut sampled = HashSet::new();
    let mut unsampled = HashSet::new();
    for _ in 0..40 {
        let trace = client.trace("sdk").start();
        let context = trace.context().expect("a live trace");
        let header = context.headers()[0].1.clone();
        assert_eq!(header.ends_with("-03"), context.trace.sampled(), "{header}");
        if context.trace.sampled() {
            sampled.insert(trace.id().to_string());
        } else {
            unsampled.insert(trace.id().to_string());
        }
        trace.end();
    }
    assert!(!sampled.is_empty() && !unsampled.is_empty());
    // A sampled sentinel on the same connection, last: once it arrives, everything before has.
    let sentinel = flowscope::TraceId(0x5e17_1e11);
    let tp = format!("00-{sentinel}-00000000000000bb-01");
    let incoming =
        flowscope::propagation::extract(|name| (name == "traceparent").then_some(tp.as_str()));
    client.trace("sentinel").incoming(incoming).start().end();
    flush(&client);
    let spans =
        receiver.wait_spans(|spans| spans.iter().any(|s| s["traceId"] == sentinel.to_string()));
    let exported: HashSet<String> = spans
        .iter()
        .filter_map(|s| s["traceId"].as_str().map(str::to_owned))
        .collect();
    for (trace, flags) in &remote {
        assert_eq!(
            exported.contains(trace),
            flags & 1 == 1,
            "remote trace with flags {flags:02x}"
        );
    }
    // OTLP span flags: sampled, plus "is the parent remote" known (0x100) and, for a root under
    // another process's span, set (0x200).
    for span in &spans {
        // The callers' spans: `remote_segment`'s and the sentinel's traceparent's.
        let remote_root = span["parentSpanId"] == "00000000000000aa"
            || span["parentSpanId"] == "00000000000000bb";
        let want = if remote_root { 0x301 } else { 0x101 };
        assert_eq!(span["flags"], want, "{}", span["name"]);
    }
    assert!(
        spans.iter().any(|s| s["flags"] == 0x301),
        "a remote-parented root was exported"
    );
    assert!(
        sampled.iter().all(|t| exported.contains(t)),
        "every trace the SDK flagged sampled"
    );
    assert!(
        unsampled.iter().all(|t| !exported.contains(t)),
        "no trace the SDK flagged unsampled"
    );

    // --otlp-export-unsampled forwards what the caller did not sample, too.
    let all = Agent::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "grpc",
        "--otlp-export-unsampled",
    ]);
    let mut conn = crate::support::RawConn::handshake(&all, "json");
    let unsampled_remote = format!("{:032x}", 0xf1a9_1000u64);
    remote_segment(&mut conn, &unsampled_remote, "0000000000000200", 0);
    receiver.wait_spans(|spans| spans.iter().any(|s| s["traceId"] == unsampled_remote));
}

/// One OTLP/HTTP request a [`ScriptedCollector`] got.
struct Got {
    gzip: bool,
    /// Span ids.
    spans: HashSet<Vec<u8>>,
}

/// A stand-in collector on a real socket that answers the n-th request with `script[n]` (200
/// after the script ends) and records each request's spans, decoded with the official types.
struct ScriptedCollector {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
}

impl ScriptedCollector {
    fn start(script: &'static [u16]) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = std::sync::Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = std::sync::Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let (mut length, mut gzip) = (0, false);
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            gzip |= lower.starts_with("content-encoding: gzip");
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        if gzip {
                            let mut plain = Vec::new();
                            flate2::read::GzDecoder::new(&body[..])
                                .read_to_end(&mut plain)
                                .unwrap();
                            body = plain;
                        }
                        let request = <opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as prost::Message>::decode(&body[..]).expect("a valid OTLP request");
                        let spans = request
                            .resource_spans
                            .iter()
                            .flat_map(|r| &r.scope_spans)
                            .flat_map(|s| &s.spans)
                            .map(|s| s.span_id.clone())
                            .collect();
                        let status = {
                            let mut got = record.lock().unwrap();
                            got.push(Got { gzip, spans });
                            script.get(got.len() - 1).copied().unwrap_or(200)
                        };
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                        );
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedCollector { url, got }
    }
}

#[test]
fn retryable_answers_are_retried_final_ones_dropped_and_counted_and_gzip_is_honoured() {
    // 503 is retryable in OTLP/HTTP, 400 is final.
    let collector = ScriptedCollector::start(&[503, 400]);
    let agent = Agent::start_with_env(
        &[
            "--otlp-protocol",
            "http/protobuf",
            "--otlp-max-backoff",
            "100ms",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url.as_str()),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
    );
    let client = agent.client();
    send_registration(&client);
    flush(&client);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while collector.got.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retry after the 503"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (first, refused) = {
        let got = collector.got.lock().unwrap();
        (got[0].spans.clone(), got[1].spans.clone())
    };
    assert!(!first.is_empty());
    assert!(refused.is_superset(&first), "the 503'd batch is sent again");
    wait_metric(
        &agent,
        "flowscope_export_spans_dropped_total",
        refused.len() as f64,
    );
    // The sentinel: a second trace, and whatever of the first the refused request did not hold,
    // accepted. Had the refused batch been sent again, its spans would be counted as sent too.
    send_registration(&client);
    flush(&client);
    wait_metric(
        &agent,
        "flowscope_export_spans_sent_total",
        (30 - refused.len()) as f64,
    );
    let m = scrape(&agent);
    assert_eq!(number(&m, "flowscope_export_errors_total", &[]), 2.0);
    assert_eq!(
        number(&m, "flowscope_export_spans_failed_total", &[]),
        first.len() as f64
    );
    let got = collector.got.lock().unwrap();
    let later: Vec<&Vec<u8>> = got[2..].iter().flat_map(|g| &g.spans).collect();
    assert_eq!(later.len(), 30 - refused.len());
    assert!(
        later.iter().all(|id| !refused.contains(*id)),
        "a refused span is never sent again"
    );
    assert!(got.iter().all(|g| g.gzip), "bodies are gzipped");
}

#[test]
fn an_unusable_endpoint_is_refused_at_start_with_its_name() {
    for protocol in ["grpc", "http/protobuf"] {
        let dir = tempfile::tempdir().unwrap();
        let stderr = Agent::refused(
            &dir.path().join("s.sock"),
            &[
                "--otlp-endpoint",
                "http://[::1",
                "--otlp-protocol",
                protocol,
            ],
        );
        assert!(
            stderr.contains("invalid OTLP endpoint") && stderr.contains("http://[::1"),
            "{protocol}: {stderr}"
        );
    }
}
