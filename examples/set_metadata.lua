-- setMetadata(meta): _io.meta, for tracking and debugging.
--   luapool run examples/set_metadata.lua --meta examples/set_metadata.meta.json
-- prints "Request ID: req-12345" on stderr.
print("Request ID: " .. _io.meta.requestId)
-- Process data
