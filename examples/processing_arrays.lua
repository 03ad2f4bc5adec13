-- Quick Start: Processing Arrays.
--   luapool run examples/processing_arrays.lua --input examples/processing_arrays.json
-- prints {"count": 5, "sum": 15}.
local sum = 0
for i, n in ipairs(_io.input.numbers) do
  sum = sum + n
end

_io.output = { sum = sum, count = #_io.input.numbers }
