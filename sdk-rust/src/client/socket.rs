//! Where the agent's socket lives, and the ownership rules both sides enforce: the default path
//! is inside a private per-user directory, and a client never talks to a socket (or through a
//! directory) that another user could have planted.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the socket inside its directory.
pub const SOCKET_FILE: &str = "flowscope.sock";

/// The effective user id of this process.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The default socket directory: `$XDG_RUNTIME_DIR/flowscope`, else `/tmp/flowscope-<uid>`.
pub fn default_socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("flowscope"),
        _ => PathBuf::from(format!("/tmp/flowscope-{}", current_uid())),
    }
}

/// The default socket path: [`default_socket_dir`]`/flowscope.sock`.
pub fn default_socket_path() -> PathBuf {
    default_socket_dir().join(SOCKET_FILE)
}

/// A socket or directory that must not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// Owned by another user.
    #[error("{path} is owned by uid {owner}, not by this process's uid {uid}; refusing to use it")]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// A directory other users may write into (without the sticky bit).
    #[error("{path} is writable by other users (mode {mode:o}); refusing to use it")]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path exists but is not what it should be.
    #[error("{path} is not a {expected}")]
    WrongType {
        /// The path.
        path: PathBuf,
        /// What was expected.
        expected: &'static str,
    },
    /// The file system said no.
    #[error("cannot inspect {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OwnershipError + '_ {
    move |source| OwnershipError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Owners a path may have: this uid, or root (system directories such as `/tmp`).
fn trusted_owner(owner: u32, uid: u32) -> bool {
    owner == uid || owner == 0
}

/// Checks the socket a client is about to connect to: the socket must belong to this uid, and
/// its directory to this uid or root, without being writable by others unless sticky (`/tmp`).
/// A missing socket is not an error here (the connect reports it).
pub fn check_socket(path: &Path) -> Result<(), OwnershipError> {
    let uid = current_uid();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let meta = std::fs::metadata(dir).map_err(io_error(dir))?;
        check_directory(dir, &meta, uid)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(OwnershipError::WrongType {
                    path: path.to_owned(),
                    expected: "socket",
                });
            }
            if meta.uid() != uid {
                return Err(OwnershipError::ForeignOwner {
                    path: path.to_owned(),
                    owner: meta.uid(),
                    uid,
                });
            }
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(path)(err)),
    }
}

/// Checks a directory a socket lives in: owned by this uid or root, and not writable by others
/// unless sticky.
pub fn check_dir(dir: &Path) -> Result<(), OwnershipError> {
    let meta = std::fs::metadata(dir).map_err(io_error(dir))?;
    check_directory(dir, &meta, current_uid())
}

fn check_directory(dir: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), OwnershipError> {
    if !meta.is_dir() {
        return Err(OwnershipError::WrongType {
            path: dir.to_owned(),
            expected: "directory",
        });
    }
    if !trusted_owner(meta.uid(), uid) {
        return Err(OwnershipError::ForeignOwner {
            path: dir.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(OwnershipError::OpenDirectory {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Creates (mode 0700) or verifies the agent's socket directory. An existing directory must
/// belong to this uid; the default per-user directory is also forced to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), OwnershipError> {
    let uid = current_uid();
    match std::fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))?;
            let meta = std::fs::symlink_metadata(dir).map_err(io_error(dir))?;
            check_directory(dir, &meta, uid)
        }
        Err(err) => Err(io_error(dir)(err)),
        Ok(meta) if meta.file_type().is_symlink() => Err(OwnershipError::WrongType {
            path: dir.to_owned(),
            expected: "directory (it is a symbolic link)",
        }),
        Ok(meta) => check_directory(dir, &meta, uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_per_user() {
        let path = default_socket_path();
        assert!(path.ends_with("flowscope.sock"));
        let dir = path.parent().unwrap().to_string_lossy().into_owned();
        assert!(
            dir.ends_with("/flowscope") || dir.ends_with(&format!("flowscope-{}", current_uid()))
        );
    }

    #[test]
    fn private_dir_is_created_0700_and_open_dirs_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            ensure_private_dir(&dir),
            Err(OwnershipError::OpenDirectory { .. })
        ));
        // The socket check refuses a world-writable, non-sticky directory too.
        assert!(check_socket(&dir.join(SOCKET_FILE)).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_socket(&dir.join(SOCKET_FILE)).is_ok());
    }

    #[test]
    fn a_regular_file_is_not_a_socket() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join(SOCKET_FILE);
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_socket(&file),
            Err(OwnershipError::WrongType { .. })
        ));
    }
}
