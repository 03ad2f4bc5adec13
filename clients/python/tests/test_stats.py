"""``stats()`` through the client, against a real daemon: wait and run time
percentiles and errors by kind (a client its own, the operator the whole
daemon's), and each worker's state on the operator's socket."""

import threading

import pytest

import luapool
from conftest import HANG, Daemon, eventually


def test_stats_carry_percentiles_errors_by_kind_and_the_operator_each_workers_state():
    d = Daemon()
    try:
        with d.client() as c, d.operator() as op, c.session() as s:
            for _ in range(3):
                s.compute("return 1")
            with pytest.raises(luapool.LuaError):
                s.compute("error('x')")

            mine = c.stats()
            assert mine["scope"] == "connection"
            assert (mine["wait"]["count"], mine["run"]["count"]) == (4, 4)
            for l in (mine["wait"], mine["run"]):
                assert l["p50_us"] <= l["p90_us"] <= l["p99_us"] and l["p50_us"] <= l["sum_us"], l
            assert (mine["errors"]["LuaError"], mine["errors"]["Timeout"]) == (1, 0)
            assert "worker_states" not in mine, "workers are the operator's"

            everything = op.stats()
            assert everything["scope"] == "daemon"
            assert (everything["run"]["count"], everything["errors"]["LuaError"]) == (4, 1)
            assert len(everything["worker_states"]) == 2

            # A worker running a compute says so, and for how long.
            started = threading.Event()
            running = c.submit("compute", s.id, "print('started') while true do end", {"timeout_ms": 60_000},
                               on_log=lambda line: started.set())
            assert started.wait(HANG)
            busy = []

            def seen_running():
                busy[:] = [w for w in op.stats()["worker_states"] if w["state"] == "running"]
                return bool(busy)

            eventually("a worker is seen running", seen_running)
            assert busy[0]["for_ms"] >= 0, busy
            s.cancel()
            assert isinstance(running.exception(timeout=HANG), luapool.CancelledError)
            eventually("both workers idle again",
                       lambda: all(w["state"] == "idle" for w in op.stats()["worker_states"]))
            assert op.stats()["errors"]["Cancelled"] == 1
    finally:
        assert d.stop() == 0
