"""Errors: every failure is a :class:`LuapoolError` carrying ``kind``.

The daemon's error kinds (docs/protocol.md, "Errors") each have a class, and
so do the client's own failures (``ConnectFailed``, ``ConnectionClosed``,
``InvalidValue``, ``DecodeError``). A kind this client does not know yet
becomes a plain :class:`LuapoolError` with that kind.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Mapping, Optional, Type


class LuapoolError(Exception):
    """Base class of every error this package raises.

    ``kind`` is the daemon's (or the client's) error kind, ``message`` its
    text for people, ``details`` the whole error map as the daemon sent it.
    """

    kind = "Unknown"

    def __init__(self, message: str, kind: Optional[str] = None, details: Optional[Mapping[str, Any]] = None):
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.details: Dict[str, Any] = dict(details) if details else {"kind": self.kind, "message": message}


class LuaError(LuapoolError):
    """The script raised an error or did not compile; ``traceback`` says where."""

    kind = "LuaError"

    @property
    def traceback(self) -> str:
        tb = self.details.get("traceback")
        return tb if isinstance(tb, str) else ""


class TimeoutError(LuapoolError, builtins.TimeoutError):  # noqa: A001 (luapool.TimeoutError)
    """The compute ran past its wall-clock limit, CPU time or instruction budget."""

    kind = "Timeout"


class MemoryLimitError(LuapoolError):
    """The worker's Lua heap limit was reached."""

    kind = "MemoryLimit"


class QuotaExceededError(LuapoolError):
    """The session's store quota would have been exceeded."""

    kind = "QuotaExceeded"


class WorkerCrashedError(LuapoolError):
    """The worker process died during the compute (the daemon replaced it)."""

    kind = "WorkerCrashed"


class CancelledError(LuapoolError):
    """The compute was cancelled (``session.cancel()`` or the client went away)."""

    kind = "Cancelled"


class BusyError(LuapoolError):
    """Every worker is busy and the queue is full: retry later."""

    kind = "Busy"


class UnavailableError(LuapoolError):
    """The pool is stopping, or gave up respawning crashed workers."""

    kind = "Unavailable"


class BadResultError(LuapoolError):
    """A return value of the compute could not be converted."""

    kind = "BadResult"


class BadRequestError(LuapoolError):
    """The daemon refused the request as malformed."""

    kind = "BadRequest"


class UnknownMethodError(LuapoolError):
    """The daemon has no such method."""

    kind = "UnknownMethod"


class UnknownSessionError(LuapoolError):
    """No such session is open on this connection."""

    kind = "UnknownSession"


class UnauthorizedError(LuapoolError):
    """TCP without (or with a wrong) token."""

    kind = "Unauthorized"


class ShuttingDownError(LuapoolError):
    """The daemon is shutting down."""

    kind = "ShuttingDown"


class StoreError(LuapoolError):
    """Another store failure (nesting too deep, a cycle in the output)."""

    kind = "StoreError"


class InternalError(LuapoolError):
    """The daemon could not do something it should have."""

    kind = "Internal"


class LimitReachedError(LuapoolError):
    """A bound of the daemon was reached (``limit`` names it, ``value`` is its
    value), or a compute option asked for more than the daemon allows."""

    kind = "LimitReached"

    @property
    def limit(self) -> Optional[str]:
        limit = self.details.get("limit")
        return limit if isinstance(limit, str) else None

    @property
    def value(self) -> Optional[int]:
        value = self.details.get("value")
        return value if isinstance(value, int) else None


class TooLargeError(LuapoolError):
    """A value the compute copied out of Lua passed the conversion limit."""

    kind = "TooLarge"


class OutputTooLargeError(LuapoolError):
    """A reply's data would pass the daemon's output limit (``--max-output``)."""

    kind = "OutputTooLarge"


class TooManyHomesError(LuapoolError):
    """A new home name past the daemon's ``--max-homes``."""

    kind = "TooManyHomes"


class HomeInUseError(LuapoolError):
    """``drop_home`` or ``import_home`` of a home that a session holds."""

    kind = "HomeInUse"


class HomeNotFoundError(LuapoolError):
    """``export_home`` of a home that does not exist."""

    kind = "HomeNotFound"


class OperatorOnlyError(LuapoolError):
    """A method served on the operator's socket only (``list_homes``)."""

    kind = "OperatorOnly"


class NoScriptError(LuapoolError):
    """``compute`` named a script by digest that this connection has not
    loaded (``load_script`` it again: after a reconnect, say)."""

    kind = "NoScript"


class ConflictError(LuapoolError):
    """Daemons sharing a PostgreSQL home store: another daemon committed to
    the compute's home first each time it ran (``--conflict-retries``);
    nothing was kept."""

    kind = "Conflict"


class ConnectFailedError(LuapoolError, ConnectionError):
    """Client side: nobody answered at the socket path (raised by ``connect``)."""

    kind = "ConnectFailed"


class ConnectionClosedError(LuapoolError, ConnectionError):
    """Client side: the connection ended before the reply came."""

    kind = "ConnectionClosed"


class InvalidValueError(LuapoolError, ValueError):
    """Client side: a value that cannot cross the wire; nothing was sent."""

    kind = "InvalidValue"


class DecodeError(LuapoolError):
    """Client side: a reply this client cannot decode."""

    kind = "DecodeError"


_CLASSES: Dict[str, Type[LuapoolError]] = {
    cls.kind: cls
    for cls in (
        LuaError,
        TimeoutError,
        MemoryLimitError,
        QuotaExceededError,
        WorkerCrashedError,
        CancelledError,
        BusyError,
        UnavailableError,
        BadResultError,
        BadRequestError,
        UnknownMethodError,
        UnknownSessionError,
        UnauthorizedError,
        ShuttingDownError,
        StoreError,
        InternalError,
        LimitReachedError,
        TooLargeError,
        OutputTooLargeError,
        TooManyHomesError,
        HomeInUseError,
        HomeNotFoundError,
        OperatorOnlyError,
        NoScriptError,
        ConflictError,
        ConnectFailedError,
        ConnectionClosedError,
        InvalidValueError,
        DecodeError,
    )
}


def make_error(kind: str, message: str, details: Optional[Mapping[str, Any]] = None) -> LuapoolError:
    """The error of the class for ``kind`` (:class:`LuapoolError` if unknown)."""
    cls = _CLASSES.get(kind)
    if cls is None:
        return LuapoolError(message, kind=kind, details=details)
    return cls(message, details=details)


def from_wire(error: Any) -> LuapoolError:
    """The error for an error map from the daemon (any shape is tolerated)."""
    details = dict(error) if isinstance(error, Mapping) else {}
    kind = details.get("kind")
    kind = kind if isinstance(kind, str) else "Unknown"
    message = details.get("message")
    message = message if isinstance(message, str) else f"daemon error {error!r}"
    details.update(kind=kind, message=message)
    return make_error(kind, message, details)
