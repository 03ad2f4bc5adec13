-- A differential test of table.insert, table.remove, table.move and
-- table.sort on an external array: the array and a plain Lua model of it
-- go through the same random operations (including a sort whose
-- comparator fails part way, caught by pcall), and must hold the same
-- values after each, types included.
--
-- Run with SEED, N, STATE and PHASE defined before this text.
-- STATE: how the array is cached when the operations start:
--   "fresh"   built in this compute (cached whole)
--   "copied"  a plain table stored into an external one
--   "home"    built by an earlier compute (_home.arr; PHASE "build")
--   "partial" as "home", with a third of its values read first
-- PHASE "verify" (a later compute) checks that the store holds what the
-- operations left (_home.arr against _home.model, both read back).
math.randomseed(SEED)
local rnd = math.random

-- Distinct values of three types, floats with integral values among them
-- (an integer and a float must keep their types). Distinct, so that every
-- sort has one result (Lua's sort is not stable).
local function initial(i)
  if i % 3 == 0 then return "s" .. i end
  if i % 3 == 1 then return i + 0.5 end
  if i % 2 == 0 then return i * 1.0 end
  return i
end

if PHASE == "build" then
  local t = ext.table()
  for i = 1, N do t[i] = initial(i) end
  _home.arr = t
  return "built"
end

local function same(a, b)
  return a == b and math.type(a) == math.type(b)
end

if PHASE == "verify" then
  local t, m = _home.arr, _home.model
  if #t ~= #m then error(("length %d, expected %d"):format(#t, #m)) end
  for i = 1, #m + 1 do
    if not same(t[i], m[i]) then
      error(("stored at %d: %s, expected %s"):format(i, tostring(t[i]), tostring(m[i])))
    end
  end
  return #m
end

local t
if STATE == "fresh" then
  t = ext.table()
  for i = 1, N do t[i] = initial(i) end
elseif STATE == "copied" then
  local plain = {}
  for i = 1, N do plain[i] = initial(i) end
  local holder = ext.table()
  holder.arr = plain
  t = holder.arr
else
  t = _home.arr
  if STATE == "partial" then
    for i = 1, N, 3 do local _ = t[i] end
  end
end
local m = {}
for i = 1, N do m[i] = initial(i) end

local function check(what)
  if #t ~= #m then error(("after %s: length %d, expected %d"):format(what, #t, #m)) end
  for i = 1, #m + 1 do
    if not same(t[i], m[i]) then
      error(("after %s: at %d %s, expected %s"):format(what, i, tostring(t[i]), tostring(m[i])))
    end
  end
end

-- A total order on the values: numbers before strings.
local function less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  return a < b
end
local function greater(a, b) return less(b, a) end
-- Fails on its k-th call.
local function failing(k)
  local calls = 0
  return function(a, b)
    calls = calls + 1
    if calls == k then error("comparator gives up", 0) end
    return less(a, b)
  end
end

local counter = 1000000 -- inserted values are distinct from the rest
for round = 1, 12 do
  local n = #m
  local op = rnd(1, 8)
  counter = counter + 1
  local what
  if op == 1 then
    local pos = rnd(1, n + 1)
    table.insert(t, pos, counter); table.insert(m, pos, counter)
    what = "insert at " .. pos
  elseif op == 2 then
    table.insert(t, "a" .. counter); table.insert(m, "a" .. counter)
    what = "append"
  elseif op == 3 and n > 0 then
    local pos = rnd(1, n)
    local a, b = table.remove(t, pos), table.remove(m, pos)
    if not same(a, b) then error(("remove at %d gave %s, expected %s"):format(pos, tostring(a), tostring(b))) end
    what = "remove at " .. pos
  elseif op == 4 then
    local a, b = table.remove(t), table.remove(m)
    if not same(a, b) then error("remove gave " .. tostring(a)) end
    what = "remove last"
  elseif op == 5 and n > 0 then
    local f = rnd(1, n); local e = rnd(f, n); local d = rnd(1, n + 1)
    local r = table.move(t, f, e, d)
    if r ~= t then error("table.move did not return its table") end
    table.move(m, f, e, d)
    what = ("move %d..%d to %d"):format(f, e, d)
  elseif op == 6 then
    table.sort(t, less); table.sort(m, less)
    what = "sort"
  elseif op == 7 then
    table.sort(t, greater); table.sort(m, greater)
    what = "sort descending"
  else
    local k = rnd(1, math.max(1, n))
    local ok1, e1 = pcall(table.sort, t, failing(k))
    local ok2, e2 = pcall(table.sort, m, failing(k))
    if ok1 ~= ok2 or e1 ~= e2 then
      error(("failing sort: %s %s vs %s %s"):format(tostring(ok1), tostring(e1), tostring(ok2), tostring(e2)))
    end
    if n > 100 then
      -- Past 100 elements Lua's sort may pick a pivot at random (from the
      -- clock): two sorts stopped at one call may differ. The table holds
      -- its elements, in its own order, which the model takes.
      local count = {}
      for i = 1, n do count[m[i]] = (count[m[i]] or 0) + 1 end
      for i = 1, n do
        local v = t[i]
        if not count[v] then error("failing sort: " .. tostring(v) .. " appeared") end
        count[v] = count[v] - 1
        if count[v] == 0 then count[v] = nil end
      end
      for i = 1, n do m[i] = t[i] end
    end
    what = "sort failing at call " .. k
  end
  check(what .. " (round " .. round .. ")")
end
-- What the store holds, read back in the next compute (a fresh or copied
-- table is copied into _home from the store).
if STATE == "fresh" or STATE == "copied" then _home.arr = t end
_home.model = m
return #m
