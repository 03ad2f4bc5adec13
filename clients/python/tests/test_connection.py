"""The connection, against real daemons: connecting where nobody listens,
pipelining (threads and futures), print lines routed to their compute, a
daemon that goes away mid-call, values refused before sending, context
managers, and TCP with a token."""

import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import luapool
from conftest import HANG, Daemon, eventually


def test_connecting_to_a_missing_socket_says_so_at_connect(daemon):
    path = os.path.join(daemon.dir, "nobody-here.sock")
    with pytest.raises(luapool.ConnectFailedError) as e:
        luapool.connect(path)
    assert e.value.kind == "ConnectFailed"
    assert path in str(e.value) and "no such socket" in str(e.value)
    assert isinstance(e.value, ConnectionError)


def test_many_calls_in_flight_on_many_sessions_each_get_their_own_reply(client):
    sessions = [client.session() for _ in range(4)]
    futures = []
    for k, s in enumerate(sessions):
        for i in range(25):
            # Each session's calls run in order: set, compute, all pipelined.
            client.submit("set_input", s.id, {"k": k, "i": i})
            futures.append((k, i, client.submit("compute", s.id, "return _io.input.k * 1000 + _io.input.i")))
    for k, i, f in futures:
        assert f.result(timeout=HANG)["values"] == [k * 1000 + i]
    for s in sessions:
        s.close()


def test_threads_sharing_one_client_run_their_sessions_concurrently(client):
    def job(k):
        with client.session() as s:
            s.set_input({"k": k})
            return s.compute("return _io.input.k * 2").values[0]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(job, range(32))) == [k * 2 for k in range(32)]


def test_print_lines_reach_the_compute_that_printed_them_in_order(client):
    seen = {"A": [], "B": [], "session A": [], "quiet": []}
    a = client.session(on_log=seen["session A"].append)
    b = client.session()
    quiet = client.session(on_log=seen["quiet"].append)

    def printer(tag):
        return f'for i = 1, 50 do print("{tag}" .. i) end return "{tag}"'

    def want(tag):
        return [f"{tag}{i}" for i in range(1, 51)]

    with ThreadPoolExecutor(3) as pool:
        ra = pool.submit(a.compute, printer("A"), on_log=seen["A"].append)
        rb = pool.submit(b.compute, printer("B"), on_log=seen["B"].append)
        rq = pool.submit(quiet.compute, printer("Q"), stream_logs=False)
        ra, rb, rq = ra.result(), rb.result(), rq.result()
    assert (ra.values, rb.values, rq.values) == (["A"], ["B"], ["Q"])
    assert seen["A"] == want("A") and seen["session A"] == want("A")
    assert seen["B"] == want("B") and ra.logs == want("A")
    # Without streaming, the lines come only with the result.
    assert seen["quiet"] == [] and rq.logs == want("Q")


def test_a_callback_that_raises_or_calls_back_does_not_stop_the_reader(client):
    with client.session() as s:
        lines = []

        def bad(line):
            lines.append(line)
            raise RuntimeError("a bug in the callback")

        # The compute runs to its end; the callback's error comes out after.
        with pytest.raises(RuntimeError, match="a bug in the callback"):
            s.compute("print('x') print('y') _io.output = 'ran'", on_log=bad)
        assert lines == ["x"] and s.get_output() == "ran"
        # Through submit, a raising callback is logged and the call goes on.
        f = client.submit("compute", s.id, "print('z') return 1", on_log=bad)
        assert f.result(timeout=HANG)["values"] == [1]
        errors = []

        def reentrant(line):
            try:
                s.get_output()
            except RuntimeError as e:
                errors.append(str(e))

        assert s.compute("print('y') return 2", on_log=reentrant).values == [2]
        assert errors and "on_log callback" in errors[0]


def test_a_value_refused_before_sending_leaves_the_connection_and_session_working(lua):
    lua.set_input({"kept": True})
    with pytest.raises(luapool.InvalidValueError):
        lua.set_input({"f": print})
    with pytest.raises(luapool.InvalidValueError, match=r"input field 'x'\[1\]: a set"):
        lua.set_input_field("x", [1, {2}])
    with pytest.raises(luapool.InvalidValueError, match="metadata"):
        lua.set_metadata({("a",): 1})
    with pytest.raises(luapool.InvalidValueError, match="key must be a str"):
        lua.get_output_field(7)
    with pytest.raises(TypeError):
        lua.compute("return 1", timeout=5)
    # Nothing was sent: the input is still the last one that was.
    assert lua.compute("return _io.input.kept").values == [True]


def test_the_session_and_client_close_on_exit(daemon):
    with daemon.client() as c:
        before = c.stats()["sessions"]
        with c.session() as s:
            s.compute("_home.x = 1")
            assert c.stats()["sessions"] >= 1
        with pytest.raises(luapool.UnknownSessionError):
            s.get_output()
        # The daemon answers session.close before it frees the session.
        eventually("the session is freed", lambda: c.stats()["sessions"] <= before)
    assert c.closed
    with pytest.raises(luapool.ConnectionClosedError, match="the client closed it"):
        c.stats()


def test_closing_the_client_fails_the_calls_still_waiting(daemon):
    c = daemon.client()
    started = threading.Event()
    s = c.session(on_log=lambda line: started.set())
    running = c.submit("compute", s.id, "print('started') while true do end", {"timeout_ms": 60_000},
                       on_log=lambda line: started.set())
    assert started.wait(HANG)
    c.close()
    with pytest.raises(luapool.ConnectionClosedError, match=r"\(the client closed it\); 1 call was waiting"):
        running.result(timeout=HANG)
    with pytest.raises(luapool.ConnectionClosedError):
        s.get_output()


def test_a_daemon_killed_mid_call_fails_every_waiting_call_never_a_hang():
    d = Daemon()
    c = luapool.connect(d.socket)
    closed = []
    c.on_close(closed.append)
    s1, s2 = c.session(), c.session()
    started = threading.Event()
    calls = [
        c.submit("compute", s1.id, "print('started') while true do end", {"timeout_ms": 60_000},
                 on_log=lambda line: started.set()),
        c.submit("get_output", s1.id),  # behind the compute in s1's order
        c.submit("compute", s2.id, "while true do end", {"timeout_ms": 60_000}),
    ]
    assert started.wait(HANG)
    d.stop(signal.SIGKILL)
    for f in calls:
        e = f.exception(timeout=HANG)
        assert isinstance(e, luapool.ConnectionClosedError), repr(e)
        assert e.kind == "ConnectionClosed"
        assert re.search(r"connection to the luapool daemon closed.*3 calls were waiting", str(e)), str(e)
    with pytest.raises(luapool.ConnectionClosedError):
        s2.set_input(1)
    eventually("the client reports the close", lambda: closed and isinstance(closed[0], luapool.ConnectionClosedError))
    c.close()


def test_on_sigterm_a_running_compute_finishes_then_the_connection_closes():
    d = Daemon()
    c = luapool.connect(d.socket)
    started = threading.Event()
    s = c.session(on_log=lambda line: started.set())
    running = c.submit("compute", s.id,
                       "print('started') local t = os.clock() while os.clock() - t < 0.3 do end return 'done'",
                       on_log=lambda line: started.set())
    assert started.wait(HANG)
    assert d.stop(signal.SIGTERM) == 0
    assert running.result(timeout=HANG)["values"] == ["done"]
    eventually("the client sees the close", lambda: c.closed)
    with pytest.raises(luapool.ConnectionClosedError):
        s.compute("return 1")
    c.close()


def test_tcp_with_the_daemons_token_works_and_a_wrong_token_is_unauthorized():
    d = Daemon(["--tcp", "127.0.0.1:0", "--token", "sekrit"])
    try:
        eventually("the daemon says its TCP address", lambda: "listening on tcp " in d.stderr)
        port = int(re.search(r"listening on tcp 127\.0\.0\.1:(\d+)", d.stderr).group(1))
        with luapool.connect(host="127.0.0.1", port=port, token="sekrit") as c, c.session() as s:
            assert s.compute("return 1 + 1").values == [2]
        with pytest.raises(luapool.UnauthorizedError):
            luapool.connect(host="127.0.0.1", port=port, token="wrong")
    finally:
        assert d.stop() == 0
