-- Pattern 3, step 1: Filter — keep the active items.
--   luapool run examples/pattern3_filter.lua --input examples/pattern3_pipeline.json \
--     | luapool run examples/pattern3_transform.lua --input -
local filtered = ext.table()
local count = 0
for i, item in ipairs(_io.input.items) do
  if item.active then
    count = count + 1
    filtered[count] = item
  end
end
_io.output = { items = filtered }
