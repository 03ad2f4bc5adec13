-- Comparison, current approach: data hardcoded in Lua, a bare return value.
--   luapool run examples/comparison_old_approach.lua --return
-- prints 15.
local data = {1, 2, 3, 4, 5}
local sum = 0
for i, v in ipairs(data) do
  sum = sum + v
end
return sum
