-- Lua API: _io.input — read-only access to the input.
--   luapool run examples/lua_input.lua --input examples/lua_input.json
-- prints "1	Item 1", "2	Item 2" and "Field exists" on stderr.

-- Access simple values
local message = _io.input.message
local count = _io.input.count

-- Access nested structures
local userName = _io.input.user.name
local city = _io.input.user.address.city

-- Iterate arrays
for i, item in ipairs(_io.input.items) do
  print(i, item.name)
end

-- Check for existence
if _io.input.optionalField ~= nil then
  print("Field exists")
end

_io.output = { message = message, count = count, userName = userName, city = city }
