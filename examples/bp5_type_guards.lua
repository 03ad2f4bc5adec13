-- Best Practice 5: Use Type Guards.
--   luapool run examples/bp5_type_guards.lua --input examples/bp5_number.json --return   → 42
--   echo '{"value": "hi"}'        | luapool run examples/bp5_type_guards.lua --input - --return → "HI"
--   echo '{"value": [1, 2, 3]}'   | luapool run examples/bp5_type_guards.lua --input - --return → 3
--   echo '{"value": true}'        | luapool run examples/bp5_type_guards.lua --input - --return → "unknown type"

-- Check types before operations
local value = _io.input.value

if type(value) == "number" then
  return value * 2
elseif type(value) == "string" then
  return string.upper(value)
elseif type(value) == "table" then
  return #value
else
  return "unknown type"
end
