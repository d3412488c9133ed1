//! Unix-socket ingest: binds the socket (0600, stale files replaced, a live agent refused),
//! accepts connections, and hands each to `connection::serve`; one thread (`store`) stores
//! what they decode.

mod connection;
mod store;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::AgentState;

/// The socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another agent answers on this socket.
    #[error("another flowscope agent is already listening on {0}")]
    InUse(PathBuf),
    /// The path exists and is not a socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The socket directory belongs to another user or is open to others.
    #[error("unsafe socket directory: {0}")]
    Unsafe(#[from] flowscope::socket::OwnershipError),
    /// OS error.
    #[error("cannot bind {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// Binds the ingest socket at `path`.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir == flowscope::socket::default_socket_dir() || !dir.exists() {
            flowscope::socket::ensure_private_dir(dir)?;
        } else {
            // A directory of the user's choosing: it must not let others swap the socket.
            flowscope::socket::check_dir(dir)?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_owned()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
        tracing::info!(path = %path.display(), "replaced stale socket file");
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Accepts connections until `shutdown` flips, then removes the socket file.
pub async fn serve(
    listener: Arc<UnixListener>,
    path: PathBuf,
    state: Arc<AgentState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.config.limits.max_connections,
    ));
    if *shutdown.borrow() {
        return;
    }
    // Nothing can be stored without it; a failure to start one (the OS refused a thread) is a
    // panic the supervisor counts and retries.
    let (batches, storing_ended) =
        store::start(Arc::clone(&state)).expect("start the storing thread");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    match Arc::clone(&slots).try_acquire_owned() {
                        Ok(slot) => {
                            let batches = batches.clone();
                            let stop = connection::Stop::new(shutdown.clone());
                            tokio::spawn(async move {
                                connection::serve(stream, state, batches, stop).await;
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            tokio::spawn(connection::refuse(stream, state));
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    // Connections read on until their clients have sent nothing for a moment, then end; once
    // the last has, the storing thread has stored everything and ends too. Waiting for that
    // (within a bound: a client may never stop sending) lets the journal commit that follows
    // hold all of it.
    drop(batches);
    if tokio::time::timeout(DRAIN_LIMIT, storing_ended)
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still sending {DRAIN_LIMIT:?} after the stop; what they send next is not kept"
        );
    }
}

/// How long a stopping agent waits for its connections to drain.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);
