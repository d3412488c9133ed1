//! OTLP ingest against a real agent process: the spec's answers to bad payloads (400, 413, 415,
//! partial success), the token on both receivers, and pass-through forwarding to a real receiver
//! — each ingested span upstream exactly once and unchanged, beside the SDK's own spans.

use std::collections::HashMap;
use std::io::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message as _;
use serde_json::{Value, json};

use crate::support::{Agent, Receiver, flush, otlp_attr};

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn span(trace: [u8; 16], id: u8, parent: Option<u8>, kind: span::SpanKind, name: &str) -> Span {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: now - 5_000_000 + u64::from(id) * 1000,
        end_time_unix_nano: now - 1_000_000 - u64::from(id) * 1000,
        attributes: vec![kv("app.custom", &format!("value-{id}"))],
        ..Span::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn post(
    agent: &Agent,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut call = reqwest::blocking::Client::new()
        .post(format!("{}/v1/traces", agent.base))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        call = call.header("content-encoding", encoding);
    }
    let response = call.send().expect("POST /v1/traces");
    let status = response.status().as_u16();
    let ctype = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, response.bytes().unwrap().to_vec())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn message(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).expect("JSON status body");
    value["message"].as_str().unwrap_or("").to_owned()
}

#[test]
fn bad_payloads_get_the_spec_answers_and_the_agent_stays_up() {
    let agent = Agent::start(&["--otlp-max-request-bytes", "65536"]);
    let valid = request(
        "shop",
        vec![span(TRACE, 1, None, span::SpanKind::Server, "GET /")],
    )
    .encode_to_vec();

    let (status, ctype, body) = post(&agent, "text/plain", None, valid.clone());
    assert_eq!((status, ctype.as_str()), (415, "application/json"));
    assert!(
        message(&body).contains("unsupported content type"),
        "{}",
        message(&body)
    );

    let (status, _, body) = post(&agent, "application/x-protobuf", Some("br"), valid.clone());
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("content encoding"));

    let (status, ctype, body) = post(&agent, "application/x-protobuf", None, vec![0xff; 64]);
    assert_eq!((status, ctype.as_str()), (400, "application/x-protobuf"));
    assert!(String::from_utf8_lossy(&body).contains("invalid protobuf"));

    let (status, _, body) = post(
        &agent,
        "application/json",
        None,
        br#"{"resourceSpans": 5}"#.to_vec(),
    );
    assert_eq!(status, 400);
    assert!(
        message(&body).contains("invalid OTLP/JSON"),
        "{}",
        message(&body)
    );

    let (status, _, _) = post(
        &agent,
        "application/x-protobuf",
        Some("gzip"),
        vec![1, 2, 3],
    );
    assert_eq!(status, 400, "a body that does not gunzip");

    let (status, _, _) = post(&agent, "application/x-protobuf", None, vec![0; 70_000]);
    assert_eq!(status, 413, "past --otlp-max-request-bytes");

    // 10 MB of zeros gzip to ~10 kB: inflation stops at the limit.
    let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
    assert!(bomb.len() < 65536);
    let (status, _, _) = post(&agent, "application/x-protobuf", Some("gzip"), bomb);
    assert_eq!(status, 413, "a gzip bomb");

    let (status, _) = agent.get("/v1/traces");
    assert_eq!(status, 405);

    // Partial success: the valid span is kept, the invalid one counted and named.
    let mut bad = span(TRACE, 2, Some(1), span::SpanKind::Internal, "bad");
    bad.trace_id = vec![0; 16];
    let partial = request(
        "shop",
        vec![bad, span(TRACE, 1, None, span::SpanKind::Server, "GET /")],
    );
    let (status, ctype, body) = post(
        &agent,
        "application/json",
        None,
        serde_json::to_vec(&partial).unwrap(),
    );
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 1);
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("invalid trace id")
    );
    let trace = agent.wait_trace(hex::encode(TRACE), |t| t["status"] == "completed");
    assert_eq!(trace["service"], "shop");

    // Fully accepted protobuf: an empty ExportTraceServiceResponse.
    let (status, ctype, body) = post(&agent, "application/x-protobuf", Some("gzip"), gzip(&valid));
    assert_eq!(
        (status, ctype.as_str(), body.len()),
        (200, "application/x-protobuf", 0)
    );

    let health = agent.get_ok("/healthz");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["otlp"]["requestsRefused"], 7);
    assert_eq!(health["otlp"]["spansRejected"], 1);
}

fn grpc_export(
    addr: &str,
    request: ExportTraceServiceRequest,
    token: Option<&str>,
) -> Result<(), tonic::Code> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the gRPC receiver");
        let mut call = tonic::Request::new(request);
        if let Some(token) = token {
            call.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        client.export(call).await.map(|_| ()).map_err(|s| s.code())
    })
}

fn grpc_addr(agent: &Agent) -> String {
    let ready = agent.get_ok("/readyz");
    ready["otlpReceivers"]["grpc"]
        .as_str()
        .and_then(|s| s.strip_prefix("listening on "))
        .unwrap_or_else(|| panic!("gRPC receiver not listening: {ready}"))
        .to_owned()
}

#[test]
fn the_token_guards_both_receivers() {
    let agent = Agent::start(&["--token", "s3cret", "--otlp-grpc-listen", "127.0.0.1:0"]);
    let body = request(
        "shop",
        vec![span(TRACE, 1, None, span::SpanKind::Server, "GET /")],
    );
    let (status, _, _) = post(&agent, "application/x-protobuf", None, body.encode_to_vec());
    assert_eq!(status, 401);
    let accepted = reqwest::blocking::Client::new()
        .post(format!("{}/v1/traces", agent.base))
        .header("content-type", "application/x-protobuf")
        .bearer_auth("s3cret")
        .body(body.encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);

    let addr = grpc_addr(&agent);
    assert_eq!(
        grpc_export(&addr, body.clone(), None),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(
        grpc_export(&addr, body.clone(), Some("wrong")),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(grpc_export(&addr, body, Some("s3cret")), Ok(()));
}

#[test]
fn an_explicit_grpc_address_in_use_stops_the_agent_and_the_default_one_does_not() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stderr = Agent::refused(&dir.path().join("a.sock"), &["--otlp-grpc-listen", &taken]);
    assert!(stderr.contains("cannot listen for OTLP/gRPC"), "{stderr}");
    let stderr = Agent::refused(
        &dir.path().join("b.sock"),
        &["--otlp-grpc-listen", "nowhere"],
    );
    assert!(stderr.contains("--otlp-grpc-listen"), "{stderr}");
    // The default (127.0.0.1:4317) is tried; held or free, the agent starts and says which.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("--socket")
        .arg(dir.path().join("c.sock"))
        .args(["--http", "127.0.0.1:0", "--log", "error"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.split("http=").nth(1).expect("listening line").trim();
    let ready: Value = reqwest::blocking::get(format!("{base}/readyz"))
        .unwrap()
        .json()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = ready["otlpReceivers"]["grpc"].as_str().unwrap_or_default();
    assert!(
        text == "listening on 127.0.0.1:4317"
            || text.starts_with("not listening on 127.0.0.1:4317"),
        "{ready}"
    );
}

/// OpenTelemetry service "storefront" (root SERVER + CLIENT span) calls a flowscope service
/// "payments": the agent shows one trace, and the receiver gets every span exactly once — the
/// ingested ones byte-for-byte as sent, the SDK's derived from the model.
#[test]
fn ingested_spans_are_forwarded_once_and_unchanged_beside_sdk_spans() {
    for protocol in ["http/protobuf", "grpc"] {
        let receiver = Receiver::start();
        let endpoint = match protocol {
            "grpc" => format!("http://{}", receiver.grpc),
            _ => format!("http://{}", receiver.http),
        };
        let agent = Agent::start(&[
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            protocol,
            "--otlp-grpc-listen",
            "127.0.0.1:0",
        ]);
        let mut trace = TRACE;
        trace[15] = if protocol == "grpc" { 1 } else { 2 };
        let trace_hex = hex::encode(trace);
        let sent = request(
            "storefront",
            vec![
                span(trace, 0x11, None, span::SpanKind::Server, "GET /checkout"),
                span(trace, 0x12, Some(0x11), span::SpanKind::Client, "POST /pay"),
            ],
        );
        // Half over each receiver: the transport in does not matter to what goes out.
        assert_eq!(grpc_export(&grpc_addr(&agent), sent.clone(), None), Ok(()));

        let client = agent.client();
        let traceparent = format!("00-{trace_hex}-{}-01", hex::encode([0x12u8; 8]));
        let incoming = flowscope::propagation::extract(|name| {
            (name == "traceparent").then_some(traceparent.as_str())
        });
        let run = client.trace("payment").incoming(incoming).start();
        run.step("charge-card").start().end();
        run.end();
        flush(&client);

        let shown = agent.wait_trace(&trace_hex, |t| {
            t["status"] == "completed" && t["segments"].as_array().is_some_and(|s| s.len() == 2)
        });
        let services = shown["services"].as_array().unwrap().to_vec();
        assert_eq!(services.len(), 2, "{protocol}: {services:?}");

        // 2 ingested + the SDK's segment root and step.
        let spans = receiver.wait_spans(|s| s.len() >= 4);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for s in &spans {
            *seen
                .entry(s["spanId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        assert!(
            seen.values().all(|&n| n == 1),
            "{protocol}: a span went twice: {seen:?}"
        );
        assert_eq!(spans.len(), 4, "{protocol}: {spans:#?}");
        for (id, name) in [(0x11u8, "GET /checkout"), (0x12, "POST /pay")] {
            let forwarded = spans
                .iter()
                .find(|s| s["spanId"] == hex::encode([id; 8]))
                .unwrap_or_else(|| panic!("{protocol}: span {name} not forwarded"));
            let original = sent.resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .find(|s| s.span_id == vec![id; 8])
                .unwrap();
            // Unchanged: the receiver's JSON of what it got equals the JSON of what was sent.
            let mut expected = serde_json::to_value(original).unwrap();
            expected["resource"] =
                json!([{"key": "service.name", "value": {"stringValue": "storefront"}}]);
            expected["scope"] = Value::Null;
            let mut got = forwarded.clone();
            got["scope"] = Value::Null;
            assert_eq!(got, expected, "{protocol}: {name} changed on the way");
            assert_eq!(
                otlp_attr(&forwarded["attributes"], "app.custom"),
                Some(json!(format!("value-{id}")))
            );
        }
        // The SDK's segment root hangs under the OpenTelemetry CLIENT span; its step under it.
        let sdk_root = spans
            .iter()
            .find(|s| s["parentSpanId"] == hex::encode([0x12u8; 8]))
            .unwrap_or_else(|| panic!("{protocol}: no SDK segment under POST /pay: {spans:#?}"));
        let step = spans
            .iter()
            .find(|s| s["name"] == "charge-card")
            .expect("the SDK's step");
        assert_eq!(step["parentSpanId"], sdk_root["spanId"]);
        // Counted once the collector's answer is in (it may lag the receiver's record).
        agent.wait_for("/healthz", |_, h| h["otlp"]["forwardedSpans"] == 2);
    }
}

/// `--redact` covers what leaves too: a forwarded request reaches the real receiver with the
/// listed keys, the matched patterns and (with `--hide-llm-content`) the prompt replaced, and
/// everything else as sent.
#[test]
fn forwarded_spans_are_redacted_by_the_same_rules() {
    let receiver = Receiver::start();
    let agent = Agent::start(&[
        "--otlp-endpoint",
        &format!("http://{}", receiver.http),
        "--otlp-protocol",
        "http/protobuf",
        "--otlp-grpc-listen",
        "127.0.0.1:0",
        "--redact",
        "authorization",
        "--redact",
        "re:sk-[a-z0-9]{8,}",
        "--hide-llm-content",
    ]);
    let mut trace = TRACE;
    trace[15] = 3;
    let mut root = span(trace, 0x21, None, span::SpanKind::Server, "POST /chat");
    root.attributes.extend([
        kv("authorization", "Bearer hunter2"),
        kv("http.url", "/chat?key=sk-abcdefgh12"),
    ]);
    let mut llm = span(
        trace,
        0x22,
        Some(0x21),
        span::SpanKind::Client,
        "chat gpt-4o",
    );
    llm.attributes.extend([
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", "gpt-4o"),
        kv("gen_ai.input.messages", "my secret question"),
    ]);
    let body = request("chat-api", vec![root, llm]).encode_to_vec();
    let (status, _, _) = post(&agent, "application/x-protobuf", None, body);
    assert_eq!(status, 200);

    let spans = receiver.wait_spans(|s| s.len() >= 2);
    let text = serde_json::to_string(&spans).unwrap();
    for secret in ["hunter2", "sk-abcdefgh12", "secret question"] {
        assert!(!text.contains(secret), "{secret} was forwarded: {text}");
    }
    let by_id = |id: u8| {
        spans
            .iter()
            .find(|s| s["spanId"] == hex::encode([id; 8]))
            .unwrap_or_else(|| panic!("span {id:#x} not forwarded: {text}"))
    };
    for (id, key, want) in [
        (0x21, "authorization", "[redacted]"),
        (0x21, "http.url", "/chat?key=[redacted]"),
        (0x21, "app.custom", "value-33"),
        (0x22, "gen_ai.input.messages", "[redacted]"),
        (0x22, "gen_ai.request.model", "gpt-4o"),
    ] {
        assert_eq!(
            otlp_attr(&by_id(id)["attributes"], key),
            Some(json!(want)),
            "span {id:#x} {key}"
        );
    }
    assert_eq!(by_id(0x22)["name"], "chat gpt-4o");
    // What the agent keeps is redacted as well.
    let shown = agent.get_ok(&format!("/api/traces/{}", hex::encode(trace)));
    let shown = shown.to_string();
    for secret in ["hunter2", "sk-abcdefgh12", "secret question"] {
        assert!(!shown.contains(secret), "{secret} was stored: {shown}");
    }
}

/// The gRPC receiver holds at most `--otlp-grpc-max-connections` connections: one past that is
/// closed on accept and counted, a connection that never speaks is closed after
/// `--http-idle-timeout`, and then real clients get in again.
#[test]
fn grpc_connections_are_capped_and_silent_ones_closed() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};

    let agent = Agent::start(&[
        "--otlp-grpc-listen",
        "127.0.0.1:0",
        "--otlp-grpc-max-connections",
        "2",
        "--http-idle-timeout",
        "3s",
    ]);
    let addr = grpc_addr(&agent);
    let connect = || {
        let conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn
    };
    // Two silent clients take both slots (accepted in connect order).
    let mut held = [connect(), connect()];
    // A third is closed at once: end of stream (or a reset), long before the idle timeout.
    let started = Instant::now();
    let mut third = connect();
    let closed = match third.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    assert!(closed, "a connection past the cap was served");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only by the idle timeout"
    );
    let refused = || {
        let scrape = crate::metrics::scrape(&agent);
        crate::metrics::number(
            &scrape,
            "flowscope_otlp_grpc_connections_refused_total",
            &[],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused() < 1.0 {
        assert!(Instant::now() < deadline, "the refusal was not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The silent ones are closed once idle (the server may first write its HTTP/2 settings).
    for conn in &mut held {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a silent connection stayed open: {e}"),
            }
        }
    }
    // Slots are free again: a real client exports.
    let mut trace = TRACE;
    trace[15] = 4;
    let sent = request(
        "after-the-flood",
        vec![span(trace, 0x31, None, span::SpanKind::Server, "GET /")],
    );
    assert_eq!(grpc_export(&addr, sent, None), Ok(()));
    agent.wait_trace(hex::encode(trace), |t| t["status"] == "completed");
}
