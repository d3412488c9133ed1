//! `flowscope`: the agent binary. Parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use flowscope_agent::config::{Cli, Command};
use flowscope_agent::{AgentConfig, demo, run_with};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.agent.log).unwrap_or_default())
        .with_writer(std::io::stderr)
        .init();
    let config = AgentConfig::try_from(&cli.agent)?;
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        let agent = run_with(config).await.context("starting the agent")?;
        println!(
            "flowscope listening socket={} http=http://{}",
            agent.socket_path.display(),
            agent.http_addr
        );
        if let Some(Command::Demo(args)) = cli.command {
            demo::spawn(agent.socket_path.clone(), args);
            println!(
                "flowscope demo running: open http://{}/api/traces",
                agent.http_addr
            );
        }
        wait_for_signal().await;
        agent.shutdown().await;
        Ok(())
    })
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
