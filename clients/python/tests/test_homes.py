"""Managing durable homes through a real daemon with a data directory:
``list_homes`` (operator's socket), ``export_home``, ``import_home``,
``drop_home``, their error classes, and the limits' own classes."""

import os
import shutil
import tempfile

import pytest

import luapool
from conftest import Daemon


def test_homes_are_listed_exported_imported_and_dropped_durably():
    data = tempfile.mkdtemp(prefix="luapool-py-data-")
    homes = os.path.join(data, "homes")
    d = Daemon(["--data", homes])
    try:
        with d.client() as c, d.operator() as op:
            a = c.session("a")
            a.compute("_home.users = {{name = 'ann'}} _home.n = 1")
            b = c.session("b")
            b.compute("_home.x = true")
            listed = op.list_homes()
            assert [(h["name"], h["sessions"], h["loaded"]) for h in listed] == [("a", 1, True), ("b", 1, True)]
            assert listed[0]["bytes"] > 0
            # Only the operator sees every home's name.
            with pytest.raises(luapool.OperatorOnlyError) as e:
                c.list_homes()
            assert e.value.kind == "OperatorOnly"

            assert c.export_home("a") == {"users": [{"name": "ann"}], "n": 1}
            backup = {"n": 41, "restored": [1, 2]}
            with pytest.raises(luapool.HomeInUseError):
                c.import_home("a", backup)
            with pytest.raises(luapool.HomeInUseError):
                c.drop_home("b")
            a.close()
            b.close()
            c.import_home("a", backup)
            assert c.drop_home("b") is True
            assert c.drop_home("b") is False
            with pytest.raises(luapool.HomeNotFoundError):
                c.export_home("b")
        assert d.stop() == 0

        # A new daemon on the directory finds the import and not the dropped home.
        d = Daemon(["--data", homes])
        with d.client() as c, d.operator() as op:
            assert [h["name"] for h in op.list_homes()] == ["a"]
            s = c.session("a")
            assert s.compute("_home.n = _home.n + 1 return _home.n, _home.restored[2]").values == [42, 2]
    finally:
        d.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_limits_have_their_own_classes_and_cpu_time_ms_is_a_timeout():
    d = Daemon(["--max-homes", "1", "--max-sessions-per-connection", "2"])
    try:
        with d.client() as c:
            c.import_home("one", {"k": 1})
            with pytest.raises(luapool.TooManyHomesError) as many:
                c.import_home("two", {"k": 2})
            assert many.value.details["limit"] == "max_homes"
            s = c.session()
            c.session()
            with pytest.raises(luapool.LimitReachedError) as limit:
                c.session()
            assert (limit.value.limit, limit.value.value) == ("sessions_per_connection", 2)
            with pytest.raises(luapool.TimeoutError) as cpu:
                s.compute("while true do end", cpu_time_ms=50, instructions=0)
            assert "CPU-time limit" in str(cpu.value)
    finally:
        assert d.stop() == 0
