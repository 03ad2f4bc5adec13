-- Advanced Topics: Nested Table Access — each level is an external table lookup.
--   luapool run examples/deep_nesting.lua --input examples/deep_nesting.json --return
-- prints "deep value" on stderr and returns "deep value".
local deep = _io.input.level1.level2.level3.level4.value
print(deep) -- "deep value"
return deep
