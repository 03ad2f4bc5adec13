-- Best Practice 2: Validate Input in Lua.
--   luapool run examples/bp2_validate_input.lua --input examples/bp2_valid_user.json    → {"userId": 7}
--   luapool run examples/bp2_validate_input.lua --input examples/bp2_bad_user_id.json   → {"error": "Invalid user ID"}
--   luapool run examples/bp2_validate_input.lua                                         → {"error": "Missing user data"}

-- Check input exists and has expected structure
if not _io.input or not _io.input.user then
  _io.output = { error = "Missing user data" }
  return
end

if type(_io.input.user.id) ~= "number" then
  _io.output = { error = "Invalid user ID" }
  return
end

-- Process valid input
local userId = _io.input.user.id
_io.output = { userId = userId }
