-- A small JSON decoder in plain Lua: what a script must do when its data
-- arrives as one JSON string (the approach the _io tables replace).
local byte, sub, find, tonumber, char = string.byte, string.sub, string.find, tonumber, string.char
local decode_value

local function skip(s, i)
  local _, e = find(s, "^[ \n\r\t]*", i)
  return e + 1
end

local escapes = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_string(s, i)
  local j = i + 1
  local parts, n = {}, 0
  while true do
    local a, b = find(s, '["\\]', j)
    if byte(s, a) == 34 then
      n = n + 1; parts[n] = sub(s, j, a - 1)
      return table.concat(parts), a + 1
    end
    n = n + 1; parts[n] = sub(s, j, a - 1)
    local c = sub(s, a + 1, a + 1)
    if c == "u" then
      n = n + 1; parts[n] = utf8.char(tonumber(sub(s, a + 2, a + 5), 16)); j = a + 6
    else
      n = n + 1; parts[n] = escapes[c] or c; j = a + 2
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = byte(s, i)
  if c == 123 then -- {
    local t = {}
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return t, i + 1 end
    while true do
      local k; k, i = decode_string(s, skip(s, i))
      i = skip(s, i) + 1 -- ':'
      t[k], i = decode_value(s, i)
      i = skip(s, i)
      local d = byte(s, i); i = i + 1
      if d == 125 then return t, i end
    end
  elseif c == 91 then -- [
    local t, n = {}, 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return t, i + 1 end
    while true do
      n = n + 1
      t[n], i = decode_value(s, i)
      i = skip(s, i)
      local d = byte(s, i); i = i + 1
      if d == 93 then return t, i end
    end
  elseif c == 34 then
    return decode_string(s, i)
  elseif c == 116 then return true, i + 4
  elseif c == 102 then return false, i + 5
  elseif c == 110 then return nil, i + 4
  else
    local _, e = find(s, "^-?[%d.eE+-]+", i)
    return tonumber(sub(s, i, e)), e + 1
  end
end

return function(s) return (decode_value(s, 1)) end
