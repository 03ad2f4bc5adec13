-- Performance Considerations: Memory Usage — the data stays in the supervisor;
-- the worker holds a bounded window of it while ipairs walks 1 000 000 items.
--   python3 examples/gen_items.py 1000000 > /tmp/items-1m.json
--   luapool run examples/memory_usage.lua --input /tmp/items-1m.json
-- prints {"processed": 1000000}. (The JavaScript and Python clients' tests run it
-- on 1 000 000 records, the Rust tests on 100 000.)
local count = 0
for i, item in ipairs(_io.input.items) do
  count = count + 1
  -- Only one item at a time is in WASM memory
end
_io.output = { processed = count }
