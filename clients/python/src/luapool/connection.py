"""One MessagePack-RPC connection to the daemon (docs/protocol.md, "Framing").

Requests go out as ``[0, msgid, method, params]`` as soon as they are made,
from any thread (pipelining); a reader thread settles the
:class:`concurrent.futures.Future` of each response ``[1, msgid, error,
result]`` by its msgid, in whatever order they come, and hands each
notification ``[2, "log", [session, msgid, line]]`` to the call it belongs to.

When the connection ends, for any reason, every call still waiting fails
with :class:`ConnectionClosedError`, and so does every later call.
"""

from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from .codec import MAX_FRAME, Frames, encode
from .errors import (
    ConnectFailedError,
    ConnectionClosedError,
    DecodeError,
    InvalidValueError,
    LuapoolError,
    from_wire,
)

_MAX_MSGID = 0xFFFF_FFFF
_log = logging.getLogger("luapool")

LogSink = Callable[[str], None]


class _Pending(NamedTuple):
    future: "Future[Any]"
    session: Optional[int]
    on_log: Optional[LogSink]


def open_socket(path: Optional[str], host: Optional[str], port: Optional[int]) -> socket.socket:
    """Connects to the daemon; raises :class:`ConnectFailedError` with the reason."""
    where = path if path is not None else f"{host}:{port}"
    try:
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except FileNotFoundError:
        why = "no such socket (is `luapool serve --socket PATH` running?)"
    except ConnectionRefusedError:
        why = "nothing is listening there (is the daemon running?)"
    except PermissionError:
        why = "permission denied (the socket is its owner's only)"
    except OSError as e:
        why = e.strerror or str(e)
    raise ConnectFailedError(f"cannot connect to the luapool daemon at {where}: {why}")


class Connection:
    """A connection; thread-safe. Use :func:`luapool.connect`."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _pending, _last_id, _ended
        self._pending: Dict[int, _Pending] = {}
        self._last_id = 0
        self._ended: Optional[LuapoolError] = None
        self._cause = ""
        self._on_end: List[Callable[[LuapoolError], None]] = []
        self._reader = threading.Thread(target=self._read, name="luapool-reader", daemon=True)
        self._reader.start()

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._ended is not None

    def on_end(self, callback: Callable[[LuapoolError], None]) -> None:
        """Calls ``callback(error)`` (from the reader thread) when the connection ends."""
        self._on_end.append(callback)

    def submit(self, method: str, params: List[Any], session: Optional[int] = None,
               on_log: Optional[LogSink] = None) -> "Future[Any]":
        """Sends ``method`` with ``params`` (checked already: see ``prepare``)
        and returns the future of its result. ``on_log`` gets the ``print``
        lines of a compute of ``session``."""
        future: "Future[Any]" = Future()
        with self._lock:
            if self._ended is not None:
                future.set_exception(self._ended)
                return future
            msgid = self._allocate()
            try:
                data = encode([0, msgid, method, params])
            except (TypeError, ValueError, OverflowError) as e:
                future.set_exception(InvalidValueError(f"cannot encode {method}: {e}"))
                return future
            if len(data) > MAX_FRAME:
                future.set_exception(InvalidValueError(
                    f"{method} would be a {len(data)}-byte request; the daemon takes at most {MAX_FRAME}"))
                return future
            self._pending[msgid] = _Pending(future, session, on_log)
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as e:
            self._cause = self._cause or (e.strerror or str(e))
            with self._lock:
                self._pending.pop(msgid, None)
            # The reader sees the end too and fails the other calls.
            self._shutdown()
            future.set_exception(ConnectionClosedError(f"the connection to the luapool daemon closed ({self._cause})"))
        return future

    def wait(self, future: "Future[Any]") -> Any:
        """The result of ``future`` (raises its error)."""
        if threading.current_thread() is self._reader and not future.done():
            raise RuntimeError("a luapool call cannot wait inside an on_log callback (it runs on the reader thread)")
        return future.result()

    def close(self) -> None:
        """Closes the connection; calls still waiting fail with ConnectionClosedError."""
        self._end(None, "the client closed it")
        self._shutdown()
        if threading.current_thread() is not self._reader:
            self._reader.join()
        self._sock.close()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _allocate(self) -> int:
        """A msgid not in use (unsigned 32-bit, wrapping). Holds _lock."""
        while True:
            self._last_id = 1 if self._last_id >= _MAX_MSGID else self._last_id + 1
            if self._last_id not in self._pending:
                return self._last_id

    def _read(self) -> None:
        frames = Frames()
        error: Optional[LuapoolError] = None
        try:
            while error is None:
                try:
                    data = self._sock.recv(1 << 20)
                except OSError as e:
                    self._cause = self._cause or (e.strerror or str(e))
                    break
                if not data:
                    break
                try:
                    for message, bad in frames.feed(data):
                        error = self._dispatch(message, bad)
                        if error is not None:
                            break
                except DecodeError as e:
                    error = e
        finally:
            self._end(error, None)
            if error is not None:
                self._shutdown()

    def _dispatch(self, message: Any, bad: Optional[DecodeError]) -> Optional[LuapoolError]:
        """Settles the call a message is for; returns an error that ends the connection."""
        if not isinstance(message, list):
            return None
        if len(message) == 4 and message[0] == 1:
            _, msgid, error, result = message
            if msgid is None:
                # The daemon could not read our stream and closes the connection.
                return from_wire(error)
            with self._lock:
                p = self._pending.pop(msgid, None) if isinstance(msgid, int) else None
            if p is None:
                return None
            if bad is not None:
                p.future.set_exception(bad)
            elif error is not None:
                p.future.set_exception(from_wire(error))
            else:
                p.future.set_result(result)
        elif len(message) == 3 and message[0] == 2 and message[1] == "log" and isinstance(message[2], list):
            args = message[2]
            if len(args) != 3 or not isinstance(args[2], str):
                return None
            session, msgid, line = args
            with self._lock:
                p = self._pending.get(msgid) if isinstance(msgid, int) else None
            if p is not None and p.on_log is not None and p.session == session:
                try:
                    p.on_log(line)
                except Exception:  # a callback's bug must not stop the reader
                    _log.exception("an on_log callback raised")
        return None

    def _end(self, error: Optional[LuapoolError], cause: Optional[str]) -> None:
        with self._lock:
            if self._ended is not None:
                return
            if cause:
                self._cause = cause
            waiting = len(self._pending)
            if error is None:
                note = f" ({self._cause})" if self._cause else ""
                if waiting:
                    note += f"; {waiting} call{' was' if waiting == 1 else 's were'} waiting for a reply"
                error = ConnectionClosedError(f"the connection to the luapool daemon closed{note}")
            self._ended = error
            calls = list(self._pending.values())
            self._pending.clear()
        for p in calls:
            p.future.set_exception(error)
        for callback in self._on_end:
            callback(error)

