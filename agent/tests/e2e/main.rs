//! End-to-end tests: a real `flowscope` process, the real Rust SDK over the real socket, real HTTP.

mod api_errors;
mod async_rust;
mod bad_input;
mod burst;
mod correlation;
mod filters;
mod hardening;
mod insights;
mod lifecycle;
mod live;
mod metrics;
mod otlp;
mod otlp_ingest;
mod persist;
mod reconnect;
mod registration;
mod socket;
mod support;
