-- Best Practice 3: Use Meaningful Structure — request and context, not m/u/o/t.
--   luapool run examples/bp3_meaningful_structure.lua --input examples/bp3_meaningful_structure.json
-- prints {"method": "processOrders", "orderCount": 2, "total": 35.5, "userId": 123, "version": "1.0"}.
local request = _io.input.request
local context = _io.input.context

local total = 0
for _, order in ipairs(request.params.orders) do
  total = total + order.amount
end

_io.output = {
  method = request.method,
  userId = request.params.userId,
  orderCount = #request.params.orders,
  total = total,
  version = context.version
}
