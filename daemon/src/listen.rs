//! Sockets: binding the Unix socket (mode 0600, stale files removed, a live
//! daemon refused) and the optional loopback TCP listener, and [`Stream`],
//! one type over both kinds of connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::DaemonError;

/// A client connection over either transport.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        };
    }

    /// Stops reading: a blocked read returns end-of-file once what is
    /// already received has been read.
    pub fn shutdown_read(&self) {
        self.shutdown(Shutdown::Read);
    }

    /// Closes both directions: blocked reads and writes return.
    pub fn shutdown_both(&self) {
        self.shutdown(Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// The bound Unix socket, and which file it is (so that shutdown removes
/// this daemon's socket and never a successor's).
pub(crate) struct UnixSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    identity: (u64, u64),
    /// True if a stale socket file was removed before binding.
    pub removed_stale: bool,
}

impl UnixSocket {
    /// Binds `path` with mode 0600. A socket file nobody listens on is
    /// removed first; a live one, or a file that is not a socket, is an error.
    pub fn bind(path: &Path) -> Result<UnixSocket, DaemonError> {
        let mut removed_stale = false;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(DaemonError::NotASocket {
                    path: path.to_owned(),
                });
            }
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(DaemonError::AlreadyRunning {
                        path: path.to_owned(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| DaemonError::Bind {
                        what: path.display().to_string(),
                        source: e,
                    })?;
                    removed_stale = true;
                }
                Err(e) => {
                    return Err(DaemonError::Bind {
                        what: path.display().to_string(),
                        source: e,
                    })
                }
            }
        }
        let bind_err = |e| DaemonError::Bind {
            what: path.display().to_string(),
            source: e,
        };
        // The socket is created 0600 (no window with a wider mode): umask is
        // process-wide, so this runs before any worker or thread starts.
        // SAFETY: umask has no memory-safety preconditions.
        let old = unsafe { libc::umask(0o177) };
        let listener = UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = listener.map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let meta = std::fs::metadata(path).map_err(bind_err)?;
        Ok(UnixSocket {
            listener,
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
            removed_stale,
        })
    }
}

impl Drop for UnixSocket {
    /// Removes the socket file if it is still the one this daemon bound.
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds the TCP listener; only loopback addresses are allowed.
pub(crate) fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    if !addr.ip().is_loopback() {
        return Err(DaemonError::NotLoopback { addr });
    }
    let bind_err = |e| DaemonError::Bind {
        what: addr.to_string(),
        source: e,
    };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// Accepts one pending connection (listeners are non-blocking, so
/// `WouldBlock` means none is pending).
pub(crate) fn accept_unix(l: &UnixListener) -> io::Result<Stream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(false)?;
    Ok(Stream::Unix(s))
}

/// Accepts one pending TCP connection.
pub(crate) fn accept_tcp(l: &TcpListener) -> io::Result<Stream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(false)?;
    let _ = s.set_nodelay(true);
    Ok(Stream::Tcp(s))
}
