//! Command line and environment configuration (every flag has an env variable).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// flowscope: workflow observability sidecar.
#[derive(Debug, Parser)]
#[command(name = "flowscope", version, about)]
pub struct Cli {
    /// What to run (default: the agent).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Agent settings.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the agent (the default).
    Run,
    /// Run the agent and drive demo flows into it through the Rust SDK.
    Demo(DemoArgs),
}

/// Demo options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Run the demo flows once, then just serve.
    #[arg(long)]
    pub once: bool,
    /// Pause between rounds of demo flows.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// Agent flags.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Unix socket the SDKs connect to [default: $XDG_RUNTIME_DIR/flowscope/flowscope.sock, else
    /// /tmp/flowscope-$UID/flowscope.sock; the directory is created 0700 and must be ours].
    #[arg(long, env = "FLOWSCOPE_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// HTTP API/UI address (port 0 picks a free port).
    #[arg(
        long,
        env = "FLOWSCOPE_HTTP",
        default_value = "127.0.0.1:4319",
        global = true
    )]
    pub http: SocketAddr,
    /// Traces kept in memory (least recently active are evicted).
    #[arg(long, env = "FLOWSCOPE_MAX_TRACES", default_value_t = NonZeroUsize::new(1000).unwrap(), global = true)]
    pub max_traces: NonZeroUsize,
    /// Estimated bytes of traces kept in memory (KiB/MiB/GiB); past it the least recently active
    /// leave memory (with --data-dir they stay on disk and load back when asked for).
    #[arg(long, env = "FLOWSCOPE_MAX_MEMORY", default_value = "512MiB", value_parser = parse_bytes, global = true)]
    pub max_memory: u64,
    /// Largest frame payload accepted, bytes.
    #[arg(long, env = "FLOWSCOPE_MAX_FRAME", default_value_t = flowscope::wire::DEFAULT_MAX_FRAME, global = true)]
    pub max_frame: usize,
    /// A running trace with no event for this long fails as `abandoned`.
    #[arg(long, env = "FLOWSCOPE_ABANDON_AFTER", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub abandon_after: Duration,
    /// A group with a running trace and no event for this long is `stalled`.
    #[arg(long, env = "FLOWSCOPE_STALL_AFTER", default_value = "2m", value_parser = humantime::parse_duration, global = true)]
    pub stall_after: Duration,
    /// Live-stream events buffered per subscriber; a client further behind is dropped.
    #[arg(
        long,
        env = "FLOWSCOPE_LIVE_BUFFER",
        default_value_t = 4096,
        global = true
    )]
    pub live_buffer: usize,
    /// Heartbeat period of the live streams.
    #[arg(long, env = "FLOWSCOPE_HEARTBEAT", default_value = "15s", value_parser = humantime::parse_duration, global = true)]
    pub heartbeat: Duration,
    /// OTLP collector base endpoint; forwarding is off without one.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// Full OTLP traces endpoint (used as is; wins over --otlp-endpoint).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", global = true)]
    pub otlp_traces_endpoint: Option<String>,
    /// OTLP transport. Headers, timeout and compression come from the standard
    /// OTEL_EXPORTER_OTLP_{HEADERS,TIMEOUT,COMPRESSION} variables.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value = "http/protobuf",
        global = true
    )]
    pub otlp_protocol: crate::export::OtlpProtocol,
    /// Fraction of traces forwarded (0..1, by trace id).
    #[arg(
        long,
        env = "FLOWSCOPE_OTLP_SAMPLE_RATIO",
        default_value_t = 1.0,
        global = true
    )]
    pub otlp_sample_ratio: f64,
    /// Also forward traces whose incoming W3C traceparent says "not sampled" (they are always
    /// recorded locally).
    #[arg(long, env = "FLOWSCOPE_OTLP_EXPORT_UNSAMPLED", global = true)]
    pub otlp_export_unsampled: bool,
    /// Export queue bound, spans (oldest dropped beyond it).
    #[arg(
        long,
        env = "FLOWSCOPE_OTLP_QUEUE_SPANS",
        default_value_t = 100_000,
        global = true
    )]
    pub otlp_queue_spans: usize,
    /// Export queue bound, estimated bytes.
    #[arg(long, env = "FLOWSCOPE_OTLP_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024, global = true)]
    pub otlp_queue_bytes: usize,
    /// Longest delay between retries while the collector is down.
    #[arg(long, env = "FLOWSCOPE_OTLP_MAX_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub otlp_max_backoff: Duration,
    /// Where traces are kept across restarts (SQLite journal), or `none` for memory only
    /// [default: $XDG_STATE_HOME/flowscope, else ~/.local/state/flowscope; created 0700].
    #[arg(long, env = "FLOWSCOPE_DATA_DIR", global = true)]
    pub data_dir: Option<String>,
    /// Traces whose last activity is older than this are deleted from disk (`0` = no age limit).
    #[arg(long, env = "FLOWSCOPE_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub retention: Duration,
    /// Traces kept on disk at most; the least recently active are deleted first.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_STORED_TRACES",
        default_value_t = 100_000,
        global = true
    )]
    pub max_stored_traces: u64,
    /// Journal size on disk at most (bytes; KiB/MiB/GiB suffixes); the oldest traces go first.
    #[arg(long, env = "FLOWSCOPE_MAX_DISK", default_value = "1GiB", value_parser = parse_bytes, global = true)]
    pub max_disk: u64,
    /// OTLP/gRPC receiver address for apps already on OpenTelemetry, or `off`
    /// [default: 127.0.0.1:4317, where OTel SDKs send by default; if a collector already holds it,
    /// the agent warns and runs without]. OTLP/HTTP is always on the --http port at /v1/traces.
    #[arg(long, env = "FLOWSCOPE_OTLP_GRPC_LISTEN", global = true)]
    pub otlp_grpc_listen: Option<String>,
    /// Largest OTLP request accepted (compressed and after gunzip), bytes.
    #[arg(long, env = "FLOWSCOPE_OTLP_MAX_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024, global = true)]
    pub otlp_max_request_bytes: usize,
    /// Open OTLP/gRPC connections accepted at once; more are closed at once (the client retries).
    #[arg(
        long,
        env = "FLOWSCOPE_OTLP_GRPC_MAX_CONNECTIONS",
        default_value_t = 256,
        global = true
    )]
    pub otlp_grpc_max_connections: usize,
    /// Bearer token required by the API, the live streams, /metrics and the OTLP receivers (the UI
    /// asks for it once).
    #[arg(long, env = "FLOWSCOPE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Allow a non-loopback --http address without --token.
    #[arg(long, env = "FLOWSCOPE_INSECURE_NO_AUTH", global = true)]
    pub insecure_no_auth: bool,
    /// Extra Host names the HTTP server answers to (loopback names always are); comma-separated.
    #[arg(
        long,
        env = "FLOWSCOPE_ALLOWED_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_host: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS, live streams); comma-separated.
    #[arg(
        long,
        env = "FLOWSCOPE_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origin: Vec<String>,
    /// Redact at ingest: key names, comma-separated (log fields, attributes, payloads), or
    /// `re:<regex>` (text anywhere). Repeat the flag for several entries.
    #[arg(long, env = "FLOWSCOPE_REDACT", global = true)]
    pub redact: Vec<String>,
    /// Keep LLM model, tokens and cost but replace prompts and responses with `[redacted]`.
    #[arg(long, env = "FLOWSCOPE_HIDE_LLM_CONTENT", global = true)]
    pub hide_llm_content: bool,
    /// Steps kept per trace; later ones are counted in `truncated.steps`.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_STEPS_PER_TRACE",
        default_value_t = 10_000,
        global = true
    )]
    pub max_steps_per_trace: usize,
    /// Operations and events kept per trace; later ones are counted in `truncated.events`.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_EVENTS_PER_TRACE",
        default_value_t = 100_000,
        global = true
    )]
    pub max_events_per_trace: usize,
    /// Deepest step nesting kept; deeper steps are attached at this depth (`truncated.depth`).
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_DEPTH",
        default_value_t = 100,
        global = true
    )]
    pub max_depth: u16,
    /// Open ingest connections accepted at once.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_CONNECTIONS",
        default_value_t = 1024,
        global = true
    )]
    pub max_connections: usize,
    /// Time a started frame has to arrive whole.
    #[arg(long, env = "FLOWSCOPE_FRAME_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub frame_timeout: Duration,
    /// An ingest connection silent for this long is closed (SDKs send stats every 10 s).
    #[arg(long, env = "FLOWSCOPE_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub idle_timeout: Duration,
    /// Open HTTP connections accepted at once; more get 503.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_HTTP_CONNECTIONS",
        default_value_t = 512,
        global = true
    )]
    pub max_http_connections: usize,
    /// Time an HTTP client has to send a request's headers.
    #[arg(long, env = "FLOWSCOPE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http_header_timeout: Duration,
    /// An HTTP (or OTLP/gRPC) connection with no bytes read or written for this long is closed.
    #[arg(long, env = "FLOWSCOPE_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub http_idle_timeout: Duration,
    /// Bytes of live messages queued per subscriber; a client further behind is dropped.
    #[arg(long, env = "FLOWSCOPE_LIVE_CLIENT_BYTES", default_value_t = 4 * 1024 * 1024, global = true)]
    pub live_client_bytes: usize,
    /// Live subscribers (SSE + WebSocket) served at once; more get 503.
    #[arg(
        long,
        env = "FLOWSCOPE_MAX_LIVE_CLIENTS",
        default_value_t = 256,
        global = true
    )]
    pub max_live_clients: usize,
    /// Distinct flows with their own metric series; the rest are labelled `other`.
    #[arg(
        long,
        env = "FLOWSCOPE_METRICS_MAX_FLOWS",
        default_value_t = 100,
        global = true
    )]
    pub metrics_max_flows: usize,
    /// Distinct (flow, step) pairs with their own metric series; the rest are labelled `other`.
    #[arg(
        long,
        env = "FLOWSCOPE_METRICS_MAX_STEPS",
        default_value_t = 1000,
        global = true
    )]
    pub metrics_max_steps: usize,
    /// State-based correlation: a read links to the group of the key's last writer within this
    /// window (0 turns it off).
    #[arg(long, env = "FLOWSCOPE_CORRELATE_STATE_WINDOW", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub correlate_state_window: Duration,
    /// A state key read by more distinct traces than this is hot and never links.
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_HOT_KEY_READERS",
        default_value_t = 20,
        global = true
    )]
    pub correlate_hot_key_readers: usize,
    /// Only state keys matching these globs link (comma-separated; default all).
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_INCLUDE",
        value_delimiter = ',',
        global = true
    )]
    pub correlate_include: Vec<String>,
    /// State keys matching these globs never link (comma-separated).
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_EXCLUDE",
        value_delimiter = ',',
        global = true
    )]
    pub correlate_exclude: Vec<String>,
    /// Event-based correlation: trace attributes (e.g. `orderId`) that link an emitter of a topic
    /// to the event-started trace handling it (comma-separated).
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_EVENT_KEY",
        value_delimiter = ',',
        global = true
    )]
    pub correlate_event_key: Vec<String>,
    /// How long an emit can link a later consumer.
    #[arg(long, env = "FLOWSCOPE_CORRELATE_EVENT_WINDOW", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub correlate_event_window: Duration,
    /// Temporal correlation rule `from->to:window@attribute` (e.g. `cart->checkout:10m@userId`);
    /// repeat for several.
    #[arg(long, env = "FLOWSCOPE_CORRELATE_TEMPORAL", global = true)]
    pub correlate_temporal: Vec<String>,
    /// Candidate links kept per trace besides the applied one.
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_MAX_CANDIDATES",
        default_value_t = 5,
        global = true
    )]
    pub correlate_max_candidates: usize,
    /// Traces one group may gain by automatic links.
    #[arg(
        long,
        env = "FLOWSCOPE_CORRELATE_MAX_GROUP",
        default_value_t = 1000,
        global = true
    )]
    pub correlate_max_group: usize,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "FLOWSCOPE_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// Parses a byte count: `1048576`, `512KiB`, `64MiB`, `1GiB` (also `KB`/`MB`/`GB` as powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a byte count such as 1GiB, got {text:?}"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown byte unit {other:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Resolved agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Socket path.
    pub socket_path: PathBuf,
    /// HTTP address.
    pub http_addr: SocketAddr,
    /// LRU bound.
    pub max_traces: NonZeroUsize,
    /// Estimated bytes of traces in memory at most.
    pub max_memory: usize,
    /// Frame limit.
    pub max_frame: usize,
    /// Abandon timeout.
    pub abandon_after: Duration,
    /// Stall timeout.
    pub stall_after: Duration,
    /// Live events buffered per subscriber.
    pub live_buffer: usize,
    /// Live heartbeat period.
    pub heartbeat: Duration,
    /// OTLP forwarding.
    pub export: crate::export::ExportConfig,
    /// Per-trace, per-connection and per-client bounds.
    pub limits: Limits,
    /// Who may use the HTTP server.
    pub access: Access,
    /// What is redacted at ingest.
    pub redact: crate::redact::RedactConfig,
    /// OTLP receivers.
    pub otlp: crate::otlp::OtlpIngestConfig,
    /// Persistence (`--data-dir`).
    pub persist: crate::persist::PersistConfig,
    /// Automatic correlation.
    pub correlate: crate::store::correlate::CorrelateConfig,
}

/// Bounds that keep memory and time within configuration whatever the senders do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Steps per trace.
    pub max_steps_per_trace: usize,
    /// Operations + events per trace.
    pub max_events_per_trace: usize,
    /// Step nesting depth.
    pub max_depth: u16,
    /// Open ingest connections.
    pub max_connections: usize,
    /// Time for a started frame to arrive whole.
    pub frame_timeout: Duration,
    /// Silence after which an ingest connection is closed.
    pub idle_timeout: Duration,
    /// Open HTTP connections.
    pub max_http_connections: usize,
    /// Time to send request headers.
    pub http_header_timeout: Duration,
    /// HTTP connection inactivity limit.
    pub http_idle_timeout: Duration,
    /// Live bytes queued per subscriber.
    pub live_client_bytes: usize,
    /// Live subscribers (SSE + WebSocket) at once.
    pub max_live_clients: usize,
    /// Flows with their own metric series.
    pub metrics_max_flows: usize,
    /// (flow, step) pairs with their own metric series.
    pub metrics_max_steps: usize,
    /// Services whose client stats are kept.
    pub max_client_services: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps_per_trace: 10_000,
            max_events_per_trace: 100_000,
            max_depth: 100,
            max_connections: 1024,
            frame_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            max_http_connections: 512,
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            live_client_bytes: 4 * 1024 * 1024,
            max_live_clients: 256,
            metrics_max_flows: 100,
            metrics_max_steps: 1000,
            max_client_services: 256,
        }
    }
}

/// HTTP access control: token, Host allow-list, CORS origins.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Bearer token, when required.
    pub token: Option<String>,
    /// Host names answered besides the loopback ones (lowercase, without port).
    pub allowed_hosts: Vec<String>,
    /// Origins allowed cross-origin (`scheme://host[:port]`, lowercase).
    pub cors_origins: Vec<String>,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A public address without a token.
    #[error(
        "--http {0} is reachable from other machines; set --token (FLOWSCOPE_TOKEN) or pass --insecure-no-auth"
    )]
    PublicWithoutToken(SocketAddr),
    /// A bad --redact entry.
    #[error(transparent)]
    Redact(#[from] crate::redact::RedactError),
    /// An empty token.
    #[error("--token must not be empty")]
    EmptyToken,
    /// A bad --otlp-grpc-listen value.
    #[error("--otlp-grpc-listen {0:?} is neither an address (host:port) nor \"off\"")]
    OtlpGrpcListen(String),
    /// A public OTLP/gRPC address without a token.
    #[error(
        "--otlp-grpc-listen {0} is reachable from other machines; set --token (FLOWSCOPE_TOKEN) or pass --insecure-no-auth"
    )]
    PublicGrpcWithoutToken(SocketAddr),
    /// A bad --correlate-temporal rule.
    #[error(transparent)]
    Temporal(#[from] crate::store::correlate::RuleError),
}

impl AgentConfig {
    /// Defaults with the given socket and an ephemeral HTTP port (tests, benches).
    pub fn for_socket(socket_path: impl Into<PathBuf>) -> Self {
        Self {
            socket_path: socket_path.into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_traces: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_memory: 512 << 20,
            max_frame: flowscope::wire::DEFAULT_MAX_FRAME,
            abandon_after: Duration::from_secs(300),
            stall_after: Duration::from_secs(120),
            live_buffer: 4096,
            heartbeat: Duration::from_secs(15),
            export: crate::export::ExportConfig::default(),
            limits: Limits::default(),
            access: Access::default(),
            redact: crate::redact::RedactConfig::default(),
            otlp: crate::otlp::OtlpIngestConfig::default(),
            persist: crate::persist::PersistConfig::default(),
            correlate: crate::store::correlate::CorrelateConfig::default(),
        }
    }
}

impl TryFrom<&AgentArgs> for AgentConfig {
    type Error = ConfigError;

    fn try_from(args: &AgentArgs) -> Result<Self, ConfigError> {
        if args.token.as_deref() == Some("") {
            return Err(ConfigError::EmptyToken);
        }
        if !args.http.ip().is_loopback() && args.token.is_none() && !args.insecure_no_auth {
            return Err(ConfigError::PublicWithoutToken(args.http));
        }
        let (grpc_listen, grpc_required) = match args.otlp_grpc_listen.as_deref().map(str::trim) {
            None => (Some(SocketAddr::from(([127, 0, 0, 1], 4317))), false),
            Some("off" | "none" | "") => (None, false),
            Some(text) => (
                Some(
                    text.parse::<SocketAddr>()
                        .map_err(|_| ConfigError::OtlpGrpcListen(text.to_owned()))?,
                ),
                true,
            ),
        };
        if let Some(addr) = grpc_listen
            && !addr.ip().is_loopback()
            && args.token.is_none()
            && !args.insecure_no_auth
        {
            return Err(ConfigError::PublicGrpcWithoutToken(addr));
        }
        let lower = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Self {
            socket_path: args
                .socket
                .clone()
                .unwrap_or_else(flowscope::default_socket_path),
            http_addr: args.http,
            max_traces: args.max_traces,
            max_memory: usize::try_from(args.max_memory.max(1 << 20)).unwrap_or(usize::MAX),
            max_frame: args.max_frame,
            abandon_after: args.abandon_after,
            stall_after: args.stall_after,
            live_buffer: args.live_buffer,
            heartbeat: args.heartbeat,
            export: crate::export::ExportConfig {
                endpoint: args.otlp_endpoint.clone().filter(|e| !e.is_empty()),
                traces_endpoint: args.otlp_traces_endpoint.clone().filter(|e| !e.is_empty()),
                protocol: args.otlp_protocol,
                sample_ratio: args.otlp_sample_ratio,
                export_unsampled: args.otlp_export_unsampled,
                queue_spans: args.otlp_queue_spans,
                queue_bytes: args.otlp_queue_bytes,
                max_backoff: args.otlp_max_backoff,
                ..crate::export::ExportConfig::default()
            },
            limits: Limits {
                max_steps_per_trace: args.max_steps_per_trace.max(1),
                max_events_per_trace: args.max_events_per_trace.max(1),
                max_depth: args.max_depth.max(1),
                max_connections: args.max_connections.max(1),
                frame_timeout: args.frame_timeout,
                idle_timeout: args.idle_timeout,
                max_http_connections: args.max_http_connections.max(1),
                http_header_timeout: args.http_header_timeout,
                http_idle_timeout: args.http_idle_timeout,
                live_client_bytes: args.live_client_bytes.max(64 * 1024),
                max_live_clients: args.max_live_clients.max(1),
                metrics_max_flows: args.metrics_max_flows,
                metrics_max_steps: args.metrics_max_steps,
                ..Limits::default()
            },
            access: Access {
                token: args.token.clone(),
                allowed_hosts: lower(&args.allowed_host),
                cors_origins: lower(&args.cors_origin),
            },
            redact: crate::redact::RedactConfig::parse(&args.redact, args.hide_llm_content)?,
            persist: crate::persist::PersistConfig {
                dir: match args.data_dir.as_deref().map(str::trim) {
                    None => crate::persist::default_dir(),
                    Some("none" | "off" | "") => None,
                    Some(path) => Some(PathBuf::from(path)),
                },
                retention: (!args.retention.is_zero()).then_some(args.retention),
                max_stored_traces: Some(args.max_stored_traces.max(1)),
                max_disk: Some(args.max_disk.max(1 << 20)),
            },
            otlp: crate::otlp::OtlpIngestConfig {
                grpc_listen,
                grpc_required,
                max_request_bytes: args.otlp_max_request_bytes.max(1024),
                grpc_max_connections: args.otlp_grpc_max_connections.max(1),
            },
            correlate: crate::store::correlate::CorrelateConfig {
                state: !args.correlate_state_window.is_zero(),
                state_window: args.correlate_state_window,
                hot_key_readers: args.correlate_hot_key_readers,
                include: args.correlate_include.clone(),
                exclude: args.correlate_exclude.clone(),
                event_keys: args.correlate_event_key.clone(),
                event_window: args.correlate_event_window,
                temporal: args
                    .correlate_temporal
                    .iter()
                    .map(|r| crate::store::correlate::TemporalRule::parse(r))
                    .collect::<Result<_, _>>()?,
                max_candidates: args.correlate_max_candidates,
                max_group_links: args.correlate_max_group,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// README.md's sentence naming the env variable of every flag without its own row.
    const RULE: &str = "`FLOWSCOPE_<FLAG>`";

    /// Every `--flag` of the command line (with its env variable) is in README.md, and every
    /// `--flag` the README's tables name exists: the tables cannot drift from `flowscope --help`.
    #[test]
    fn readme_documents_exactly_the_real_flags() {
        let readme = include_str!("../../README.md");
        let cli = Cli::command();
        let mut real = std::collections::BTreeSet::new();
        let mut missing = Vec::new();
        let commands = std::iter::once(&cli).chain(cli.get_subcommands());
        for arg in commands.flat_map(|c| c.get_arguments()) {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let flag = format!("--{long}");
            if ![
                format!("`{flag}`"),
                format!("`{flag} "),
                format!("`{flag}="),
            ]
            .iter()
            .any(|written| readme.contains(written))
            {
                missing.push(flag.clone());
            }
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                // Written in full, as the `_SUFFIX` of its row's first variable, or by the rule.
                let by_rule = format!("FLOWSCOPE_{}", long.to_uppercase().replace('-', "_"));
                let suffix = env.rsplit_once('_').map(|(_, s)| format!("_{s}`"));
                let documented = readme.contains(&*env)
                    || suffix.is_some_and(|s| readme.contains(&s))
                    || (env == by_rule && readme.contains(RULE));
                if !documented {
                    missing.push(format!("{env} ({flag})"));
                }
            }
            real.insert(flag);
        }
        assert!(missing.is_empty(), "not in README.md: {missing:?}");
        for row in readme.lines().filter(|l| l.starts_with("| `--")) {
            for flag in row.split('`').filter(|s| s.starts_with("--")) {
                let name = flag.split([' ', '=']).next().unwrap_or(flag);
                assert!(
                    real.contains(name),
                    "README.md documents {name}, which flowscope does not have"
                );
            }
        }
    }
}
