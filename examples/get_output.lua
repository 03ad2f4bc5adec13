-- getOutput(): the output Lua sets comes back with its structure.
--   luapool run examples/get_output.lua
-- prints {"count": 10, "items": [1, 2, 3], "result": "processed"}.
_io.output = {
  result = "processed",
  count = 10,
  items = {1, 2, 3}
}
