"""Every error kind a real daemon can be made to send arrives as its own
exception class carrying ``kind``, and the connection goes on afterwards."""

import builtins
import os
import signal
import threading

import pytest

import luapool
from conftest import HANG, Daemon, eventually


def test_a_lua_error_carries_the_chunk_name_line_and_traceback(lua):
    with pytest.raises(luapool.LuaError) as e:
        lua.compute("local x = 1\nerror('boom')", chunk_name="@job.lua")
    assert e.value.kind == "LuaError"
    assert str(e.value) == "job.lua:2: boom"
    assert "stack traceback:" in e.value.traceback and "job.lua:2" in e.value.traceback
    with pytest.raises(luapool.LuaError):
        lua.compute("return +")  # a syntax error
    assert lua.compute("return 'still fine'").values == ["still fine"]


def test_the_wall_clock_limit_and_the_instruction_budget_are_timeout(lua):
    with pytest.raises(luapool.TimeoutError) as e:
        lua.compute("while true do end", timeout_ms=200, instructions=0)
    assert e.value.kind == "Timeout" and isinstance(e.value, builtins.TimeoutError)
    with pytest.raises(luapool.TimeoutError):
        lua.compute("while true do end", instructions=100_000)
    assert lua.compute("return 1").values == [1]


def test_the_lua_heap_limit_is_memory_limit(lua):
    with pytest.raises(luapool.MemoryLimitError) as e:
        lua.compute("local t = {} for i = 1, 1e8 do t[i] = i end", memory=8 << 20)
    assert e.value.kind == "MemoryLimit"


def test_cancel_stops_the_running_compute_and_the_ones_queued_behind_it(client):
    started = threading.Event()
    with client.session() as s:
        running = client.submit("compute", s.id, "print('started') while true do end", {"timeout_ms": 60_000},
                                on_log=lambda line: started.set())
        queued = client.submit("compute", s.id, "return 'queued'")
        assert started.wait(HANG)
        s.cancel()
        for f in (running, queued):
            e = f.exception(timeout=HANG)
            assert isinstance(e, luapool.CancelledError) and e.kind == "Cancelled", repr(e)
        assert s.compute("return 'after'").values == ["after"]


def test_input_nested_deeper_than_the_store_takes_is_a_store_error(lua):
    v = 1
    for _ in range(300):
        v = [v]
    with pytest.raises(luapool.StoreError, match="nested more than 256 deep"):
        lua.set_input(v)


def test_protocol_errors_bad_request_unknown_method_unknown_session(client):
    s = client.session()
    with pytest.raises(luapool.BadRequestError, match="timeout_ms"):
        s.compute("return 1", timeout_ms=0)
    with pytest.raises(luapool.UnknownMethodError):
        client.call("no.such.method")
    s.close()
    with pytest.raises(luapool.UnknownSessionError) as e:
        s.get_output()
    assert isinstance(e.value, luapool.LuapoolError)
    with client.session() as t:  # the connection is fine after all of them
        assert t.compute("return 3").values == [3]


def test_a_full_queue_is_busy_and_a_worker_killed_mid_compute_is_worker_crashed():
    d = Daemon(["--workers", "1", "--queue", "1"])
    try:
        with luapool.connect(d.socket) as c, d.operator() as op:
            s1, s2, s3 = c.session(), c.session(), c.session()
            started = threading.Event()
            running = c.submit("compute", s1.id, "print('started') while true do end", {"timeout_ms": 60_000},
                               on_log=lambda line: started.set())
            assert started.wait(HANG)
            queued = c.submit("compute", s2.id, "return 'queued'")
            eventually("the second compute waits in the queue", lambda: op.stats()["queued"] == 1)
            with pytest.raises(luapool.BusyError) as busy:
                s3.compute("return 'no room'")
            assert busy.value.kind == "Busy"
            s2.cancel()
            assert isinstance(queued.exception(timeout=HANG), luapool.CancelledError)

            # The one worker runs s1's loop: kill it.
            [worker] = d.worker_pids()
            os.kill(worker, signal.SIGKILL)
            crashed = running.exception(timeout=HANG)
            assert isinstance(crashed, luapool.WorkerCrashedError) and crashed.kind == "WorkerCrashed", repr(crashed)
            # The daemon replaced the worker. (The cancelled compute keeps its
            # queue place until a worker takes it off: wait for that.)
            eventually("the queue empties", lambda: op.stats()["queued"] == 0)
            assert s3.compute("return 'again'").values == ["again"]
            assert op.stats()["restarts"] == 1
    finally:
        assert d.stop() == 0
