-- Comparison, new approach: dynamic data in, structured data out.
--   luapool run examples/comparison_new_approach.lua --input examples/comparison_new_approach.json
-- prints {"average": 3.0, "count": 5, "sum": 15}.
local data = _io.input.data
local sum = 0
for i, v in ipairs(data) do
  sum = sum + v
end
_io.output = {
  sum = sum,
  count = #data,
  average = sum / #data
}
