//! Every request passes here first: the Host allow-list (DNS rebinding), the Origin check
//! (cross-site pages, WebSocket hijacking), CORS for configured origins, the bearer token, and the
//! security headers every response carries.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::AgentState;
use crate::config::Access;

/// The Content-Security-Policy of every response: scripts and connections only to this origin,
/// no framing, no plugins. Images may be remote because the UI loads one only on a click.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: https: http:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'; object-src 'none'";

/// The query parameter that carries the token where headers cannot (EventSource, WebSocket).
pub const TOKEN_PARAM: &str = "token";

/// Splits a Host header value into the host name (lowercase, no brackets) and drops the port.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        value.rsplit_once(':').map_or(value, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                value
            }
        })
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the agent answers to `host` (a Host header's name).
pub fn host_allowed(host: &str, access: &Access, bound: SocketAddr) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && (ip.is_loopback() || (ip == bound.ip() && !ip.is_unspecified()))
    {
        return true;
    }
    access
        .allowed_hosts
        .iter()
        .any(|allowed| allowed == "*" || allowed == host)
}

/// Whether `origin` (an Origin header) is this server itself, as named by `host` (the Host
/// header, with its port).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

fn cors_allowed(origin: &str, access: &Access) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    access
        .cors_origins
        .iter()
        .any(|allowed| allowed == "*" || *allowed == origin)
}

/// Paths that need the token when one is set: data, streams and metrics. The UI's static files
/// and the health probes stay open (they carry no trace data).
fn needs_token(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/motia/")
        || path.starts_with("/v1/")
        || path == "/metrics"
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, b) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ b);
    }
    diff == 0
}

fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .find(|(name, _)| name == TOKEN_PARAM)
        .map(|(_, value)| value)
}

/// The token of an `Authorization: Bearer <token>` value (any case of `Bearer`); also the gRPC
/// receiver's `authorization` metadata.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn authorized(request: &Request, token: &str) -> bool {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
    let path = request.uri().path();
    let given = bearer.or_else(|| {
        matches!(path, "/api/stream" | "/api/ws")
            .then(|| query_token(request.uri().query()))
            .flatten()
    });
    given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes()))
}

fn set_security_headers(headers: &mut HeaderMap) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn set_cors_headers(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, content-encoding"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

/// The middleware.
pub async fn guard(State(state): State<Arc<AgentState>>, request: Request, next: Next) -> Response {
    let access = &state.config.access;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refuse = |error: ApiError| {
        let mut response = error.into_response();
        set_security_headers(response.headers_mut());
        response
    };
    if let Some(host) = &host {
        let name = host_name(host);
        if !host_allowed(&name, access, state.config.http_addr) {
            return refuse(ApiError::HostNotAllowed(name));
        }
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut cors = false;
    if let Some(origin) = &origin {
        let text = origin.to_str().unwrap_or("");
        cors = cors_allowed(text, access);
        if !cors && !same_origin(text, host.as_deref()) {
            return refuse(ApiError::OriginNotAllowed(text.to_owned()));
        }
    }
    if request.method() == Method::OPTIONS && cors {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(origin) = &origin {
            set_cors_headers(response.headers_mut(), origin);
        }
        set_security_headers(response.headers_mut());
        return response;
    }
    if let Some(token) = &access.token
        && needs_token(request.uri().path())
        && !authorized(&request, token)
    {
        let mut response = refuse(ApiError::Unauthorized);
        if let (true, Some(origin)) = (cors, &origin) {
            set_cors_headers(response.headers_mut(), origin);
        }
        return response;
    }
    let mut response = next.run(request).await;
    set_security_headers(response.headers_mut());
    if let (true, Some(origin)) = (cors, &origin) {
        set_cors_headers(response.headers_mut(), origin);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 4319))
    }

    #[test]
    fn loopback_names_pass_and_others_need_listing() {
        let mut access = Access::default();
        for ok in [
            "localhost:4319",
            "127.0.0.1:4319",
            "[::1]:4319",
            "app.localhost",
        ] {
            assert!(host_allowed(&host_name(ok), &access, bound()), "{ok}");
        }
        for bad in ["rebind.evil.example", "evil.example:4319", "10.0.0.1"] {
            assert!(!host_allowed(&host_name(bad), &access, bound()), "{bad}");
        }
        access.allowed_hosts.push("flowscope.internal".into());
        assert!(host_allowed(
            &host_name("FlowScope.Internal:80"),
            &access,
            bound()
        ));
    }

    #[test]
    fn same_origin_needs_the_exact_host_and_port() {
        assert!(same_origin("http://127.0.0.1:4319", Some("127.0.0.1:4319")));
        assert!(!same_origin(
            "http://127.0.0.1:9999",
            Some("127.0.0.1:4319")
        ));
        assert!(!same_origin("https://evil.example", Some("127.0.0.1:4319")));
        assert!(!same_origin("null", Some("127.0.0.1:4319")));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cretX", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
