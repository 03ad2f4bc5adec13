-- Pattern 4: Aggregation and Grouping.
--   luapool run examples/pattern4_aggregation.lua --input examples/pattern4_aggregation.json
-- prints {"groups": [{"count": 2, "total": 175, "userId": 1},
--                    {"count": 2, "total": 175, "userId": 2}]}
-- (the order of the groups is pairs() order: either way round).
local byUser = {}

for i, tx in ipairs(_io.input.transactions) do
  local userId = tx.userId
  if not byUser[userId] then
    byUser[userId] = { userId = userId, total = 0, count = 0 }
  end
  byUser[userId].total = byUser[userId].total + tx.amount
  byUser[userId].count = byUser[userId].count + 1
end

-- Convert to array
local result = ext.table()
for userId, data in pairs(byUser) do
  result[#result + 1] = data
end

_io.output = { groups = result }
