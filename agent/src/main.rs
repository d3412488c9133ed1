//! `flowscope`: the agent binary; everything is in [`flowscope_agent::cli`].

fn main() -> anyhow::Result<()> {
    flowscope_agent::cli::run(std::env::args_os())
}
