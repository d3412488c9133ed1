//! Client configuration, with defaults read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `FLOWSCOPE_SOCKET` | agent socket path | `$XDG_RUNTIME_DIR/flowscope/flowscope.sock`, else `/tmp/flowscope-$UID/flowscope.sock` |
//! | `FLOWSCOPE_DISABLED` | `1`/`true`: every call is a no-op | off |
//! | `OTEL_SERVICE_NAME` | service name when none is given | `unknown_service` |
//! | `FLOWSCOPE_QUEUE_BYTES` | queue bound in (estimated) bytes | 256 MiB |
//! | `FLOWSCOPE_OVERFLOW` | `drop`, or `block` (wait up to 5 s for room), or `block:<ms>` | `drop` |

use std::path::PathBuf;
use std::time::Duration;

use super::socket::default_socket_path;
use crate::wire::{DEFAULT_MAX_FRAME, Encoding};

/// How a [`Client`](super::Client) talks to the agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// Service name sent in the hello (OTel `service.name`).
    pub service: String,
    /// Agent socket path.
    pub socket_path: PathBuf,
    /// Events the queue holds before new ones overflow (a second bound beside `queue_bytes`).
    pub queue_capacity: usize,
    /// Estimated bytes the queue holds before new events overflow.
    pub queue_bytes: usize,
    /// What an event that does not fit does.
    pub overflow: Overflow,
    /// Most events in one frame.
    pub max_batch_events: usize,
    /// Largest frame payload (lowered to the agent's `maxFrame` after the handshake).
    pub max_frame: usize,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// How often the writer sends its `stats` event while connected.
    pub stats_interval: Duration,
    /// Batch encoding.
    pub encoding: Encoding,
    /// No-op mode.
    pub disabled: bool,
    /// SDK name/version reported in the hello (bindings put their own).
    pub sdk: String,
    /// Redaction applied by the writer before events leave the process.
    pub redact: Option<std::sync::Arc<crate::redact::RedactConfig>>,
    /// A hook the writer calls on every event before it leaves the process (after `redact`).
    pub redact_hook: Option<RedactHook>,
}

/// What [`Client::emit`](super::Client::emit) does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the event and count it (per trace: the agent marks the trace incomplete). Never
    /// blocks: the default for services.
    #[default]
    Drop,
    /// Wait for room up to this long, then drop: for batch jobs that prefer slower to lossy.
    Block(Duration),
}

impl Overflow {
    /// How long `block` waits when no time is given.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

    /// Parses `drop`, `block` or `block:<ms>`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "drop" => Some(Self::Drop),
            "block" => Some(Self::Block(Self::DEFAULT_WAIT)),
            other => other
                .strip_prefix("block:")
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .map(|ms| Self::Block(Duration::from_millis(ms))),
        }
    }
}

/// Default queue bound in bytes.
pub const DEFAULT_QUEUE_BYTES: usize = 256 * 1024 * 1024;

/// A function that edits an event before it is sent (drop secrets, hash ids…).
#[derive(Clone)]
pub struct RedactHook(pub std::sync::Arc<dyn Fn(&mut crate::wire::Event) + Send + Sync>);

impl std::fmt::Debug for RedactHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedactHook(..)")
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

impl Config {
    /// Defaults for `service`, without reading the environment.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            socket_path: default_socket_path(),
            queue_capacity: usize::MAX,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            overflow: Overflow::Drop,
            max_batch_events: 1024,
            max_frame: DEFAULT_MAX_FRAME,
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            stats_interval: Duration::from_secs(10),
            encoding: Encoding::Msgpack,
            disabled: false,
            sdk: format!("rust/{}", env!("CARGO_PKG_VERSION")),
            redact: None,
            redact_hook: None,
        }
    }

    /// Defaults with `FLOWSCOPE_SOCKET`, `FLOWSCOPE_DISABLED` and `OTEL_SERVICE_NAME` applied.
    /// An empty `service` falls back to `OTEL_SERVICE_NAME`.
    pub fn from_env(service: impl Into<String>) -> Self {
        let mut service = service.into();
        if service.is_empty() {
            service =
                std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "unknown_service".into());
        }
        let mut config = Self::new(service);
        config.socket_path = std::env::var_os("FLOWSCOPE_SOCKET")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(default_socket_path);
        config.disabled = env_flag("FLOWSCOPE_DISABLED");
        if let Some(bytes) = std::env::var("FLOWSCOPE_QUEUE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            config.queue_bytes = bytes.max(1);
        }
        if let Some(overflow) = std::env::var("FLOWSCOPE_OVERFLOW")
            .ok()
            .and_then(|v| Overflow::parse(&v))
        {
            config.overflow = overflow;
        }
        config
    }

    /// Sets the socket path.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket_path = path.into();
        self
    }

    /// Sets the queue bound in events.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets the queue bound in estimated bytes.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1);
        self
    }

    /// Sets what an event that does not fit in the queue does.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets the batch encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Redacts events with `rules` before they leave the process (see [`crate::redact`]).
    pub fn redact(mut self, rules: crate::redact::RedactConfig) -> Self {
        self.redact = rules.is_active().then(|| std::sync::Arc::new(rules));
        self
    }

    /// Calls `hook` on every event before it leaves the process.
    pub fn redact_hook(
        mut self,
        hook: impl Fn(&mut crate::wire::Event) + Send + Sync + 'static,
    ) -> Self {
        self.redact_hook = Some(RedactHook(std::sync::Arc::new(hook)));
        self
    }

    /// Turns no-op mode on or off.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}
