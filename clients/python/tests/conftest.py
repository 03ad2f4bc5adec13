"""Test harness: a real ``luapool serve`` process per test module, in a
temporary directory (the binary from ``cargo build``; LUAPOOL_BIN overrides
where it is), the example scripts of the repository, and waits that fail
instead of hanging."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import luapool

REPO = Path(__file__).resolve().parents[3]
LUAPOOL_BIN = Path(os.environ.get("LUAPOOL_BIN", REPO / "target" / "debug" / "luapool"))
HANG = 60.0
"""How long a wait may take before it counts as a hang (a failure, not a timing goal)."""


def example(name: str) -> str:
    """The text of ``examples/<name>``."""
    return (REPO / "examples" / name).read_text()


def example_json(name: str) -> Any:
    """The parsed JSON of ``examples/<name>``."""
    return json.loads(example(name))


def eventually(what: str, f: Callable[[], bool]) -> None:
    """Polls ``f`` until it is true; fails with ``what`` after HANG seconds."""
    end = time.monotonic() + HANG
    while not f():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class Daemon:
    """A ``luapool serve`` child process with its own socket."""

    def __init__(self, args: Optional[List[str]] = None):
        if not LUAPOOL_BIN.exists():
            raise RuntimeError(f"{LUAPOOL_BIN} is missing: run `cargo build --workspace` or set LUAPOOL_BIN")
        args = list(args or [])
        self.dir = tempfile.mkdtemp(prefix="luapool-py-")
        self.socket = os.path.join(self.dir, "luapool.sock")
        workers = [] if "--workers" in args else ["--workers", "2"]
        # Tests ask for long computes and for no instruction budget, which the
        # daemon allows only up to its operator maxima; the operator's socket
        # sees the daemon-wide stats.
        maxima = [] if "--max-timeout" in args else ["--max-timeout", "120", "--max-instructions", "0"]
        self.operator_socket = os.path.join(self.dir, "operator.sock")
        self.proc = subprocess.Popen(
            [str(LUAPOOL_BIN), "serve", "--socket", self.socket, *workers, *maxima,
             "--operator-socket", self.operator_socket, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._stderr: List[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"luapool serve exited with {self.proc.returncode}: {self.stderr}")
            return "workers)" in self.stderr

        eventually("the daemon says it is listening", listening)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def client(self) -> luapool.Client:
        return luapool.connect(self.socket)

    def operator(self) -> luapool.Client:
        """A client on the operator's socket: its ``stats()`` cover the whole daemon."""
        return luapool.connect(self.operator_socket)

    def worker_pids(self) -> List[int]:
        """The daemon's worker processes (its children)."""
        tasks = Path(f"/proc/{self.proc.pid}/task")
        return [int(p) for t in tasks.iterdir() for p in (t / "children").read_text().split()]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stops the daemon with ``sig`` and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=HANG)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return code


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    assert d.stop() == 0, "the daemon exits 0 on SIGTERM"


@pytest.fixture(scope="module")
def client(daemon):
    with daemon.client() as c:
        yield c


@pytest.fixture
def lua(client):
    """A fresh session of the module's daemon."""
    with client.session() as s:
        yield s


def run_example(s: luapool.Session, name: str) -> luapool.ComputeResult:
    """Runs ``examples/<name>`` named after its file (errors read ``name:LINE:``)."""
    return s.compute(example(name), chunk_name=f"@{name}")


def eval_one(s: luapool.Session, code: str) -> Any:
    """The single value ``code`` returns."""
    values = s.compute(code).values
    assert len(values) == 1, f"expected one return value from:\n{code}"
    return values[0]


def items(n: int) -> List[dict]:
    """``n`` deterministic records ``{id, value}`` with values in [0, 100)
    (the Rust tests' xorshift generator)."""
    x = 0x9E3779B97F4A7C15
    mask = (1 << 64) - 1
    out = []
    for i in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append({"id": i, "value": (x >> 11) / 2**53 * 100})
    return out
