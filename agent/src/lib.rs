//! # flowscope-agent
//!
//! The sidecar: receives SDK events on a Unix socket ([`ingest`]), builds traces and groups
//! ([`trace`]), keeps recent ones in a bounded LRU with indexes ([`store`]) and serves them over
//! HTTP ([`api`]). [`run_with`] starts everything and returns a handle; `main.rs` is a thin CLI.

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod export;
pub mod http;
pub mod ingest;
pub mod insights;
pub mod live;
pub mod otlp;
pub mod persist;
pub mod receive;
pub use flowscope::redact;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod ui;
pub mod units;
pub mod view;

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
    /// Pass-through forwarding of OTLP-ingested requests (set when an exporter is configured).
    pub forwarder: std::sync::OnceLock<Arc<export::Forwarder>>,
    /// The OTLP/gRPC receiver's state for `/readyz` (`listening on …`, `off`, or why not).
    pub otlp_grpc: std::sync::OnceLock<String>,
    /// The journal (set at start when `--data-dir` is on).
    pub persist: std::sync::OnceLock<persist::Persistence>,
    /// Stamps received batches in the order they are applied (see [`receive`]).
    pub receive_order: receive::ReceiveOrder,
    /// Heavy renders allowed at once (each runs on a blocking thread, outside the store lock).
    renders: Arc<tokio::sync::Semaphore>,
}

/// A store with `config`'s bounds, caps and correlation rules, reporting into `metrics`.
fn configured_store(config: &AgentConfig, metrics: Arc<telemetry::StoreMetrics>) -> Store {
    let limits = &config.limits;
    let mut store = Store::with_metrics(config.max_traces, metrics);
    store.set_caps(trace::builder::TraceCaps {
        max_steps: limits.max_steps_per_trace,
        max_events: u32::try_from(limits.max_events_per_trace).unwrap_or(u32::MAX),
        max_depth: limits.max_depth,
    });
    store.set_correlation(config.correlate.clone());
    store.set_max_memory(config.max_memory);
    store
}

/// Heavy renders (a whole trace, a group) running at once; more wait their turn.
const CONCURRENT_RENDERS: usize = 4;

impl AgentState {
    /// Fresh state for `config`.
    pub fn new(config: AgentConfig) -> Self {
        let limits = &config.limits;
        let metrics = Arc::new(Metrics::with_store(
            telemetry::StoreMetrics::with_series_limits(
                limits.metrics_max_flows,
                limits.metrics_max_steps,
            ),
        ));
        let store = configured_store(&config, Arc::clone(&metrics.store));
        Self {
            store: RwLock::new(store),
            metrics,
            live: Arc::new(live::Hub::new(
                limits.max_live_clients,
                config.live_buffer,
                limits.live_client_bytes,
            )),
            started: Instant::now(),
            forwarder: std::sync::OnceLock::new(),
            otlp_grpc: std::sync::OnceLock::new(),
            persist: std::sync::OnceLock::new(),
            receive_order: receive::ReceiveOrder::default(),
            renders: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_RENDERS)),
            config,
        }
    }

    /// Runs a heavy render on a blocking thread, at most `CONCURRENT_RENDERS` at once.
    pub async fn render_off_lock<R: Send + 'static>(
        &self,
        render: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, api::ApiError> {
        let _permit = Arc::clone(&self.renders)
            .acquire_owned()
            .await
            .map_err(|_| api::ApiError::Overloaded("shutting down"))?;
        tokio::task::spawn_blocking(render)
            .await
            .map_err(|e| api::ApiError::Internal(format!("render failed: {e}")))
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
    /// The OTLP forwarder could not be configured.
    #[error(transparent)]
    Forward(#[from] export::upstream::UpstreamError),
    /// The OTLP/gRPC receiver's explicit address could not be bound.
    #[error("cannot listen for OTLP/gRPC on {addr}: {source}")]
    OtlpGrpc {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
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
    /// Bound OTLP/gRPC receiver address, when it listens.
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// Shared state (store, counters).
    pub state: Arc<AgentState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningAgent {
    /// Stops accepting, removes the socket file, waits for the tasks and commits the journal.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.state.live.close();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(persist) = self.state.persist.get() {
            // What the collector has not taken yet is saved for the next start.
            let mut backlog: Vec<(Vec<u8>, u64)> = Vec::new();
            if let Some(exporter) = self.state.store.read().exporter() {
                for (request, spans) in exporter.drain_requests() {
                    backlog.push((prost::Message::encode_to_vec(&request), spans));
                }
            }
            if let Some(forwarder) = self.state.forwarder.get() {
                for (request, spans) in forwarder.drain() {
                    backlog.push((prost::Message::encode_to_vec(&request), spans));
                }
            }
            if !backlog.is_empty() {
                let spans: u64 = backlog.iter().map(|(_, n)| n).sum();
                tracing::info!(spans, "saving undelivered spans for the next start");
                persist.save_backlog(backlog);
            }
            let persist_flushed =
                tokio::task::block_in_place(|| persist.flush(Duration::from_secs(5)));
            if !persist_flushed {
                tracing::warn!("the journal did not commit everything before shutdown");
            }
        }
    }
}

/// Starts ingest, the HTTP API, the live publisher and the abandon sweeper on the current tokio runtime.
pub async fn run_with(mut config: AgentConfig) -> Result<RunningAgent, StartError> {
    let listener = Arc::new(ingest::bind(&config.socket_path)?);
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
    config.http_addr = http_addr;
    let (otlp_grpc, otlp_grpc_error) = match config.otlp.grpc_listen {
        None => (None, Some("off".to_owned())),
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => (Some(listener), None),
            Err(source) if config.otlp.grpc_required => {
                return Err(StartError::OtlpGrpc { addr, source });
            }
            Err(err) => {
                // The default address: a collector may already hold it; the agent runs without.
                tracing::warn!(%addr, %err, "OTLP/gRPC receiver not started (use --otlp-grpc-listen to pick another address)");
                (None, Some(format!("not listening on {addr}: {err}")))
            }
        },
    };
    let socket_path = config.socket_path.clone();
    let state = Arc::new(AgentState::new(config));
    let (shutdown, watch_rx) = watch::channel(false);

    // The exporter exists before the journal is replayed (batches the collector may not have
    // received are offered again) and before the first connection is accepted.
    let mut tasks = vec![];
    let (mut export_task, mut export_queue) = (None, None);
    if let Some((exporter, task)) = export::start(
        &state.config.export,
        Arc::clone(&state.metrics.export),
        watch_rx.clone(),
    )? {
        export_queue = Some(Arc::clone(exporter.queue()));
        state.store.write().set_exporter(exporter);
        export_task = Some(task);
    }
    restore(&state);
    if let Some(task) = export_task {
        tasks.push(task);
        let (forwarder, task) = export::forward::start(
            &state.config.export,
            Arc::clone(&state.metrics.export),
            watch_rx.clone(),
        )?;
        // Spans a previous run could not deliver go first, as they were saved.
        if let Some(persist) = state.persist.get() {
            let mut saved = Vec::new();
            for (bytes, spans) in persist.take_backlog() {
                match <opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as prost::Message>::decode(bytes.as_slice()) {
                    Ok(request) => saved.push((request, spans)),
                    Err(err) => tracing::warn!(%err, "a saved export request no longer decodes"),
                }
            }
            // The journal keeps them until they have all left: a run killed before that
            // leaves them to the next.
            let forget = Arc::downgrade(&state);
            forwarder.offer_backlog(
                saved,
                Box::new(move || {
                    if let Some(state) = forget.upgrade()
                        && let Some(persist) = state.persist.get()
                    {
                        persist.backlog_sent();
                    }
                }),
            );
        }
        // The journal records how far both queues got: after a crash, what they still held is
        // exported again from the journal.
        if let (Some(persist), Some(queue)) = (state.persist.get(), export_queue) {
            let forwarded = Arc::clone(&forwarder);
            persist.track_export(Arc::new(move || {
                queue.progress().merge(forwarded.progress())
            }));
        }
        let _ = state.forwarder.set(forwarder);
        tasks.push(task);
    }
    let otlp_grpc_addr = match otlp_grpc {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            let _ = state.otlp_grpc.set(match addr {
                Some(addr) => format!("listening on {addr}"),
                None => "listening".into(),
            });
            let listener = Arc::new(listener);
            tasks.push(supervise("otlp-grpc", &state, watch_rx.clone(), {
                let state = Arc::clone(&state);
                move |shutdown| {
                    otlp::serve_grpc(Arc::clone(&listener), Arc::clone(&state), shutdown)
                }
            }));
            addr
        }
        None => None,
    };
    if let Some(why) = otlp_grpc_error {
        let _ = state.otlp_grpc.set(why);
    }
    let ingest_task = supervise("ingest", &state, watch_rx.clone(), {
        let (listener, path, state) = (listener, socket_path.clone(), Arc::clone(&state));
        move |shutdown| {
            ingest::serve(
                Arc::clone(&listener),
                path.clone(),
                Arc::clone(&state),
                shutdown,
            )
        }
    });
    let router = api::router(Arc::clone(&state));
    let http = Arc::new(http);
    let http_limits = http::HttpLimits {
        max_connections: state.config.limits.max_http_connections,
        header_timeout: state.config.limits.http_header_timeout,
        idle_timeout: state.config.limits.http_idle_timeout,
    };
    let http_task = supervise("http", &state, watch_rx.clone(), move |shutdown| {
        http::serve(Arc::clone(&http), router.clone(), http_limits, shutdown)
    });
    let sweeper = supervise("abandon-sweeper", &state, watch_rx.clone(), {
        let state = Arc::clone(&state);
        move |shutdown| sweep_abandoned(Arc::clone(&state), shutdown)
    });
    let publisher = supervise("live-publisher", &state, watch_rx, {
        let state = Arc::clone(&state);
        move |shutdown| live::publish_changes(Arc::clone(&state), shutdown)
    });
    Ok(RunningAgent {
        socket_path,
        http_addr,
        otlp_grpc_addr,
        state,
        shutdown,
        tasks: tasks
            .into_iter()
            .chain([ingest_task, http_task, sweeper, publisher])
            .collect(),
    })
}

/// Opens the journal (when `--data-dir` is on) and replays the most recently active traces into
/// the store.
fn restore(state: &Arc<AgentState>) {
    let started = Instant::now();
    let persistence = {
        let mut store = state.store.write();
        // Traces beyond the ones restored are replayed for export only, a chunk at a time into a
        // scratch store that shares the exporter's queue and is then dropped.
        let exporter = store.exporter().map(export::Exporter::share);
        let mut scratch: Option<(usize, Store)> = None;
        persist::open(
            &state.config.persist,
            state.config.max_traces.get(),
            state.config.export.enabled(),
            |origin, events, received, unexported| {
                store.replay_batch(origin, events, received, !unexported);
            },
            |chunk, origin, events, received, unexported| {
                let Some(exporter) = &exporter else { return };
                if scratch.as_ref().map(|(c, _)| *c) != Some(chunk) {
                    let mut fresh = configured_store(&state.config, Arc::default());
                    fresh.set_exporter(exporter.share());
                    scratch = Some((chunk, fresh));
                }
                if let Some((_, store)) = &mut scratch {
                    store.replay_batch(origin, events, received, !unexported);
                }
            },
        )
    };
    if let Some(persistence) = persistence {
        let restored = {
            let mut store = state.store.write();
            // Replayed changes are not news for live subscribers.
            store.take_dirty();
            store.len()
        };
        if restored > 0 {
            tracing::info!(
                restored,
                ms = started.elapsed().as_millis() as u64,
                "traces restored"
            );
        }
        let _ = state.persist.set(persistence);
    }
}

/// Runs a long-lived task and restarts it when it panics (logged as an error and counted in
/// `flowscope_task_restarts_total`), so no part of the agent dies silently. A task that returns
/// (shutdown) is not restarted.
fn supervise<F, Fut>(
    name: &'static str,
    state: &Arc<AgentState>,
    shutdown: watch::Receiver<bool>,
    start: F,
) -> JoinHandle<()>
where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::spawn(async move {
        loop {
            match tokio::spawn(start(shutdown.clone())).await {
                Ok(()) => return,
                Err(err) if err.is_panic() => {
                    state.metrics.task_restarts.inc();
                    tracing::error!(task = name, "background task panicked; restarting it");
                    if *shutdown.borrow() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => return,
            }
        }
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
