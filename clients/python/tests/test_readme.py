"""The README's quick start, run as written against a real daemon (its
Python block, with the daemon's socket in place of ``/tmp/luapool.sock``)."""

import ast
import re
import subprocess
import sys

from conftest import HANG, REPO


def quick_start() -> str:
    readme = (REPO / "clients" / "python" / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "a ```python block in the README's quick start"
    return block.group(1)


def test_the_readmes_quick_start_runs_as_written_and_prints_what_it_says(daemon, tmp_path):
    code = quick_start()
    assert '"/tmp/luapool.sock"' in code, code
    script = tmp_path / "quick_start.py"
    script.write_text(code.replace('"/tmp/luapool.sock"', repr(daemon.socket)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=HANG)
    assert out.returncode == 0, out.stderr
    # What the README's comment says it prints (values, logs, output).
    [said] = [line[2:] for line in code.splitlines() if line.startswith("# ['success']")]
    assert printed(out.stdout.strip()) == printed(said)


def printed(line: str):
    """The three values of a ``print(values, logs, output)`` line."""
    parts = re.fullmatch(r"(\[.*?\]) (\[.*?\]) (\{.*\})", line)
    assert parts, line
    return [ast.literal_eval(p) for p in parts.groups()]
