//! The collector connection both export paths send through: OTLP/gRPC (tonic, with the
//! official generated client) or OTLP/HTTP with protobuf bodies (reqwest), configured as the
//! OpenTelemetry SDKs are (`OTEL_EXPORTER_OTLP_{HEADERS,TIMEOUT,COMPRESSION}` and their
//! `_TRACES_` forms, which win).

use std::borrow::Cow;
use std::io::Write as _;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::{ExportConfig, OtlpProtocol};

/// Time one call may take unless `OTEL_EXPORTER_OTLP_TIMEOUT` says otherwise (the SDKs' 10 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a call ended when the collector answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (spans the collector rejected inside an accepted request are counted in
    /// `rejected`, per OTLP partial success).
    Accepted {
        /// Spans it said it rejected.
        rejected: u64,
    },
    /// Refused for good (OTLP's non-retryable answers: HTTP statuses other than 429, 502, 503
    /// and 504; gRPC codes such as `InvalidArgument` or `PermissionDenied`): sending it again
    /// would get the same answer.
    Refused(String),
}

impl Delivery {
    /// How many of the `spans` sent the collector did not keep: all of a refused request, the
    /// rejected ones of an accepted one.
    pub fn dropped(&self, spans: u64) -> u64 {
        match self {
            Delivery::Accepted { rejected } => (*rejected).min(spans),
            Delivery::Refused(_) => spans,
        }
    }
}

/// The call failed in a way a retry may fix (no connection, timeout, HTTP 429/502/503/504,
/// gRPC `Unavailable` and the other retryable codes).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retryable(pub String);

/// The collector connection could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The endpoint is not a usable URI.
    #[error("invalid OTLP endpoint {0:?}")]
    Endpoint(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Where requests go.
pub enum Upstream {
    /// OTLP/HTTP, protobuf bodies.
    Http {
        /// Client (carries the timeout).
        client: reqwest::Client,
        /// Full traces URL.
        url: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Gzip the bodies.
        gzip: bool,
    },
    /// OTLP/gRPC.
    Grpc {
        /// Generated client over a lazily connected channel.
        client: TraceServiceClient<tonic::transport::Channel>,
        /// Extra metadata.
        headers: Vec<(String, String)>,
    },
}

/// The first of the `_TRACES_` form and the general form of an `OTEL_EXPORTER_OTLP_*` variable.
fn otlp_env(name: &str) -> Option<String> {
    std::env::var(format!("OTEL_EXPORTER_OTLP_TRACES_{name}"))
        .or_else(|_| std::env::var(format!("OTEL_EXPORTER_OTLP_{name}")))
        .ok()
}

/// `k=v` pairs, comma-separated, values percent-decoded (as the OpenTelemetry SDKs read
/// `OTEL_EXPORTER_OTLP_HEADERS`).
fn parse_headers(raw: &str) -> Vec<(String, String)> {
    raw.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value: String = serde_urlencoded::from_str::<Vec<(String, String)>>(&format!(
                "v={}",
                value.trim().replace('+', "%2B")
            ))
            .ok()?
            .pop()?
            .1;
            Some((key.trim().to_ascii_lowercase(), value))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// `OTEL_EXPORTER_OTLP_TIMEOUT` is milliseconds; unreadable or zero keeps the default.
fn parse_timeout(raw: Option<&str>) -> Duration {
    raw.and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip`, or none (anything else is warned about once).
fn parse_gzip(raw: Option<&str>) -> bool {
    match raw.map(str::trim) {
        Some("gzip") => true,
        None | Some("" | "none") => false,
        Some(other) => {
            tracing::warn!(
                compression = other,
                "unknown OTLP compression; sending uncompressed"
            );
            false
        }
    }
}

impl Upstream {
    /// The connection `config` names. Must be called inside the Tokio runtime that sends.
    pub fn new(config: &ExportConfig) -> Result<Self, UpstreamError> {
        let headers = otlp_env("HEADERS")
            .map(|raw| parse_headers(&raw))
            .unwrap_or_default();
        let timeout = parse_timeout(otlp_env("TIMEOUT").as_deref());
        let gzip = parse_gzip(otlp_env("COMPRESSION").as_deref());
        match config.protocol {
            OtlpProtocol::HttpProtobuf => {
                let url = match (&config.traces_endpoint, &config.endpoint) {
                    (Some(full), _) => full.clone(),
                    (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
                    (None, None) => "http://localhost:4318/v1/traces".to_owned(),
                };
                if reqwest::Url::parse(&url).is_err() {
                    return Err(UpstreamError::Endpoint(url));
                }
                let client = reqwest::Client::builder().timeout(timeout).build()?;
                Ok(Upstream::Http {
                    client,
                    url,
                    headers,
                    gzip,
                })
            }
            OtlpProtocol::Grpc => {
                let url = config
                    .traces_endpoint
                    .clone()
                    .or_else(|| config.endpoint.clone())
                    .unwrap_or_else(|| "http://localhost:4317".to_owned());
                let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .map_err(|_| UpstreamError::Endpoint(url))?
                    .timeout(timeout)
                    .connect_timeout(timeout);
                let mut client = TraceServiceClient::new(endpoint.connect_lazy());
                if gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Ok(Upstream::Grpc { client, headers })
            }
        }
    }

    /// Sends one request (borrowed requests are copied only where the transport needs its own).
    pub async fn send(
        &mut self,
        request: Cow<'_, ExportTraceServiceRequest>,
    ) -> Result<Delivery, Retryable> {
        match self {
            Upstream::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let mut body = request.encode_to_vec();
                let mut call = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf");
                if *gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    body = encoder
                        .write_all(&body)
                        .and_then(|()| encoder.finish())
                        .map_err(|e| Retryable(e.to_string()))?;
                    call = call.header("content-encoding", "gzip");
                }
                for (k, v) in headers.iter() {
                    call = call.header(k.as_str(), v.as_str());
                }
                let response = call
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Retryable(e.to_string()))?;
                let status = response.status();
                if status.is_success() {
                    let body = response.bytes().await.unwrap_or_default();
                    let response = ExportTraceServiceResponse::decode(body).unwrap_or_default();
                    Ok(accepted(response))
                } else if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
                    // OTLP/HTTP's retryable answers; every other 4xx and 5xx is final.
                    Err(Retryable(format!("collector answered {status}")))
                } else {
                    Ok(Delivery::Refused(format!("collector answered {status}")))
                }
            }
            Upstream::Grpc { client, headers } => {
                let mut call = tonic::Request::new(request.into_owned());
                for (k, v) in headers.iter() {
                    if let (Ok(key), Ok(value)) = (
                        k.parse::<tonic::metadata::MetadataKey<_>>(),
                        v.parse::<tonic::metadata::MetadataValue<_>>(),
                    ) {
                        call.metadata_mut().insert(key, value);
                    }
                }
                match client.export(call).await {
                    Ok(response) => Ok(accepted(response.into_inner())),
                    // OTLP/gRPC's retryable codes (plus `Unknown`, which tonic uses for some
                    // transport failures); every other code is final.
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Cancelled
                                | tonic::Code::DeadlineExceeded
                                | tonic::Code::Aborted
                                | tonic::Code::OutOfRange
                                | tonic::Code::Unavailable
                                | tonic::Code::DataLoss
                                | tonic::Code::ResourceExhausted
                                | tonic::Code::Unknown
                        ) =>
                    {
                        Err(Retryable(status.to_string()))
                    }
                    Err(status) => Ok(Delivery::Refused(status.to_string())),
                }
            }
        }
    }
}

/// An accepted request, with the spans the collector's answer says it rejected (OTLP partial
/// success; an empty or unreadable answer is full success).
fn accepted(response: ExportTraceServiceResponse) -> Delivery {
    let rejected = response
        .partial_success
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
    Delivery::Accepted { rejected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_pairs_with_percent_decoded_values() {
        assert_eq!(
            parse_headers("Authorization=Bearer%20t0k, x-tenant = a+b,=x,bad"),
            vec![
                ("authorization".to_owned(), "Bearer t0k".to_owned()),
                ("x-tenant".to_owned(), "a+b".to_owned()),
            ]
        );
    }

    #[test]
    fn timeout_is_milliseconds_and_compression_gzip_or_none() {
        assert_eq!(parse_timeout(Some("2500")), Duration::from_millis(2500));
        assert_eq!(parse_timeout(Some("0")), DEFAULT_TIMEOUT);
        assert_eq!(parse_timeout(Some("soon")), DEFAULT_TIMEOUT);
        assert_eq!(parse_timeout(None), DEFAULT_TIMEOUT);
        assert!(parse_gzip(Some("gzip")));
        assert!(!parse_gzip(Some("none")));
        assert!(!parse_gzip(Some("zstd")));
        assert!(!parse_gzip(None));
    }

    #[test]
    fn partial_success_counts_rejected_spans() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        let decoded = ExportTraceServiceResponse::decode(&body[..]).unwrap();
        assert_eq!(accepted(decoded), Delivery::Accepted { rejected: 3 });
        let empty = ExportTraceServiceResponse::decode(&[][..]).unwrap();
        assert_eq!(
            accepted(empty),
            Delivery::Accepted { rejected: 0 },
            "an empty body is full success"
        );
        assert_eq!(Delivery::Accepted { rejected: 3 }.dropped(2), 2);
        assert_eq!(Delivery::Accepted { rejected: 3 }.dropped(10), 3);
        assert_eq!(Delivery::Refused("400".into()).dropped(10), 10);
    }
}
