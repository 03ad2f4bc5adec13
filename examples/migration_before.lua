-- Migration, before: the data is written into the code and the result comes
-- back as a string.
--   luapool run examples/migration_before.lua --return
-- prints "6".
local data = {1, 2, 3}
local sum = 0
for i, v in ipairs(data) do
  sum = sum + v
end
return tostring(sum)
