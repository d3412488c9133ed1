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
    /// Unix socket the SDKs connect to [default: $XDG_RUNTIME_DIR/flowscope.sock, else /tmp/flowscope.sock].
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
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "FLOWSCOPE_LOG", default_value = "info", global = true)]
    pub log: String,
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
}

impl AgentConfig {
    /// Defaults with the given socket and an ephemeral HTTP port (tests, benches).
    pub fn for_socket(socket_path: impl Into<PathBuf>) -> Self {
        Self {
            socket_path: socket_path.into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_traces: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_frame: flowscope::wire::DEFAULT_MAX_FRAME,
            abandon_after: Duration::from_secs(300),
            stall_after: Duration::from_secs(120),
            live_buffer: 4096,
            heartbeat: Duration::from_secs(15),
            export: crate::export::ExportConfig::default(),
        }
    }
}

impl From<&AgentArgs> for AgentConfig {
    fn from(args: &AgentArgs) -> Self {
        Self {
            socket_path: args
                .socket
                .clone()
                .unwrap_or_else(flowscope::default_socket_path),
            http_addr: args.http,
            max_traces: args.max_traces,
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
                queue_spans: args.otlp_queue_spans,
                queue_bytes: args.otlp_queue_bytes,
                max_backoff: args.otlp_max_backoff,
                ..crate::export::ExportConfig::default()
            },
        }
    }
}
