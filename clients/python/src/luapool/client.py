"""The client and its sessions: the reference's methods in snake_case.

Each method is one request of docs/protocol.md ("Methods"); a new daemon
method is one small method here. Calls block until their reply; any number
may be in flight at once, from threads sharing one client or through
:meth:`Client.submit`, which returns a future.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from .codec import prepare
from .connection import Connection, LogSink, open_socket
from .errors import ConnectionClosedError, InvalidValueError


@dataclass
class ComputeResult:
    """What a compute returns: its return values and the lines it printed
    (up to 1 MiB of them)."""

    values: List[Any] = field(default_factory=list)
    logs: List[str] = field(default_factory=list)


def connect(path: Optional[str] = None, *, host: Optional[str] = None, port: Optional[int] = None,
            token: Optional[str] = None) -> "Client":
    """Connects to the daemon at the Unix socket ``path``, or at its loopback
    TCP listener ``host``/``port`` with ``token``. Raises
    :class:`ConnectFailedError` when nobody answers there."""
    if (path is None) == (host is None or port is None):
        raise TypeError("connect takes a socket path, or host and port (and token)")
    client = Client(Connection(open_socket(path, host, port)))
    if path is None:
        try:
            client.call("auth", token if token is not None else "")
        except BaseException:
            client.close()
            raise
    return client


class Client:
    """A connection to the daemon; thread-safe; a context manager (closes
    on exit). Make one with :func:`connect`."""

    def __init__(self, conn: Connection):
        self._conn = conn

    def session(self, home: Optional[str] = None, *, on_log: Optional[LogSink] = None) -> "Session":
        """Opens a session; ``home`` names a ``_home`` shared by every session
        naming it (default: a private one). ``on_log`` gets every ``print``
        line of the session's computes, as they run (on the reader thread)."""
        if home is not None:
            _name(home)
        sid = self.call("session.open", *([] if home is None else [home]))
        return Session(self, sid, home, on_log)

    def stats(self) -> Dict[str, Any]:
        """The daemon's counters (docs/protocol.md, ``stats``)."""
        return self.call("stats")

    def load_script(self, code: str) -> str:
        """Loads a script on this connection: its digest (the SHA-1 of ``code``
        in hex, as Redis's ``SCRIPT LOAD`` gives), which ``Session.compute``
        then takes in place of the code on this connection, until it closes."""
        if not isinstance(code, str):
            raise InvalidValueError(f"load_script takes Lua source as a str, not {type(code).__name__}")
        return self.call("script.load", code)

    def list_homes(self) -> List[Dict[str, Any]]:
        """Every named home, by name: ``{name, bytes, loaded, sessions}`` each.
        Served on the operator's socket only (elsewhere :class:`OperatorOnlyError`)."""
        return self.call("home.list")

    def drop_home(self, name: str) -> bool:
        """Deletes the named home, from disk too; False if there was none
        (:class:`HomeInUseError` if a session holds it)."""
        return self.call("home.drop", _name(name))

    def export_home(self, name: str) -> Any:
        """The named home as one value, its root table as a dict
        (:class:`HomeNotFoundError` if there is none)."""
        return self.call("home.export", _name(name))

    def import_home(self, name: str, value: Any) -> None:
        """Replaces the named home (created if new) with ``value``, a dict or a
        list (:class:`HomeInUseError` if a session holds it)."""
        self.call("home.import", _name(name), value)

    def call(self, method: str, *params: Any) -> Any:
        """Calls any method of docs/protocol.md by name and waits for its result."""
        return self._conn.wait(self.submit(method, *params))

    def submit(self, method: str, *params: Any, on_log: Optional[LogSink] = None) -> "Future[Any]":
        """Sends a request without waiting: the future of its result.
        ``on_log`` gets the ``print`` lines of a ``compute`` request."""
        checked = prepare(list(params), "params")
        session = checked[0] if on_log is not None and checked else None
        return self._conn.submit(method, checked, session, on_log)

    def _call_checked(self, method: str, params: List[Any], session: Optional[int] = None,
                      on_log: Optional[LogSink] = None) -> Any:
        """Calls with params checked already (by the session's methods)."""
        return self._conn.wait(self._conn.submit(method, params, session, on_log))

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._conn.closed

    def on_close(self, callback: Callable[[Exception], None]) -> None:
        """Calls ``callback(error)`` when the connection ends (the error the
        waiting calls got: :class:`ConnectionClosedError` if the daemon went away)."""
        self._conn.on_end(callback)

    def close(self) -> None:
        """Closes the connection; calls still waiting fail with :class:`ConnectionClosedError`."""
        self._conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Session:
    """A session: one ``_io`` table (input, output, meta) bound to one
    ``_home``. Its calls run on the daemon in the order they were made.
    A context manager: closes the session on exit."""

    def __init__(self, client: Client, sid: int, home: Optional[str], on_log: Optional[LogSink]):
        self._client = client
        self.id = sid
        """The daemon's id of this session."""
        self.home = home
        """The home it is bound to (None: a private one)."""
        self._on_log = on_log

    def set_input(self, data: Any) -> None:
        """Sets ``_io.input`` (read-only in Lua), replacing the previous input."""
        self._call("set_input", prepare(data, "input"))

    def get_output(self) -> Any:
        """``_io.output`` (None if unset)."""
        return self._call("get_output")

    def set_input_field(self, key: str, value: Any) -> None:
        """Sets ``_io.input[key]``, creating the input table if there is none."""
        self._call("set_input_field", _key(key), prepare(value, f"input field {key!r}"))

    def get_output_field(self, key: str) -> Any:
        """``_io.output[key]`` (None if absent or if the output is not a table)."""
        return self._call("get_output_field", _key(key))

    def set_metadata(self, meta: Any) -> None:
        """Sets ``_io.meta`` (writable from Lua)."""
        self._call("set_metadata", prepare(meta, "metadata"))

    def clear_io(self) -> None:
        """Clears ``_io.input``, ``_io.output`` and ``_io.meta``; ``_home`` is untouched."""
        self._call("clear_io")

    def get_io_table_id(self) -> int:
        """The id of the session's ``_io`` table (for debugging and tooling)."""
        return self._call("get_io_table_id")

    def get_table_info(self) -> Dict[str, Any]:
        """Table ids, and the tables and bytes alive in the session's and home's stores."""
        return self._call("get_table_info")

    def compute(self, code: str, *, timeout_ms: Optional[int] = None, cpu_time_ms: Optional[int] = None,
                instructions: Optional[int] = None, memory: Optional[int] = None,
                chunk_name: Optional[str] = None, stream_logs: Optional[bool] = None,
                on_log: Optional[LogSink] = None) -> ComputeResult:
        """Runs the Lua chunk ``code`` with this session's ``_io`` and ``_home``.
        ``code`` may be the digest of a script this connection loaded
        (:meth:`Client.load_script`): 40 hex digits, which no Lua chunk is
        (:class:`NoScriptError` if it is not loaded).

        ``timeout_ms``: wall-clock limit; ``cpu_time_ms``: CPU-time limit on
        the worker's own clock (0 = none); ``instructions``: Lua instruction
        budget (0 = none); ``memory``: Lua heap limit in bytes (0 = none);
        ``chunk_name``: the name in error messages (``"@job.lua"`` reads
        ``job.lua:3:``); ``stream_logs``: send ``print`` lines while it runs
        (default True); ``on_log(line)``: gets each of them (on the reader thread).
        """
        if not isinstance(code, str):
            raise InvalidValueError(f"compute takes Lua source as a str, not {type(code).__name__}")
        options = {
            name: value
            for name, value in (("timeout_ms", timeout_ms), ("cpu_time_ms", cpu_time_ms),
                                ("instructions", instructions), ("memory", memory),
                                ("chunk_name", chunk_name), ("stream_logs", stream_logs))
            if value is not None
        }
        sinks = [s for s in (self._on_log, on_log) if s is not None]
        # A callback that raises does not stop the compute: its first error
        # is raised from here once the compute is over.
        raised: List[BaseException] = []

        def route(line: str) -> None:
            if raised:
                return
            try:
                for sink in sinks:
                    sink(line)
            except Exception as e:
                raised.append(e)

        result = self._client._call_checked("compute", [self.id, code, prepare(options, "compute options")],
                                            self.id, route if sinks else None)
        if raised:
            raise raised[0]
        return ComputeResult(values=result.get("values", []), logs=result.get("logs", []))

    def cancel(self) -> None:
        """Cancels the running compute and the computes queued before this call."""
        self._call("cancel")

    def close(self) -> None:
        """Closes the session after its earlier calls have run; frees its tables."""
        self._call("session.close")

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except ConnectionClosedError:
            pass  # the daemon freed it with the connection

    def _call(self, method: str, *params: Any) -> Any:
        return self._client._call_checked(method, [self.id, *params])


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidValueError(f"a field key must be a str, not {type(key).__name__}")
    return key


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidValueError(f"a home name must be a str, not {type(name).__name__}")
    return name
