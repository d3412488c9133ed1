//! `otlp-receiver`: a small OTLP trace receiver for the end-to-end tests. It speaks OTLP/gRPC and
//! OTLP/HTTP (protobuf, optionally gzip) using the official protobuf definitions
//! (`opentelemetry-proto`), records every `ExportTraceServiceRequest`, and serves what it got as
//! OTLP/JSON at `GET /received` on the HTTP port (with `spans`, the number of spans received).
//! `POST /reset` forgets everything. With `--count-only` it decodes every request in full but
//! keeps only the count, as a collector with a no-op exporter would (for benchmarks: a receiver
//! that keeps millions of spans spends its CPU on page faults, not on receiving).
//!
//! Prints `otlp-receiver grpc=ADDR http=ADDR` on stdout once both listeners are bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use parking_lot::Mutex;
use prost::Message;
use serde_json::{Value, json};

/// Command line.
#[derive(Parser)]
struct Args {
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    grpc: SocketAddr,
    /// HTTP listen address (OTLP/HTTP at /v1/traces, plus /received and /reset).
    #[arg(long, default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// Decode requests and count their spans, but keep nothing else.
    #[arg(long)]
    count_only: bool,
}

/// Everything received, in arrival order.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, ExportTraceServiceRequest, Option<String>)>>,
    spans: AtomicU64,
    count_only: bool,
}

impl Received {
    fn record(&self, transport: &str, request: ExportTraceServiceRequest, auth: Option<String>) {
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        if !self.count_only {
            self.requests
                .lock()
                .push((transport.to_owned(), request, auth));
        }
    }
}

struct Grpc(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0.record("grpc", request.into_inner(), auth);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_export(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let raw = if gzip {
        let mut out = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, Vec::new());
        }
        out
    } else {
        body.to_vec()
    };
    match ExportTraceServiceRequest::decode(&raw[..]) {
        Ok(request) => {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            received.record("http", request, auth);
            (
                StatusCode::OK,
                ExportTraceServiceResponse {
                    partial_success: None,
                }
                .encode_to_vec(),
            )
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn dump(State(received): State<Arc<Received>>) -> axum::Json<Value> {
    let requests: Vec<Value> = received
        .requests
        .lock()
        .iter()
        .map(|(transport, request, auth)| json!({"transport": transport, "authorization": auth, "request": request}))
        .collect();
    let spans = received.spans.load(Ordering::Relaxed);
    axum::Json(json!({ "requests": requests, "spans": spans }))
}

async fn reset(State(received): State<Arc<Received>>) -> StatusCode {
    received.requests.lock().clear();
    received.spans.store(0, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let received = Arc::new(Received {
        count_only: args.count_only,
        ..Received::default()
    });
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc).await?;
    let http_listener = tokio::net::TcpListener::bind(args.http).await?;
    println!(
        "otlp-receiver grpc={} http={}",
        grpc_listener.local_addr()?,
        http_listener.local_addr()?
    );

    let service = TraceServiceServer::new(Grpc(Arc::clone(&received)))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let grpc = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener));
    let app = Router::new()
        .route("/v1/traces", post(http_export))
        .route("/received", get(dump))
        .route("/reset", post(reset))
        .with_state(received);
    let http = axum::serve(http_listener, app);
    tokio::select! {
        r = grpc => r.map_err(std::io::Error::other),
        r = http => r,
    }
}
