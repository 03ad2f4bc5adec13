-- Pattern 1: Request/Response — an API-like call.
--   luapool run examples/pattern1_request_response.lua --input examples/pattern1_request_response.json
-- prints {"average": 3.0, "count": 5, "sum": 15}.
local method = _io.input.method
local params = _io.input.params

if method == "calculateStats" then
  local sum = 0
  local count = #params.dataset
  for i, v in ipairs(params.dataset) do
    sum = sum + v
  end

  _io.output = {
    sum = sum,
    average = sum / count,
    count = count
  }
else
  _io.output = { error = "Unknown method" }
end
