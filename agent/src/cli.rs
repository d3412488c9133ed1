//! The command line, shared by the `flowscope` binary and the copies of the agent bundled in
//! the Python wheel and the npm package (their `flowscope` commands call [`run`]). This is the
//! binary's edge: errors are `anyhow` here and typed below.

use std::ffi::OsString;

use anyhow::Context;
use clap::Parser;

use crate::config::{Cli, Command};
use crate::{AgentConfig, demo, run_with};

/// Parses `args` (the program name first, as in `std::env::args_os`) and runs the agent until
/// SIGINT or SIGTERM. Like any command line, `--help`, `--version` and a usage error print and
/// end the process (exit code 0, or 2 for a usage error).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|err| err.exit());
    // A second initialisation (the agent embedded in a long-lived process) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.agent.log).unwrap_or_default())
        .with_writer(std::io::stderr)
        .try_init();
    let config = AgentConfig::try_from(&cli.agent)?;
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        let agent = run_with(config).await.context("starting the agent")?;
        announce(format_args!(
            "flowscope listening socket={} http=http://{}",
            agent.socket_path.display(),
            agent.http_addr
        ));
        announce(format_args!("flowscope UI: http://{}/", agent.http_addr));
        if let Some(Command::Demo(args)) = cli.command {
            demo::spawn(agent.socket_path.clone(), args);
            announce(format_args!(
                "flowscope demo running: open http://{}/api/traces",
                agent.http_addr
            ));
        }
        wait_for_signal().await;
        agent.shutdown().await;
        Ok(())
    })
}

/// Prints a line on stdout; a closed stdout (the reader went away) must not stop the agent, so
/// write errors are ignored rather than panicking as `println!` would.
fn announce(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Lifts the soft open-files limit to the hard one, so connection caps, not the default 1024
/// descriptors, bound what the agent can hold open.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%err, "cannot raise the open-files limit");
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
