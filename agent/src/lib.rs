//! # flowscope-agent
//!
//! The sidecar: receives SDK events on a Unix socket ([`ingest`]), builds traces and groups
//! ([`trace`]), keeps recent ones in a bounded LRU with indexes ([`store`]) and serves them over
//! HTTP ([`api`]). [`run_with`] starts everything and returns a handle; `main.rs` is a thin CLI.

pub mod api;
pub mod config;
pub mod demo;
pub mod export;
pub mod ingest;
pub mod live;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::AgentConfig;
use store::Store;
use telemetry::Metrics;

/// Everything the tasks share.
pub struct AgentState {
    /// Configuration.
    pub config: AgentConfig,
    /// Traces and indexes.
    pub store: RwLock<Store>,
    /// Every metric (`/metrics`, `/healthz`).
    pub metrics: Arc<Metrics>,
    /// Live-update hub.
    pub live: Arc<live::Hub>,
    /// Start time.
    pub started: Instant,
}

impl AgentState {
    /// Fresh state for `config`.
    pub fn new(config: AgentConfig) -> Self {
        let metrics = Arc::new(Metrics::new());
        Self {
            store: RwLock::new(Store::with_metrics(
                config.max_traces,
                Arc::clone(&metrics.store),
            )),
            metrics,
            live: Arc::new(live::Hub::new(config.live_buffer)),
            started: Instant::now(),
            config,
        }
    }
}

/// The agent failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ingest socket could not be bound.
    #[error(transparent)]
    Socket(#[from] ingest::BindError),
    /// The OTLP exporter could not be configured.
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Http {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A started agent.
pub struct RunningAgent {
    /// Ingest socket path.
    pub socket_path: PathBuf,
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Shared state (store, counters).
    pub state: Arc<AgentState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningAgent {
    /// Stops accepting, removes the socket file and waits for the tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.state.live.close();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts ingest, the HTTP API, the live publisher and the abandon sweeper on the current tokio runtime.
pub async fn run_with(config: AgentConfig) -> Result<RunningAgent, StartError> {
    let listener = ingest::bind(&config.socket_path)?;
    let http = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| StartError::Http {
            addr: config.http_addr,
            source,
        })?;
    let http_addr = http.local_addr().map_err(|source| StartError::Http {
        addr: config.http_addr,
        source,
    })?;
    let socket_path = config.socket_path.clone();
    let state = Arc::new(AgentState::new(config));
    let (shutdown, watch_rx) = watch::channel(false);

    let ingest_task = tokio::spawn(ingest::serve(
        listener,
        socket_path.clone(),
        Arc::clone(&state),
        watch_rx.clone(),
    ));
    let router = api::router(Arc::clone(&state));
    let mut http_shutdown = watch_rx.clone();
    let http_task = tokio::spawn(async move {
        let stop = async move {
            let _ = http_shutdown.changed().await;
        };
        if let Err(err) = axum::serve(http, router).with_graceful_shutdown(stop).await {
            tracing::error!(%err, "http server failed");
        }
    });
    let mut tasks = vec![];
    if let Some((exporter, task)) = export::start(
        &state.config.export,
        Arc::clone(&state.metrics.export),
        watch_rx.clone(),
    )? {
        state.store.write().set_exporter(exporter);
        tasks.push(task);
    }
    let sweeper = tokio::spawn(sweep_abandoned(Arc::clone(&state), watch_rx.clone()));
    let publisher = tokio::spawn(live::publish_changes(Arc::clone(&state), watch_rx));
    Ok(RunningAgent {
        socket_path,
        http_addr,
        state,
        shutdown,
        tasks: tasks
            .into_iter()
            .chain([ingest_task, http_task, sweeper, publisher])
            .collect(),
    })
}

/// Periodically fails traces that stopped receiving events.
async fn sweep_abandoned(state: Arc<AgentState>, mut shutdown: watch::Receiver<bool>) {
    let timeout = state.config.abandon_after;
    let period = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let abandoned = state.store.write().sweep_abandoned(flowscope::now_nanos(), timeout.as_nanos() as u64);
                if abandoned > 0 {
                    tracing::info!(abandoned, "traces failed as abandoned");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
