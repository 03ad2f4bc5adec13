"""The package's example script, run as a user would."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "quick_start.py"


def test_the_quick_start_example_prints_its_log_return_value_and_output(daemon):
    out = subprocess.run([sys.executable, str(SCRIPT), "--socket", daemon.socket],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [
        "lua says: computing for Alice",
        "returned: ['success']",
        'output: {"isAdult": true, "message": "Hello, Alice", "userId": 123}',
    ]


def test_the_example_against_a_missing_socket_fails_with_a_clear_error(tmp_path):
    missing = tmp_path / "none.sock"
    out = subprocess.run([sys.executable, str(SCRIPT), "--socket", str(missing)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "ConnectFailedError: cannot connect to the luapool daemon at" in out.stderr
    assert "no such socket" in out.stderr
