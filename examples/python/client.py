#!/usr/bin/env python3
"""Talk to `luapool serve` with nothing but the `msgpack` package and a socket.

    luapool serve --socket /tmp/luapool.sock &
    python3 examples/python/client.py --socket /tmp/luapool.sock

Opens a session, sets its input, runs a compute (its print lines arrive as
"log" notifications while it runs), reads the output, prints it, closes the
session. The wire protocol is in docs/protocol.md.
"""

import argparse
import json
import socket

import msgpack


class Client:
    """A minimal MessagePack-RPC client: one request at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        # raw=False: MessagePack str -> Python str; bin stays bytes.
        # strict_map_key=False: Lua tables may have integer keys.
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.next_id = 0

    def call(self, method, *params):
        self.next_id += 1
        msgid = self.next_id
        self.sock.sendall(msgpack.packb([0, msgid, method, list(params)]))
        while True:
            for msg in self.unpacker:
                if msg[0] == 2:  # notification: [2, "log", [session, msgid, line]]
                    _, name, args = msg
                    if name == "log":
                        print("lua says:", args[2])
                    continue
                _, reply_id, error, result = msg  # response: [1, msgid, error, result]
                if reply_id != msgid:
                    continue
                if error is not None:
                    raise RuntimeError(f"{error['kind']}: {error['message']}")
                return result
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the daemon closed the connection")
            self.unpacker.feed(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", default="/tmp/luapool.sock")
    args = ap.parse_args()

    c = Client(args.socket)
    session = c.call("session.open")
    c.call("set_input", session, {"user": {"id": 123, "name": "Alice", "age": 30}})
    result = c.call("compute", session, """
        local user = _io.input.user
        print("computing for " .. user.name)
        _io.output = {
          message = "Hello, " .. user.name,
          isAdult = user.age >= 18,
          userId = user.id,
        }
        return "success"
    """, {"timeout_ms": 5000})
    print("returned:", result["values"])
    output = c.call("get_output", session)
    print("output:", json.dumps(output, sort_keys=True))
    c.call("session.close", session)


if __name__ == "__main__":
    main()
