//! Sockets: binding the Unix socket (mode 0600, stale files removed, a live
//! daemon refused) and the optional loopback TCP listener, and [`Stream`],
//! one type over both kinds of connection (non-blocking; polled by the
//! daemon's event loop).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
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
    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        };
    }

    /// Closes both directions: the client sees end of file, and the
    /// daemon's poll sees the connection hang up.
    pub fn shutdown_both(&self) {
        self.shutdown(Shutdown::Both);
    }

    /// Reads what is there (non-blocking).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }

    /// Writes what fits (non-blocking).
    pub fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write_vectored(bufs),
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
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

/// Accepts one pending connection, non-blocking like the listener
/// (`WouldBlock` means none is pending).
pub(crate) fn accept_unix(l: &UnixListener) -> io::Result<Stream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(true)?;
    Ok(Stream::Unix(s))
}

/// Accepts one pending TCP connection.
pub(crate) fn accept_tcp(l: &TcpListener) -> io::Result<Stream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(true)?;
    let _ = s.set_nodelay(true);
    Ok(Stream::Tcp(s))
}
