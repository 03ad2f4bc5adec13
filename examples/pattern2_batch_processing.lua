-- Pattern 2: Batch Processing — statistics over a large array of records.
-- Input: {"items": [{"id": 0, "value": 63.9}, ...]}; generate 100 000 records with
--   python3 examples/gen_items.py 100000 > /tmp/items.json
local items = _io.input.items
local stats = {
  count = #items,
  sum = 0,
  min = math.huge,
  max = -math.huge
}

for i = 1, #items do
  local value = items[i].value
  stats.sum = stats.sum + value
  stats.min = math.min(stats.min, value)
  stats.max = math.max(stats.max, value)
end

stats.average = stats.sum / stats.count
_io.output = stats
