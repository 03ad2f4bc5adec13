-- Advanced Topics: Type Conversions, both ways.
--   luapool run examples/type_conversions.lua --input examples/type_conversions.json
-- prints the Lua type of each input field on stderr ("null" is absent: a nil
-- field does not exist), and
-- {"array": [1, 2, 3], "bool": false, "int": 123, "object": {"a": 1, "b": 2}, "str": "hello"}
-- ("nothing" is absent too: assigning nil stores nothing).
local names = {}
for k in pairs(_io.input) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do
  print(k, type(_io.input[k]))
end
print("null", type(_io.input.null), "undefined", type(_io.input.undefined))

_io.output = {
  nothing = nil,
  bool = false,
  int = 123,
  str = "hello",
  object = _io.input.object,   -- an external table: an object
  array = { 1, 2, 3 },         -- keys 1..n: an array
}
