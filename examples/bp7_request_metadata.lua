-- Best Practice 7: Add Request Metadata.
--   luapool run examples/bp7_request_metadata.lua --input examples/bp7_request_metadata.json \
--     --meta examples/bp7_request_metadata.meta.json
-- prints "Request ID: 6f1c…" on stderr and {"itemCount": 3, "total": 60, "userId": 123}.

-- The reference leaves processData to the application; this one sums the data.
local function processData(data, userId)
  local total = 0
  for _, v in ipairs(data) do
    total = total + v
  end
  return { userId = userId, itemCount = #data, total = total }
end

-- Log request
print("Request ID: " .. _io.meta.requestId)

-- Process with context
local result = processData(_io.input.data, _io.meta.userId)

_io.output = result
