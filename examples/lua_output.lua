-- Lua API: _io.output — set it whole, nested, or build it incrementally in an
-- external table; the last assignment wins.
--   luapool run examples/lua_output.lua --input examples/lua_input.json
-- prints {"count": 2}.

-- Set simple output
_io.output = {
  status = "ok",
  message = "Processing complete"
}

-- Set nested output
_io.output = {
  results = {
    processed = 100,
    errors = 0
  },
  items = {
    {id = 1, status = "done"},
    {id = 2, status = "done"}
  }
}

-- Build output incrementally
local result = ext.table()
result.count = 0
for i, item in ipairs(_io.input.items) do
  result.count = result.count + 1
end
_io.output = result
