-- Pattern 3, step 2: Transform — the output of step 1 is this step's input.
--   luapool run examples/pattern3_filter.lua --input examples/pattern3_pipeline.json \
--     | luapool run examples/pattern3_transform.lua --input -
-- prints {"items": [{"age": 30, "fullName": "Ada Lovelace", "id": 1},
--                   {"age": 41, "fullName": "Grace Hopper", "id": 3}]}.
local transformed = ext.table()
for i, item in ipairs(_io.input.items) do
  transformed[i] = {
    id = item.id,
    fullName = item.firstName .. " " .. item.lastName,
    age = item.age
  }
end
_io.output = { items = transformed }
