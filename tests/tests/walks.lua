-- A differential walk: an external table and a plain Lua model of it go
-- through the same random assignments while `pairs` (or `next`) walks the
-- external one. Lua's rule is the contract: every key present for the
-- whole walk is visited exactly once, a key cleared before the walk reaches
-- it is not visited, and each value read is the current one.
--
-- Run with SEED, N, STATE, HOW and PHASE defined before this text.
-- STATE: how the table is cached when the walk starts:
--   "fresh"   built in this compute (cached whole)
--   "copied"  a plain table stored into an external one (t.data = {...})
--   "home"    built by an earlier compute (_home.walk; PHASE "build" makes it)
--   "partial" as "home", with a third of its values read before the walk
-- HOW: "pairs" or "next".
math.randomseed(SEED)
local rnd = math.random

local function key(i)
  if i % 3 == 0 then return "k" .. i end
  if i % 7 == 0 then return i + 0.5 end
  return i
end

local function initial(i)
  if i % 5 == 0 then return { tag = "t" .. i } end
  return i * 10
end

if PHASE == "build" then
  local t = ext.table()
  for i = 1, N do t[key(i)] = initial(i) end
  _home.walk = t
  return "built"
end

local t
if STATE == "fresh" then
  t = ext.table()
  for i = 1, N do t[key(i)] = initial(i) end
elseif STATE == "copied" then
  local plain = {}
  for i = 1, N do plain[key(i)] = initial(i) end
  local holder = ext.table()
  holder.data = plain
  t = holder.data
else
  t = _home.walk
  if STATE == "partial" then
    for i = 1, N, 3 do local _ = t[key(i)] end
  end
end

-- The model: key -> current value, a table value as its tag.
local function tag(v)
  if type(v) == "table" then return "T:" .. tostring(v.tag) end
  return v
end
local model, keys = {}, {}
for i = 1, N do model[key(i)] = tag(initial(i)); keys[i] = key(i) end

local visited, cleared, counter = {}, {}, 0
local function mutate()
  for _ = 1, rnd(0, 3) do
    local kk = keys[rnd(1, #keys)]
    if model[kk] ~= nil then -- only existing fields may be assigned
      local op = rnd(1, 6)
      counter = counter + 1
      if op == 1 then
        t[kk] = nil; model[kk] = nil; cleared[kk] = true
      elseif op == 2 then
        t[kk] = counter; model[kk] = counter
      elseif op == 3 then
        t[kk] = { tag = counter }; model[kk] = "T:" .. counter
      elseif op == 4 then
        t[kk] = { tag = counter, inner = { counter } }; model[kk] = "T:" .. counter
      elseif op == 5 then
        local o = ext.table(); o.tag = counter
        t[kk] = o; model[kk] = "T:" .. counter
      else
        local v = t[kk]
        if tag(v) ~= model[kk] then
          error(("read %s at %s, expected %s"):format(tostring(tag(v)), tostring(kk), tostring(model[kk])))
        end
      end
    end
  end
end

local function visit(k, v)
  if visited[k] then error("visited twice: " .. tostring(k)) end
  visited[k] = true
  if model[k] == nil then error("visited a cleared or unknown key: " .. tostring(k)) end
  if tag(v) ~= model[k] then
    error(("stale value at %s: %s, expected %s"):format(tostring(k), tostring(tag(v)), tostring(model[k])))
  end
  mutate()
end

if HOW == "pairs" then
  for k, v in pairs(t) do visit(k, v) end
else
  local k, v = next(t)
  while k ~= nil do
    visit(k, v)
    k, v = next(t, k)
  end
end

local n = 0
for i = 1, N do
  local k = key(i)
  if not cleared[k] then
    n = n + 1
    if not visited[k] then error("never visited: " .. tostring(k)) end
  end
end
-- And the table now holds exactly the model.
local left = 0
for k, v in pairs(t) do
  left = left + 1
  if tag(v) ~= model[k] then error("after the walk, " .. tostring(k) .. " is " .. tostring(tag(v))) end
end
if left ~= n then error(("after the walk %d keys, expected %d"):format(left, n)) end
return n
