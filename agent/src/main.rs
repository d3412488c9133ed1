//! `flowscope`: the agent binary; everything is in [`flowscope_agent::cli`].

/// mimalloc rather than glibc's malloc: ingest allocates and frees small strings and records per
/// event, and mimalloc's thread-local free lists take a fraction of the time (`benches/ingest.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    flowscope_agent::cli::run(std::env::args_os())
}
