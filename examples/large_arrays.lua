-- Advanced Topics: Working with Large Arrays — iterate 1 000 000 items,
-- reporting progress every 10 000. Generate the input with
--   python3 examples/gen_items.py 1000000 > /tmp/items-1m.json
local items = _io.input.items
local processed = 0

for i = 1, #items do
  -- Process each item
  local item = items[i]
  -- ... do work ...
  processed = processed + 1

  -- Optional: Report progress every 10000 items
  if processed % 10000 == 0 then
    print("Processed: " .. processed)
  end
end

_io.output = { processed = processed }
