//! The data directory's lock: `DIR/luapool.lock`, held with `flock` for as
//! long as the store is open, so a second daemon (or `luapool home …`) on
//! the same directory fails at start instead of writing beside the first.
//! The lock file holds the pid of its holder, for the error message; the
//! kernel releases the lock when the holder dies, even by SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::HomeStoreError;

/// The name of the lock file in the data directory.
pub const LOCK_FILE: &str = "luapool.lock";

/// A held lock on a data directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, or fails with [`HomeStoreError::InUse`].
    pub fn take(dir: &Path) -> Result<DirLock, HomeStoreError> {
        let path: PathBuf = dir.join(LOCK_FILE);
        let io = |source| HomeStoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock(2) on a descriptor we own; no memory is passed.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(HomeStoreError::InUse {
                    path: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(io(err));
        }
        // Ours now: say who holds it.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}
