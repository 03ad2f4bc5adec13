-- Pattern 5: Incremental Field Updates. The host sets the input, then one more
-- field with set_input_field("currentUser", ...); both are visible here.
-- From the command line the JSON holds both fields:
--   luapool run examples/pattern5_incremental_fields.lua --input examples/pattern5_incremental_fields.json
-- prints "Max items: 100" and "Current user: Alice" on stderr.

-- Both config and currentUser are available
print("Max items: " .. _io.input.config.maxItems)
print("Current user: " .. _io.input.currentUser.name)
