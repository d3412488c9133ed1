//! The OTLP/gRPC receiver (`opentelemetry.proto.collector.trace.v1.TraceService/Export`), gzip
//! accepted, messages bounded by `--otlp-max-request-bytes`, at most
//! `--otlp-grpc-max-connections` connections open at once (more are closed on accept), the API
//! token (when set) required as `authorization: Bearer …` metadata.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::AgentState;

struct Receiver(Arc<AgentState>);

fn authorized(metadata: &tonic::metadata::MetadataMap, token: &str) -> bool {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::api::guard::bearer_token)
        .is_some_and(|given| crate::api::guard::same_secret(given.as_bytes(), token.as_bytes()))
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if let Some(token) = &self.0.config.access.token
            && !authorized(request.metadata(), token)
        {
            self.0.metrics.otlp.requests_refused.inc();
            return Err(tonic::Status::unauthenticated(
                "missing or wrong bearer token",
            ));
        }
        let state = Arc::clone(&self.0);
        let outcome =
            tokio::task::spawn_blocking(move || super::ingest(&state, request.into_inner()))
                .await
                .map_err(|_| tonic::Status::internal("OTLP ingest failed"))?;
        Ok(tonic::Response::new(outcome.response()))
    }
}

/// Serves the receiver on `listener` until `shutdown` flips.
pub async fn serve(
    listener: Arc<TcpListener>,
    state: Arc<AgentState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = state.config.otlp.max_request_bytes;
    let service = TraceServiceServer::new(Receiver(Arc::clone(&state)))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    // tonic owns its listener; a duplicate descriptor lets a restart after a panic serve the
    // same socket again.
    let Some(listener) = duplicate(&listener) else {
        tracing::warn!("cannot duplicate the OTLP gRPC listener");
        return;
    };
    let incoming = capped(listener, state.config.otlp.grpc_max_connections, state);
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(err) = tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(30))
        .concurrency_limit_per_connection(64)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop)
        .await
    {
        tracing::warn!(%err, "OTLP gRPC receiver stopped");
    }
}

/// A connection holding one of the receiver's slots until it closes. With no bytes either way
/// for `idle` (`--http-idle-timeout`) its reads fail, so the server closes it: a client that
/// connects and never speaks cannot keep a slot.
struct Slotted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: std::time::Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Slotted {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, idle: std::time::Duration) -> Self {
        Self {
            stream,
            _slot: slot,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Restarts the idle timer when `poll` moved bytes (or ended).
    fn touched<T>(&mut self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            let at = tokio::time::Instant::now() + self.idle;
            self.timer.as_mut().reset(at);
        }
        poll
    }
}

impl AsyncRead for Slotted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending if this.timer.as_mut().poll(cx).is_ready() => Poll::Ready(Err(
                io::Error::new(io::ErrorKind::TimedOut, "idle OTLP/gRPC connection"),
            )),
            poll => this.touched(poll),
        }
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.touched(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.touched(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for Slotted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

/// Accepted connections, at most `max` open at once: one past that is closed on accept (a gRPC
/// client sees it unavailable and retries) and counted. Accept errors (out of descriptors,
/// typically) back off instead of spinning.
fn capped(
    listener: TcpListener,
    max: usize,
    state: Arc<AgentState>,
) -> impl futures_util::Stream<Item = io::Result<Slotted>> {
    let slots = Arc::new(Semaphore::new(max.max(1)));
    futures_util::stream::unfold(
        (listener, slots, state),
        |(listener, slots, state)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => match Arc::clone(&slots).try_acquire_owned() {
                        Ok(slot) => {
                            let _ = stream.set_nodelay(true);
                            let idle = state.config.limits.http_idle_timeout;
                            let conn = Slotted::new(stream, slot, idle);
                            return Some((Ok(conn), (listener, slots, state)));
                        }
                        Err(_) => {
                            state.metrics.otlp.grpc_connections_refused.inc();
                            drop(stream);
                        }
                    },
                    Err(err) => {
                        tracing::warn!(%err, "OTLP gRPC accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        },
    )
}

/// A second handle on the same listening socket (a dup of its descriptor).
fn duplicate(listener: &TcpListener) -> Option<TcpListener> {
    use std::os::fd::AsFd;
    let fd = listener.as_fd().try_clone_to_owned().ok()?;
    let std = std::net::TcpListener::from(fd);
    std.set_nonblocking(true).ok()?;
    TcpListener::from_std(std).ok()
}
