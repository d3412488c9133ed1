//! Python bindings of the flowscope client: the private module `flowscope._native`.
//!
//! This crate only translates. Python keeps the current trace/step in a `contextvars.ContextVar`
//! holding a [`context::PySpan`]; each instrumentation call is one method call on
//! [`client::PyClient`] that builds one `flowscope::wire` event from that handle and hands it to
//! `flowscope::Client::emit` (O(1), never blocks). Framing, batching, the queue and the socket
//! writer all live in `sdk-rust`. The typed public API is the hand-written package in
//! `python/flowscope/`.

use pyo3::prelude::*;

mod client;
mod context;
mod convert;
mod error;
mod propagation;

/// Reseeds this thread's id generator. Called in a forked child (`os.register_at_fork`): a child
/// starts with a copy of its parent's, so it would otherwise draw the same trace/span ids.
#[pyfunction]
fn reseed_after_fork() {
    flowscope::reseed_ids();
}

/// Runs the bundled agent with command-line `argv` (program name first) until SIGINT/SIGTERM,
/// with the GIL released. The wheel's `flowscope` command calls it.
#[pyfunction]
fn run_agent(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    py.detach(move || flowscope_agent::cli::run(argv.into_iter().map(Into::into)))
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("{e:#}")))
}

/// The error HTTP middleware records for a 5xx response without an exception: (message, type,
/// code), by the SDK core's rule.
#[pyfunction]
fn http_status_error(status: u16) -> (String, String, String) {
    let error = flowscope::ErrorInfo::http_status(status);
    (
        error.message,
        error.error_type.unwrap_or_default(),
        error.code.unwrap_or_default(),
    )
}

/// The module `flowscope._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::PyClient>()?;
    m.add_class::<context::PySpan>()?;
    m.add_function(wrap_pyfunction!(reseed_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(run_agent, m)?)?;
    m.add_function(wrap_pyfunction!(http_status_error, m)?)?;
    propagation::register(m)?;
    m.add("SDK_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
