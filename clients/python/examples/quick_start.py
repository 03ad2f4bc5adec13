#!/usr/bin/env python3
"""The reference's Quick Start through `luapool serve`, with the luapool package.

    pip install ./clients/python
    target/debug/luapool serve --socket /tmp/luapool.sock &
    python3 clients/python/examples/quick_start.py --socket /tmp/luapool.sock

Opens a session, sets its input, runs a compute (its print lines arrive
while it runs), reads the output, prints it, closes the session.
"""

import argparse
import json

import luapool


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", default="/tmp/luapool.sock")
    args = ap.parse_args()

    with luapool.connect(args.socket) as client, client.session() as lua:
        lua.set_input({"user": {"id": 123, "name": "Alice", "age": 30}})
        result = lua.compute("""
            local user = _io.input.user
            print("computing for " .. user.name)
            _io.output = {
              message = "Hello, " .. user.name,
              isAdult = user.age >= 18,
              userId = user.id,
            }
            return "success"
        """, timeout_ms=5000, on_log=lambda line: print("lua says:", line))
        print("returned:", result.values)
        print("output:", json.dumps(lua.get_output(), sort_keys=True))


if __name__ == "__main__":
    main()
