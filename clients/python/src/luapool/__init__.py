"""``luapool``: the Python client of the luapool daemon (``luapool serve``).

    import luapool

    with luapool.connect("/tmp/luapool.sock") as client, client.session() as lua:
        lua.set_input({"numbers": [1, 2, 3, 4, 5]})
        lua.compute('''
            local sum = 0
            for _, n in ipairs(_io.input.numbers) do sum = sum + n end
            _io.output = { sum = sum, count = #_io.input.numbers }''')
        print(lua.get_output())  # {'sum': 15, 'count': 5}

The wire protocol is docs/protocol.md of the repository.
"""

from .client import Client, ComputeResult, Session, connect
from .codec import (
    EXT_BIGINT,
    EXT_FUNCTION,
    MAX_BIGINT_DIGITS,
    MAX_DEPTH,
    MAX_FRAME,
    LuaFunction,
    decode,
    encode,
    prepare,
)
from .errors import (
    BadRequestError,
    BadResultError,
    BusyError,
    CancelledError,
    ConflictError,
    ConnectFailedError,
    ConnectionClosedError,
    DecodeError,
    HomeInUseError,
    HomeNotFoundError,
    InternalError,
    InvalidValueError,
    LimitReachedError,
    LuaError,
    LuapoolError,
    MemoryLimitError,
    NoScriptError,
    OperatorOnlyError,
    OutputTooLargeError,
    QuotaExceededError,
    ShuttingDownError,
    StoreError,
    TimeoutError,
    TooLargeError,
    TooManyHomesError,
    UnauthorizedError,
    UnavailableError,
    UnknownMethodError,
    UnknownSessionError,
    WorkerCrashedError,
    from_wire,
    make_error,
)

__all__ = [
    "connect", "Client", "Session", "ComputeResult", "LuaFunction",
    "encode", "decode", "prepare", "EXT_BIGINT", "EXT_FUNCTION", "MAX_BIGINT_DIGITS", "MAX_DEPTH", "MAX_FRAME",
    "LuapoolError", "LuaError", "TimeoutError", "MemoryLimitError", "QuotaExceededError",
    "WorkerCrashedError", "CancelledError", "BusyError", "UnavailableError", "BadResultError",
    "BadRequestError", "UnknownMethodError", "UnknownSessionError", "UnauthorizedError",
    "ShuttingDownError", "StoreError", "InternalError", "ConnectFailedError",
    "ConnectionClosedError", "InvalidValueError", "DecodeError", "from_wire", "make_error",
    "LimitReachedError", "TooLargeError", "OutputTooLargeError", "TooManyHomesError",
    "HomeInUseError", "HomeNotFoundError", "OperatorOnlyError", "NoScriptError", "ConflictError",
]
