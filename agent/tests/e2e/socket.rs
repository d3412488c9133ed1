//! The ingest socket: private mode, stale files replaced, a live agent never displaced.

use std::os::unix::fs::PermissionsExt;

use crate::support::Agent;

#[test]
fn socket_is_private_and_a_live_agent_is_not_displaced() {
    let agent = Agent::start(&[]);
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let err = Agent::try_start_at(&agent.socket, &[])
        .err()
        .expect("second agent must refuse");
    assert!(err.contains("already listening"), "stderr: {err}");
    assert_eq!(agent.get_ok("/healthz")["status"], "ok");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let agent = Agent::start_at(&path, &[]);
    assert_eq!(agent.get_ok("/readyz")["ready"], true);
}

#[test]
fn a_regular_file_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, "keep me").unwrap();
    let err = Agent::try_start_at(&path, &[]).err().expect("must refuse");
    assert!(err.contains("not a socket"), "stderr: {err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}
