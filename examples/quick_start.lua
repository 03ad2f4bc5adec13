-- Quick Start: Basic Input/Output.
--   luapool run examples/quick_start.lua --input examples/quick_start.json
-- prints {"isAdult": true, "message": "Hello, Alice", "userId": 123};
-- with --return it prints "success" instead.
local user = _io.input.user
local greeting = "Hello, " .. user.name

_io.output = {
  message = greeting,
  isAdult = user.age >= 18,
  userId = user.id
}

return "success"
