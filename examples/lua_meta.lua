-- Lua API: _io.meta — read the host's metadata and add runtime metadata.
--   luapool run examples/lua_meta.lua --meta examples/set_metadata.meta.json
-- prints "Request ID: req-12345" and "Version: 1.0.0" on stderr.

-- Access metadata
print("Request ID: " .. _io.meta.requestId)
print("Version: " .. _io.meta.version)

-- Add runtime metadata
_io.meta.executionTime = os.clock()
_io.meta.itemsProcessed = 100

_io.output = { itemsProcessed = _io.meta.itemsProcessed }
