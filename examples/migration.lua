-- Migration, after: the data comes in as _io.input, any size.
--   python3 examples/gen_items.py --numbers 100000 > /tmp/data.json
--   luapool run examples/migration.lua --input /tmp/data.json
-- prints {"count": 100000, "sum": 5000050000}.
local data = _io.input.data
local sum = 0
for i, v in ipairs(data) do
  sum = sum + v
end
_io.output = { sum = sum, count = #data }
