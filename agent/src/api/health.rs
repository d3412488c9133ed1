//! `GET /healthz` (liveness + counters) and `GET /readyz` (readiness).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::AgentState;

/// Liveness with the agent's counters.
pub async fn healthz(State(state): State<Arc<AgentState>>) -> Json<Value> {
    let ingest = &state.metrics.ingest;
    let store = state.store.read();
    let counters = store.counters();
    let rejections: Map<String, Value> = ingest
        .rejections()
        .map(|(r, n)| (r.code().to_owned(), json!(n)))
        .collect();
    let clients: Map<String, Value> = store
        .client_stats()
        .map(|(service, s)| {
            (
                service.to_string(),
                json!({"sent": s.sent, "dropped": s.dropped, "reconnects": s.reconnects}),
            )
        })
        .collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "ingest": {
            "connectionsOpen": ingest.connections_open.get(),
            "connectionsTotal": ingest.connections_total.get(),
            "frames": ingest.frames.get(),
            "events": ingest.events.get(),
            "bytes": ingest.bytes.get(),
            "rejected": rejections,
        },
        "store": {
            "traces": store.len(),
            "maxTraces": state.config.max_traces.get(),
            "memoryBytes": store.memory_bytes(),
            "maxMemory": state.config.max_memory,
            "groups": store.indexes().groups.len(),
            "eventsApplied": counters.events_applied,
            "eventsUnknown": counters.events_unknown,
            "sdkDroppedUntraced": counters.sdk_dropped_untraced,
            "eventsInvalid": {
                "invalid_trace_id": state.metrics.store.invalid_count("invalid_trace_id"),
                "invalid_span_id": state.metrics.store.invalid_count("invalid_span_id"),
            },
            "tracesCreated": counters.traces_created,
            "tracesEvicted": counters.traces_evicted,
            "tracesAbandoned": counters.traces_abandoned,
        },
        "clients": clients,
        "live": {
            "subscribers": state.live.subscribers(),
            "droppedClients": state.live.dropped_clients.load(Ordering::Relaxed),
        },
        "otlp": {
            "spansAccepted": state.metrics.otlp.spans_accepted.get(),
            "spansRejected": state.metrics.otlp.spans_rejected.get(),
            "requestsRefused": state.metrics.otlp.requests_refused.get(),
            "forwardedSpans": state.metrics.export.forwarded_spans.get(),
            "forwardDroppedSpans": state.metrics.export.forward_dropped_spans.get(),
        },
        "persistence": state.persist.get().map(|p| {
            let s = p.status();
            json!({
                "state": if s.degraded.is_some() { "degraded" } else { "ok" },
                "batchesWritten": s.batches_written,
                "batchesDropped": s.batches_dropped,
                "pendingBatches": s.pending,
                "writeFailures": s.write_failures,
                "tracesOnDisk": s.traces_on_disk,
                "diskBytes": s.disk_bytes,
                "exportAckedNs": s.export_acked_ns,
            })
        }),
        "taskRestarts": state.metrics.task_restarts.get(),
    }))
}

/// Ready once listening (it is, if this answers), with the exporter's state.
pub async fn readyz(State(state): State<Arc<AgentState>>) -> Json<Value> {
    let store = state.store.read();
    let exporter = match store.exporter() {
        None => json!({"state": "off"}),
        Some(exporter) => json!({
            "state": exporter.queue().state().as_str(),
            "queuedSpans": exporter.queue().len(),
            "ackedThroughNs": exporter.queue().acked_through(),
            "protocol": format!("{:?}", state.config.export.protocol),
        }),
    };
    let persistence = match state.persist.get() {
        None => json!({"state": "off"}),
        Some(p) => {
            let s = p.status();
            json!({
                "state": if s.degraded.is_some() { "degraded" } else { "ok" },
                "reason": s.degraded,
                "note": s.note,
                "dataDir": p.dir(),
                "pendingBatches": s.pending,
                "batchesDropped": s.batches_dropped,
            })
        }
    };
    let degraded = persistence["state"] == "degraded";
    Json(json!({
        "ready": true,
        "status": if degraded { "degraded" } else { "ok" },
        "persistence": persistence,
        "socket": state.config.socket_path,
        "exporter": exporter,
        "otlpReceivers": {
            "http": format!("{}/v1/traces", state.config.http_addr),
            "grpc": state.otlp_grpc.get(),
        },
    }))
}
