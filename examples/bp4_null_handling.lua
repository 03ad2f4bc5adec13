-- Best Practice 4: Handle Null and Undefined — a JSON null and a missing
-- field are both nil in Lua.
--   luapool run examples/bp4_null_handling.lua --input examples/bp4_null_handling.json
-- prints "value is nil" and "missing is nil" on stderr.
if _io.input.value == nil then
  print("value is nil")
end

if _io.input.missing == nil then
  print("missing is nil")
end
