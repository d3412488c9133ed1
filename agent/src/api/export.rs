//! `GET /api/traces/{id}/export?format=json|csv|otlp`: one trace as a download. `otlp` is the
//! OTLP/JSON encoding of exactly the spans the exporter sends (hex ids, enum ints, string int64s).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::error::ApiError;
use super::{params, shapes};
use crate::AgentState;
use crate::export::mapping;
use crate::trace::Trace;

/// Exports one trace.
pub async fn export(
    State(state): State<Arc<AgentState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut format = "json".to_owned();
    for (name, value) in params::pairs(raw.as_deref())? {
        match name.as_str() {
            "format" if matches!(value.as_str(), "json" | "csv" | "otlp") => format = value,
            "format" => {
                return Err(ApiError::bad_param(
                    "format",
                    format!("expected json, csv or otlp, got `{value}`"),
                ));
            }
            _ => {
                return Err(ApiError::bad_param(
                    &name,
                    "unknown parameter; expected format",
                ));
            }
        }
    }
    let disposition = format!(
        "attachment; filename=\"trace-{id}.{}\"",
        if format == "csv" { "csv" } else { "json" }
    );
    params::render_trace(&state, &id, "trace", move |v| {
        let trace = &v.trace;
        let headers = [(header::CONTENT_DISPOSITION, disposition)];
        Ok(match format.as_str() {
            "otlp" => {
                // One ResourceSpans per service the trace crossed, in segment order.
                let mut by_origin: Vec<(&std::sync::Arc<crate::trace::Origin>, Vec<_>)> =
                    Vec::new();
                for (origin, span) in mapping::trace_spans_by_origin(trace, &v.links) {
                    match by_origin.iter_mut().find(|(o, _)| *o == origin) {
                        Some((_, spans)) => spans.push(span),
                        None => by_origin.push((origin, vec![span])),
                    }
                }
                let resource_spans = by_origin
                    .into_iter()
                    .flat_map(|(origin, spans)| {
                        mapping::request(mapping::resource(origin), spans).resource_spans
                    })
                    .collect();
                let request = ExportTraceServiceRequest { resource_spans };
                (headers, Json(request)).into_response()
            }
            "csv" => (
                headers,
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                csv(trace),
            )
                .into_response(),
            _ => (
                headers,
                Json(shapes::trace_full(trace, v.index, shapes::View::Full)),
            )
                .into_response(),
        })
    })
    .await
}

/// Spreadsheet formula injection: a cell starting with one of these is prefixed with `'`.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV cell: quoted when needed, and neutralised (OWASP) when a spreadsheet would read it
/// as a formula.
fn field(out: &mut String, value: &str) {
    let formula = value.starts_with(FORMULA_STARTS);
    if formula || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One row per step and per operation: where, what, when, how long, how it ended.
fn csv(trace: &Trace) -> String {
    let mut out = String::from("step_id,parent_id,row,name,status,start_ms,duration_ms,detail\n");
    for step in trace.steps_in_time_order() {
        let (start, duration) = shapes::step_timing(step, trace.start_ns);
        let fmt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let parent = step.parent.map(|p| p.to_string()).unwrap_or_default();
        let _ = write!(out, "{},{parent},step,", step.id);
        field(&mut out, &step.name);
        let detail = step
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("");
        let _ = write!(
            out,
            ",{},{},{},",
            step.status.as_str(),
            fmt(start),
            fmt(duration)
        );
        field(&mut out, detail);
        out.push('\n');
        for op in &step.ops {
            let name = format!(
                "{:?}.{:?} {}",
                op.kind,
                op.action,
                op.subject.as_deref().unwrap_or("")
            )
            .to_lowercase();
            let _ = write!(out, "{},{},op,", step.id, step.id);
            field(&mut out, name.trim_end());
            let status = if op.ok { "ok" } else { "failed" };
            let start = shapes::ms_f(op.start_ns.saturating_sub(trace.start_ns));
            let _ = write!(out, ",{status},{start},{},", shapes::ms_f(op.duration_ns));
            field(
                &mut out,
                op.detail.as_deref().or(op.error.as_deref()).unwrap_or(""),
            );
            out.push('\n');
        }
    }
    out
}
