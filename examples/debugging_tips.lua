-- Advanced Topics: Debugging Tips — log the input's structure and the output.
--   luapool run examples/debugging_tips.lua --input examples/quick_start.json
-- prints "Input type: table", "  user = external table: 0x…" and
-- "Output:	external table: 0x…" on stderr.

-- Log input structure
print("Input type: " .. type(_io.input))
for k, v in pairs(_io.input) do
  print("  " .. k .. " = " .. tostring(v))
end

_io.output = { ok = true }

-- Log output before returning
print("Output:", tostring(_io.output))
