-- Pattern 6: Error Handling — a structured error response instead of a failure.
--   luapool run examples/pattern6_error_handling.lua --input examples/pattern6_error_handling.json
-- prints {"code": "MATH_ERROR", "error": "pattern6_error_handling.lua:6: Division by zero", "status": "error"}.
local success, result = pcall(function()
  if _io.input.b == 0 then
    error("Division by zero")
  end
  return _io.input.a / _io.input.b
end)

if success then
  _io.output = {
    status = "ok",
    result = result
  }
else
  _io.output = {
    status = "error",
    error = result,
    code = "MATH_ERROR"
  }
end
