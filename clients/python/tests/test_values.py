"""Big integers and Lua functions through a real daemon (issue 18): an int
beyond 64 bits goes in and comes back exact (ext 1), a function stored in
``_home`` is called by a later compute, another session and a restarted
daemon, functions come back as ``LuaFunction``, and bad input is refused."""

import os
import shutil
import signal
import tempfile

import pytest

import luapool
from conftest import Daemon, eval_one

BIG = 123456789012345678901234567890


def test_a_big_int_goes_in_and_comes_back_exact(lua):
    lua.set_input({"n": BIG, "neg": -BIG, "u": 2**64 - 1, "small": 5})
    values = lua.compute(
        "local i = _io.input return i.n * 2, i.neg, i.u + 1, i.small, bigint.isbigint(i.n), bigint.new(7)"
    ).values
    assert values == [2 * BIG, -BIG, 2**64, 5, True, 7]
    lua.compute("_io.output = { sum = _io.input.n + _io.input.neg + 1 }")
    assert lua.get_output() == {"sum": 1}


def test_ints_past_pythons_conversion_limit_go_in_and_come_back_exact(lua):
    # str(int) stops at 4300 digits in Python by default; bigints reach 78 913.
    big = 10**5000 + 7
    lua.set_input({"n": big})
    values = lua.compute("return _io.input.n + 1, bigint.new(10):pow(6000), #tostring(_io.input.n)").values
    assert values == [big + 1, 10**6000, 5001]
    # One digit past the daemon's limit is refused here, and nothing was sent.
    with pytest.raises(luapool.InvalidValueError, match="78914 digits"):
        lua.set_input({"n": 10**luapool.MAX_BIGINT_DIGITS})
    assert eval_one(lua, "return _io.input.n - 7") == 10**5000


def test_functions_come_back_as_lua_function_and_go_in_as_ext_2(lua):
    back = eval_one(lua, "return function(x, y) return x .. y end")
    assert back == luapool.LuaFunction("function(x, y) return x .. y end")
    lua.set_input({"triple": luapool.LuaFunction("function(a) return a * 3 end")})
    assert eval_one(lua, "return _io.input.triple(14)") == 42
    # Not a function expression: refused, nothing stored.
    with pytest.raises(luapool.BadRequestError, match="not a function expression"):
        lua.set_input({"bad": luapool.LuaFunction("os.exit()")})
    assert eval_one(lua, "return _io.input.triple(1)") == 3


def test_a_function_stored_in_home_is_called_by_a_later_compute_and_another_session(client):
    home = f"py-greet-{os.getpid()}"
    with client.session(home) as a:
        a.compute('_home.greet = function(name) return "hi " .. name end')
    with client.session(home) as b:
        assert eval_one(b, 'return _home.greet("x")') == "hi x"
        # Upvalues are refused, naming the key and the upvalue.
        with pytest.raises(luapool.LuaError, match=r"key 'bad'.*'up'"):
            b.compute("local up = 1 _home.bad = function() return up end")


def test_a_function_and_a_big_int_in_a_durable_home_survive_a_daemon_restart():
    data = tempfile.mkdtemp(prefix="luapool-py-data-")
    try:
        d = Daemon(["--data", os.path.join(data, "homes")])
        with d.client() as c, c.session("h") as s:
            s.compute("_home.sq = function(x) return x * x end _home.big = bigint.new(2):pow(80)")
        d.stop(signal.SIGKILL)
        d = Daemon(["--data", os.path.join(data, "homes")])
        with d.client() as c, c.session("h") as s:
            assert s.compute("return _home.sq(12), _home.big").values == [144, 2**80]
        assert d.stop() == 0
    finally:
        shutil.rmtree(data, ignore_errors=True)
