-- Best Practice 6: Combine with _home for Persistence. _home outlives the
-- compute: run this twice on one session (or on sessions sharing a home) and
-- totalProcessed grows; each `luapool run` starts a fresh home.
--   luapool run examples/bp6_home_persistence.lua --input examples/pattern3_pipeline.json
-- prints {"processed": 4, "totalProcessed": 4}.

-- Use _io for request data
local items = _io.input.items

-- Use _home for persistent state
if not _home.processedCount then
  _home.processedCount = 0
end

-- Process and update persistent state
for i, item in ipairs(items) do
  -- Process item
  _home.processedCount = _home.processedCount + 1
end

-- Return current state
_io.output = {
  processed = #items,
  totalProcessed = _home.processedCount
}
