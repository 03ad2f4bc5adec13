"""The codec without a daemon: frames cut from a byte stream, the ext types
(1 big integer, 2 Lua function, anything else an error), the values refused
before sending, and error classes by kind."""

import builtins
import math
import sys
from collections import OrderedDict

import msgpack
import pytest

import luapool
from luapool.codec import Frames


def send(v):
    return luapool.encode(luapool.prepare(v, "input"))


def round_trip(v):
    return luapool.decode(send(v))


def ext(code, payload):
    """An ext 8 value by hand (msgpack.ExtType refuses negative types)."""
    return bytes([0xC7, len(payload), code & 0xFF]) + payload


def ext32(code, payload):
    """An ext 32 value by hand."""
    return bytes([0xC9]) + len(payload).to_bytes(4, "big") + bytes([code & 0xFF]) + payload


# ---------------------------------------------------------------- frames


def test_frames_fed_one_byte_at_a_time_come_out_whole_and_in_order():
    messages = [
        [1, 7, None, {"values": ["x" * 70_000], "logs": []}],
        [2, "log", [1, 7, "a line"]],
        [1, 4_000_000_000, None, [1, [2, [3, {}]], b"\x00" * 300]],
        [1, 8, None, -(2**63)],
    ]
    stream = b"".join(msgpack.packb(m, use_bin_type=True) for m in messages)
    frames = Frames()
    got = []
    for i in range(len(stream)):
        got.extend(frames.feed(stream[i:i + 1]))
    assert got == [(m, None) for m in messages]


def test_a_message_with_an_unknown_ext_fails_alone_and_the_stream_goes_on():
    bad = b"\x94\x01\x05\xc0" + ext(9, b"zz")  # [1, 5, nil, ext 9]
    good = msgpack.packb([1, 6, None, "fine"])
    frames = Frames()
    out = list(frames.feed(bad + good))
    assert len(out) == 2
    message, error = out[0]
    assert message[1] == 5
    assert isinstance(error, luapool.DecodeError) and "ext type 9" in str(error)
    assert out[1] == ([1, 6, None, "fine"], None)


def test_bytes_that_are_not_msgpack_are_a_decode_error():
    with pytest.raises(luapool.DecodeError, match="not MessagePack"):
        list(Frames().feed(b"\x92\x01\xc1"))


# ---------------------------------------------------------------- integers


def test_ints_in_the_64_bit_range_are_plain_and_others_are_ext_1():
    for v in [0, 5, -5, 2**63 - 1, -(2**63), 2**64 - 1]:
        data = send(v)
        assert data == msgpack.packb(v)
        assert luapool.decode(data) == v
    for v in [2**64, -(2**63) - 1, 10**40, -(10**40)]:
        data = send(v)
        text = str(v).encode()
        assert data == bytes([0xC7, len(text), 0x01]) + text
        assert luapool.decode(data) == v


def test_ext_1_decodes_to_int_and_a_payload_that_is_not_decimal_is_an_error():
    assert luapool.decode(ext(1, b"-123456789012345678901234567890")) == -123456789012345678901234567890
    assert luapool.decode(ext(1, b"42")) == 42
    for bad in [b"12a", b"", b"-", b"+1", b" 1", b"1\n"]:
        with pytest.raises(luapool.DecodeError, match="ext type 1"):
            luapool.decode(ext(1, bad))


def test_ints_longer_than_pythons_conversion_limit_cross_both_ways_exactly():
    # Python refuses str(int) past 4300 digits by default; the daemon's
    # bigints have up to 78 913, and one of them must not end the connection.
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    for v in [10**5000 + 1, -(3**20000), 10**luapool.MAX_BIGINT_DIGITS - 1, -(10**luapool.MAX_BIGINT_DIGITS - 1)]:
        payload = msgpack.unpackb(send(v), ext_hook=lambda code, data: (code, data))
        if limit:
            sys.set_int_max_str_digits(0)
        try:
            assert payload == (1, str(v).encode())
        finally:
            if limit:
                sys.set_int_max_str_digits(limit)
        assert luapool.decode(send(v)) == v
    digits = b"9" * luapool.MAX_BIGINT_DIGITS
    assert luapool.decode(ext32(1, b"-" + digits)) == -(10**luapool.MAX_BIGINT_DIGITS - 1)
    # Inside a stream of messages it is decoded in place, and the stream goes on.
    stream = msgpack.packb([1, 7, None, [msgpack.ExtType(1, digits)]]) + msgpack.packb([1, 8, None, 2])
    assert list(Frames().feed(stream)) == [([1, 7, None, [10**luapool.MAX_BIGINT_DIGITS - 1]], None),
                                           ([1, 8, None, 2], None)]


def test_an_int_past_the_daemons_digits_is_refused_before_sending():
    too_long = 10**luapool.MAX_BIGINT_DIGITS  # one digit more than the daemon takes
    with pytest.raises(luapool.InvalidValueError, match=r"input\['n'\]: an int of 78914 digits is over .* 78913"):
        luapool.prepare({"n": too_long}, "input")
    with pytest.raises(luapool.InvalidValueError, match=r"78914 digits"):
        luapool.prepare([-too_long], "input")
    # As a map key it is refused too, described rather than printed.
    with pytest.raises(luapool.InvalidValueError, match=r"<an int of \d+ bits> is out of the 64-bit range"):
        luapool.prepare({10**5000: 1}, "input")


# ---------------------------------------------------------------- Lua functions


def test_a_lua_function_is_ext_2_holding_its_source_both_ways():
    f = luapool.LuaFunction("return function(x) return x * 2 end -- é")
    data = send({"f": f, "list": [f]})
    assert ext(2, f.source.encode()) in data
    back = luapool.decode(data)
    assert back == {"f": f, "list": [f]}
    assert isinstance(back["f"], luapool.LuaFunction) and back["f"].source == f.source
    with pytest.raises(luapool.DecodeError, match="not UTF-8"):
        luapool.decode(ext(2, b"\xff"))


def test_any_other_ext_type_is_an_error_that_names_the_type():
    for code in [0, 3, 5, 127, -2, -128]:
        with pytest.raises(luapool.DecodeError, match=f"ext type {code} "):
            luapool.decode(ext(code, b"xy"))
    # The MessagePack timestamp (ext -1), which msgpack would decode itself.
    ts = msgpack.packb(msgpack.Timestamp(1, 0))
    ts_key = b"\x81" + ts + b"\x90"  # {timestamp: []}
    for data in [ts, msgpack.packb([1, {"t": msgpack.Timestamp(5, 7)}]), ts_key]:
        with pytest.raises(luapool.DecodeError, match="ext type -1 "):
            luapool.decode(data)
    # The same header bytes inside a string are only a string.
    assert luapool.decode(msgpack.packb("\u00d6\u00ff")) == "\u00d6\u00ff"
    assert luapool.decode(msgpack.packb(b"\xd6\xff\x00\x00\x00\x00")) == b"\xd6\xff\x00\x00\x00\x00"


# ---------------------------------------------------------------- refused before sending


class Point:
    x = 1


def cyclic():
    a = {"a": 1}
    a["self"] = {"back": a}
    return a


@pytest.mark.parametrize("value, message", [
    ({"f": lambda: 1}, r"input\['f'\]: a function cannot cross"),
    ({"f": [print]}, r"input\['f'\]\[0\]: a function cannot cross"),
    ({"s": {1, 2}}, r"input\['s'\]: a set cannot cross"),
    ({"p": Point()}, r"input\['p'\]: a Point cannot cross"),
    ([1, object()], r"input\[1\]: a object cannot cross"),
    (cyclic(), r"input\['self'\]\['back'\]: a cycle"),
    ({(1, 2): 3}, r"a map key must be a str, int, float or bool, not tuple"),
    ({None: 3}, r"a map key must be .* not NoneType"),
    ({b"k": 3}, r"a map key must be .* not bytes"),
    ({math.nan: 1}, r"a map key is NaN"),
    ({2**64: 1}, r"the map key 18446744073709551616 is out of the 64-bit range"),
    ({"d": 1j}, r"a complex cannot cross"),
])
def test_values_that_cannot_cross_the_wire_are_refused_naming_where(value, message):
    with pytest.raises(luapool.InvalidValueError, match=message) as e:
        luapool.prepare(value, "input")
    assert e.value.kind == "InvalidValue"
    assert isinstance(e.value, ValueError)


def test_nesting_past_the_daemons_limit_is_refused_and_up_to_it_is_sent():
    def nest(n):
        v = 1
        for _ in range(n):
            v = [v]
        return v

    send(nest(luapool.MAX_DEPTH))
    with pytest.raises(luapool.InvalidValueError, match="nested more than 500 levels"):
        luapool.prepare(nest(luapool.MAX_DEPTH + 1), "input")


def test_shared_references_tuples_bytes_and_dict_subclasses_are_fine():
    shared = {"id": 1}
    assert round_trip([shared, shared, {"shared": shared}]) == [shared, shared, {"shared": shared}]
    assert round_trip((1, (2, 3))) == [1, [2, 3]]
    assert round_trip({"b": bytearray(b"\x00\xff"), "m": memoryview(b"ab")}) == {"b": b"\x00\xff", "m": b"ab"}
    assert round_trip(OrderedDict(k="v")) == {"k": "v"}
    assert round_trip({1: "a", 1.5: "b", True: "c", "1": "d"}) == {1: "c", 1.5: "b", "1": "d"}
    got = round_trip([None, math.inf, 1.5, "é"])
    assert got == [None, math.inf, 1.5, "é"]
    assert math.isnan(round_trip(math.nan))


def test_prepare_copies_only_what_it_changes():
    plain = {"a": [1, 2], "b": {"c": "d"}}
    assert luapool.prepare(plain, "input") is plain
    with_big = {"a": [1, 2**70], "b": {"c": "d"}}
    out = luapool.prepare(with_big, "input")
    assert out is not with_big and out["b"] is with_big["b"]
    assert with_big["a"][1] == 2**70, "the caller's value is untouched"


# ---------------------------------------------------------------- errors


def test_each_error_kind_has_its_class_carrying_kind_and_the_daemons_fields():
    lua = luapool.from_wire({"kind": "LuaError", "message": "x.lua:3: boom", "traceback": "stack traceback:\n..."})
    assert isinstance(lua, luapool.LuaError) and isinstance(lua, luapool.LuapoolError)
    assert (lua.kind, str(lua), lua.traceback) == ("LuaError", "x.lua:3: boom", "stack traceback:\n...")
    timeout = luapool.from_wire({"kind": "Timeout", "message": "t"})
    assert isinstance(timeout, luapool.TimeoutError) and isinstance(timeout, builtins.TimeoutError)
    for kind, cls in [("MemoryLimit", luapool.MemoryLimitError), ("QuotaExceeded", luapool.QuotaExceededError),
                      ("WorkerCrashed", luapool.WorkerCrashedError), ("Cancelled", luapool.CancelledError),
                      ("Busy", luapool.BusyError), ("Unavailable", luapool.UnavailableError),
                      ("BadResult", luapool.BadResultError), ("BadRequest", luapool.BadRequestError),
                      ("UnknownMethod", luapool.UnknownMethodError), ("UnknownSession", luapool.UnknownSessionError),
                      ("Unauthorized", luapool.UnauthorizedError), ("ShuttingDown", luapool.ShuttingDownError),
                      ("StoreError", luapool.StoreError), ("Internal", luapool.InternalError)]:
        e = luapool.from_wire({"kind": kind, "message": "m"})
        assert type(e) is cls and e.kind == kind
    future = luapool.from_wire({"kind": "SomethingNew", "message": "later", "extra": 1})
    assert type(future) is luapool.LuapoolError
    assert (future.kind, future.details["extra"]) == ("SomethingNew", 1)
    assert luapool.from_wire("not a map").kind == "Unknown"
    assert isinstance(luapool.ConnectionClosedError("x"), ConnectionError)


def test_a_function_source_with_a_nul_byte_is_refused_before_sending():
    with pytest.raises(luapool.InvalidValueError, match="NUL byte"):
        luapool.LuaFunction("function() return 'a\0b' end")
    assert luapool.LuaFunction(r"function() return 'a\0b' end").source.endswith(r"'a\0b' end")
