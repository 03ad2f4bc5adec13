"""Values on the wire: Python values to MessagePack and back, through
``msgpack``, with the luapool rules of docs/protocol.md ("Values").

- :func:`prepare` checks a value before anything is sent and raises
  :class:`InvalidValueError` naming the offending path: map keys that are
  not ``str``/``int``/``float``/``bool`` (or a NaN), cycles, objects of other
  types, nesting past the daemon's limit.
- Integers in [-2**63, 2**64) are plain MessagePack ints; others are ext
  type 1 (ASCII decimal, optional leading '-'), decoded back to ``int``,
  up to the daemon's :data:`MAX_BIGINT_DIGITS` digits (beyond Python's own
  limit on int/str conversions, which does not apply here).
- Ext type 2 is a Lua function (its UTF-8 source): :class:`LuaFunction`.
  Any other ext type is a :class:`DecodeError` naming the type.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator, List, Optional, Tuple

import msgpack

from .errors import DecodeError, InvalidValueError

EXT_BIGINT = 1
"""Ext type of a big integer (ASCII decimal, optional leading '-')."""
EXT_FUNCTION = 2
"""Ext type of a Lua function (its UTF-8 source)."""
MAX_DEPTH = 500
"""Containers nested deeper than this are refused before sending (the daemon
closes a connection whose frame nests more than 512 deep, and the request's
envelope takes two of those levels)."""
MAX_FRAME = 256 * 1024 * 1024
"""The daemon's frame limit: a larger request would close the connection."""
MAX_BIGINT_DIGITS = 78_913
"""The most decimal digits of a big integer the daemon takes (its bigints
hold 2**18 bits): a longer one is refused before sending."""

_INT_MIN = -(2**63)
_INT_END = 2**64
_DECIMAL = re.compile(rb"-?[0-9]+")
# Headers a MessagePack timestamp (ext -1) can have: msgpack decodes those
# itself, without the ext hook, so frames holding these bytes are checked.
_TIMESTAMP_HEADERS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


class LuaFunction:
    """A Lua function as a value: its source text (MessagePack ext type 2)."""

    __slots__ = ("source",)

    def __init__(self, source: str):
        if not isinstance(source, str):
            raise TypeError("LuaFunction takes the Lua source as a str")
        if "\0" in source:
            # The daemon refuses it: write \\0 inside a Lua string instead.
            raise InvalidValueError("a Lua function's source cannot hold a NUL byte (write \\0 inside a string)")
        self.source = source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LuaFunction) and other.source == self.source

    def __hash__(self) -> int:
        return hash(("LuaFunction", self.source))

    def __repr__(self) -> str:
        return f"LuaFunction({self.source!r})"


# Python refuses int/str conversions past sys.get_int_max_str_digits()
# (4300 by default, 640 at least); the daemon's bigints have up to
# MAX_BIGINT_DIGITS. Up to this many digits the built-in conversion is
# allowed whatever the setting; longer numbers convert in pieces.
_CHUNK = 600
_CHUNK_END = 10**_CHUNK


def _digits(v: int) -> str:
    """The decimal text of ``v``, however many digits it has."""
    if -_CHUNK_END < v < _CHUNK_END:
        return str(v)
    if v < 0:
        return "-" + _digits(-v)
    # Split in two halves of about equal digits: each converts alone.
    half = (v.bit_length() * 3 // 10) // 2
    high, low = divmod(v, 10**half)
    return _digits(high) + _digits(low).rjust(half, "0")


def _from_digits(text: bytes) -> int:
    """The int of ``-?[0-9]+`` text, however many digits it has."""
    if len(text) <= _CHUNK:
        return int(text)
    if text[:1] == b"-":
        return -_from_digits(text[1:])
    half = len(text) // 2
    return _from_digits(text[:half]) * 10 ** (len(text) - half) + _from_digits(text[half:])


def _default(obj: Any) -> Any:
    if isinstance(obj, LuaFunction):
        return msgpack.ExtType(EXT_FUNCTION, obj.source.encode("utf-8"))
    raise TypeError(f"cannot encode {type(obj).__name__}")


def encode(value: Any) -> bytes:
    """Encodes a value that :func:`prepare` has checked."""
    return msgpack.packb(value, use_bin_type=True, default=_default, datetime=False)


class _Ext:
    """Decodes ext types; an unknown one is noted, not raised, so the
    streaming unpacker stays in step and only that message fails."""

    def __init__(self) -> None:
        self.error: Optional[DecodeError] = None

    def __call__(self, code: int, data: bytes) -> Any:
        try:
            return ext_value(code, data)
        except DecodeError as e:
            if self.error is None:
                self.error = e
            return None


def ext_value(code: int, data: bytes) -> Any:
    """The value of ext type ``code`` holding ``data``; raises DecodeError."""
    if code == EXT_BIGINT:
        if not _DECIMAL.fullmatch(data):
            raise DecodeError(f"ext type 1 (big integer) holds {data[:40]!r}, not a decimal integer")
        return _from_digits(data)
    if code == EXT_FUNCTION:
        try:
            return LuaFunction(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise DecodeError("ext type 2 (Lua function) holds source that is not UTF-8") from None
    raise DecodeError(f"unknown MessagePack ext type {code} (luapool uses 1 and 2)")


def _unpacker(ext: _Ext) -> msgpack.Unpacker:
    # raw=False: str -> str, bin stays bytes. strict_map_key=False: Lua
    # tables have integer (and boolean) keys. max_buffer_size=0: replies as
    # large as the daemon sends (2**32-1).
    return msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=ext, max_buffer_size=0)


def _check_timestamps(value: Any) -> None:
    """Raises DecodeError if ``value`` holds a MessagePack timestamp (which
    msgpack decodes itself, without the ext hook)."""
    ts = msgpack.Timestamp
    if type(value) is ts:
        raise DecodeError("unknown MessagePack ext type -1 (luapool uses 1 and 2)")
    stack = [value]
    push, pop = stack.append, stack.pop
    while stack:
        v = pop()
        if type(v) is list:
            for x in v:
                tx = type(x)
                if tx is list or tx is dict:
                    push(x)
                elif tx is ts:
                    break
            else:
                continue
        elif type(v) is dict:
            for k, x in v.items():
                tx = type(x)
                if tx is list or tx is dict:
                    push(x)
                elif tx is ts:
                    break
                if type(k) is ts:
                    break
            else:
                continue
        else:
            continue
        raise DecodeError("unknown MessagePack ext type -1 (luapool uses 1 and 2)")


def decode(data: bytes) -> Any:
    """Decodes one MessagePack value; raises :class:`DecodeError`."""
    messages = list(Frames().feed(data))
    if len(messages) != 1:
        raise DecodeError(f"expected one MessagePack value, found {len(messages)}")
    value, error = messages[0]
    if error is not None:
        raise error
    return value


class Frames:
    """Cuts the daemon's byte stream into messages (each one MessagePack
    value) and decodes them. A message that cannot be decoded comes out
    with its error, and the stream goes on."""

    def __init__(self) -> None:
        self._ext = _Ext()
        self._unpacker = _unpacker(self._ext)
        self._raw = bytearray()  # the bytes of the messages not yet complete
        self._base = 0  # stream offset of _raw[0]

    def feed(self, data: bytes) -> Iterator[Tuple[Any, Optional[DecodeError]]]:
        """Adds received bytes; yields ``(message, error)`` for each complete
        one. Raises :class:`DecodeError` if the bytes are not MessagePack."""
        self._unpacker.feed(data)
        self._raw += data
        start = 0
        try:
            for message in self._unpacker:
                end = self._unpacker.tell() - self._base
                error, self._ext.error = self._ext.error, None
                if error is None and any(self._raw.find(h, start, end) >= 0 for h in _TIMESTAMP_HEADERS):
                    try:
                        _check_timestamps(message)
                    except DecodeError as e:
                        error = e
                start = end
                yield message, error
        except (ValueError, msgpack.UnpackException) as e:
            raise DecodeError(f"the daemon sent bytes that are not MessagePack: {e}") from None
        finally:
            del self._raw[:start]
            self._base += start


def prepare(value: Any, what: str) -> Any:
    """Checks that ``value`` can cross the wire and returns what to encode:
    the value itself, or (copied where needed) with tuples as lists, big
    integers as ext values and bytes-likes as bytes. ``what`` names the value
    in the error ("input", "metadata")."""
    if _plain(value, 0, set()):
        return value
    return _walk(value, 0, set(), [what])


def _plain(v: Any, depth: int, open_ids: set) -> bool:
    """Whether ``v`` goes as it is: only the common types, exactly (no
    subclasses), ints in range, good keys, no cycle, not too deep. A fast
    check without paths; anything else takes the careful :func:`_walk`."""
    t = type(v)
    if t is str or t is float or t is bool or v is None or t is bytes or t is LuaFunction:
        return True
    if t is int:
        return _INT_MIN <= v < _INT_END
    if t is not dict and t is not list:
        return False
    if depth >= MAX_DEPTH or id(v) in open_ids:
        return False
    open_ids.add(id(v))
    items = v
    if t is dict:
        for k in v:
            tk = type(k)
            if not (tk is str or (tk is int and _INT_MIN <= k < _INT_END) or tk is bool or (tk is float and k == k)):
                return False
        items = v.values()
    for x in items:
        tx = type(x)
        if tx is str or tx is float or tx is bool or x is None:
            continue
        if tx is int and _INT_MIN <= x < _INT_END:
            continue
        if not _plain(x, depth + 1, open_ids):
            return False
    open_ids.discard(id(v))
    return True


def _shown(v: Any) -> str:
    """``repr(v)``, but an int too long to print whole is described."""
    if type(v) is int and not -_CHUNK_END < v < _CHUNK_END:
        return f"<an int of {v.bit_length()} bits>"
    return repr(v)


def _where(path: List[Any]) -> str:
    out = str(path[0])
    for p in path[1:]:
        out += f"[{_shown(p)}]"
    return out


def _fail(path: List[Any], why: str) -> None:
    raise InvalidValueError(f"cannot send {_where(path)}: {why}")


def _int(v: int, path: List[Any]) -> Any:
    if _INT_MIN <= v < _INT_END:
        return v
    text = _digits(v)
    digits = len(text) - (v < 0)
    if digits > MAX_BIGINT_DIGITS:
        _fail(path, f"an int of {digits} digits is over the daemon's limit of {MAX_BIGINT_DIGITS} digits")
    return msgpack.ExtType(EXT_BIGINT, text.encode("ascii"))


def _key(k: Any, path: List[Any]) -> Any:
    if isinstance(k, (str, bool)):
        return k
    if isinstance(k, int):
        if not _INT_MIN <= k < _INT_END:
            _fail(path, f"the map key {_shown(k)} is out of the 64-bit range")
        return k
    if isinstance(k, float):
        if math.isnan(k):
            _fail(path, "a map key is NaN")
        return k
    _fail(path, f"a map key must be a str, int, float or bool, not {type(k).__name__} ({k!r})")


def _walk(v: Any, depth: int, open_ids: set, path: List[Any]) -> Any:
    if v is None or isinstance(v, (str, bool, float)):
        return v
    if isinstance(v, int):
        return _int(v, path)
    if isinstance(v, LuaFunction):
        return v
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    is_list = isinstance(v, (list, tuple))
    if not is_list and not isinstance(v, dict):
        if callable(v) and not isinstance(v, type):
            _fail(path, "a function cannot cross the wire (send Lua source as a LuaFunction)")
        _fail(path, f"a {type(v).__name__} cannot cross the wire (use dict, list, tuple, str, bytes, int, float, bool or None)")
    if depth >= MAX_DEPTH:
        _fail(path, f"nested more than {MAX_DEPTH} levels deep")
    if id(v) in open_ids:
        _fail(path, "a cycle (the value contains itself)")
    open_ids.add(id(v))
    if is_list:
        items = None if isinstance(v, list) else list(v)  # a copy, once needed
        for i, item in enumerate(v):
            path.append(i)
            p = _walk(item, depth + 1, open_ids, path)
            path.pop()
            if p is not item:
                if items is None:
                    items = list(v)
                items[i] = p
        out: Any = v if items is None else items
    else:
        out = v
        for k, item in v.items():
            path.append(k)
            pk = _key(k, path)
            p = _walk(item, depth + 1, open_ids, path)
            path.pop()
            if p is not item or pk is not k:
                if out is v:
                    out = dict(v)
                out[pk] = p
    open_ids.discard(id(v))
    return out
