//! The bundled agent: `runAgent(argv)` runs it in this process (the package's `flowscope` bin),
//! so `npx flowscope` needs no Rust toolchain.

use napi_derive::napi;

/// Runs the agent with command-line `argv` (program name first) until SIGINT/SIGTERM. Blocks the
/// calling thread: meant for the `flowscope` bin, not for an application's event loop.
#[napi]
pub fn run_agent(argv: Vec<String>) -> napi::Result<()> {
    flowscope_agent::cli::run(argv.into_iter().map(Into::into))
        .map_err(|e| napi::Error::from_reason(format!("{e:#}")))
}
