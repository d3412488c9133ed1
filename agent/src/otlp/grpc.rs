//! The OTLP/gRPC receiver (`opentelemetry.proto.collector.trace.v1.TraceService/Export`), gzip
//! accepted, messages bounded by `--otlp-max-request-bytes`, the API token (when set) required as
//! `authorization: Bearer …` metadata.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    let Some(incoming) = duplicate(&listener).map(tonic::transport::server::TcpIncoming::from)
    else {
        tracing::warn!("cannot duplicate the OTLP gRPC listener");
        return;
    };
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

/// A second handle on the same listening socket (a dup of its descriptor).
fn duplicate(listener: &TcpListener) -> Option<TcpListener> {
    use std::os::fd::AsFd;
    let fd = listener.as_fd().try_clone_to_owned().ok()?;
    let std = std::net::TcpListener::from(fd);
    std.set_nonblocking(true).ok()?;
    TcpListener::from_std(std).ok()
}
