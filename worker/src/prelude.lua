-- The Lua half of external tables. Run once per worker with the Rust half
-- (table R) as its argument; returns the functions the Rust side and the
-- sandbox need. Nothing here is reachable from untrusted code except through
-- the metamethods and the sandbox wrappers it returns.
--
-- An external table is three plain tables:
--   P  the proxy Lua code sees: empty but for its id under a private key
--      (IDKEY, below), so every read and write of a script's key reaches
--      the metatable (type(P) == "table", P == P);
--   M  P's metatable: __index = D, the metamethods, and lp_* state;
--   D  the cache of entries read (and written) during this compute. When D
--      holds every entry the table is complete and D has no metatable;
--      otherwise (M.lp_incomplete) D's metatable sends misses to R.fetch,
--      which fills D.
-- Complete tables are built in bulk from Rust (materialize.rs) with the
-- same layout, M = { __index, __newindex, __len, __pairs, __name, lp_id }
-- (every other lp_* field defaults to nil). Reading t.k therefore costs two
-- table lookups and no function call once the entry is cached.
--
-- That is for writable tables. A read-only table (the input and all it
-- holds) is a light userdata whose pointer is its id; its contents stay in
-- Rust (ro_cache.rs) and the metatable of all light userdata reads them
-- (ro_meta.rs, with UD_NEWINDEX and UD_PAIRS from here). The sandbox's
-- `type` calls them tables.
local R = ...
local getmetatable, setmetatable, rawget, rawset, rawlen, next, type, error, tostring =
      getmetatable, setmetatable, rawget, rawset, rawlen, next, type, error, tostring

local function keystr(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return tostring(k)
end

local function MISS(d, k)
  local v, err = R.fetch(getmetatable(d).lp_m, d, k)
  if err ~= nil then error(err, 2) end
  return v
end

-- Makes D of M answer misses from the supervisor.
local function incomplete(m)
  m.lp_incomplete = true
  setmetatable(m.__index, { __index = MISS, lp_m = m })
end

local function NEWINDEX(p, k, v)
  local m = getmetatable(p)
  if m.lp_io and k == "input" then
    error("_io.input is read-only: cannot replace it", 2)
  end
  local cacheable, err = R.write(m.lp_id, k, v)
  if err ~= nil then error(err, 2) end
  local d = m.__index
  if cacheable then
    rawset(d, k, v)
  else
    -- A table: the store copied a plain table into a new external table,
    -- or an external table from the other arena (session vs home) into
    -- this one, under an id the worker has not seen: forget the entry so
    -- the next read fetches it (a table of this arena keeps its proxy).
    rawset(d, k, nil)
    if not m.lp_incomplete then incomplete(m) end
  end
  m.lp_len = nil
end

-- __newindex of read-only tables.
local function UD_NEWINDEX(_, k)
  error("_io.input is read-only: cannot write key " .. keystr(k), 2)
end

local function LEN(p)
  local m = getmetatable(p)
  if not m.lp_incomplete then return rawlen(m.__index) end
  local n = m.lp_len
  if n == nil then
    local err
    n, err = R.len(m.lp_id)
    if err ~= nil then error(err, 2) end
    m.lp_len = n
  end
  return n
end

-- Iterates an incomplete table in batches fetched from the supervisor.
local function batches(id)
  local keys, vals, i, n, done, after = nil, nil, 0, 0, false, nil
  return function()
    i = i + 1
    if i > n then
      if done then return nil end
      local err
      keys, vals, n, done, err = R.next_batch(id, after, 512)
      if err ~= nil then error(err, 2) end
      i = 1
      if n == 0 then return nil end
    end
    local k = keys[i]
    after = k
    return k, vals[i]
  end
end

local function PAIRS(p)
  local m = getmetatable(p)
  if not m.lp_incomplete then return next, m.__index, nil end
  return batches(m.lp_id), p, nil
end

local RO_NEXT, RO_INFO = R.ro_next, R.ro_info

-- __pairs of read-only tables: from the cache when it holds the whole table.
local function UD_PAIRS(u)
  local id, complete = RO_INFO(u)
  if complete then return RO_NEXT, u, nil end
  return batches(id), u, nil
end

-- A writable external table's proxy, and only one, holds its id under
-- IDKEY: no script can make that key, so no plain table passes for an
-- external one.
local IDKEY = R.idkey
local function is_external(t)
  if type(t) ~= "table" or rawget(t, IDKEY) == nil then return nil end
  return getmetatable(t)
end

-- The sandbox's next: external tables iterate their entries.
local function NEXT(t, k)
  if RO_INFO(t) then return RO_NEXT(t, k) end
  local m = is_external(t)
  if m == nil then return next(t, k) end
  if not m.lp_incomplete then return next(m.__index, k) end
  local keys, vals, n, _, err = R.next_batch(m.lp_id, k, 1)
  if err ~= nil then error(err, 2) end
  if n == 0 then return nil end
  return keys[1], vals[1]
end

-- The sandbox's rawset: writing into the empty proxy would hide a value
-- from every later read and write (they would no longer reach the
-- metamethods) and bypass read-only input, so it is refused.
local function RAWSET(t, k, v)
  if RO_INFO(t) or is_external(t) then
    error("rawset cannot write to an external table (assign t[k] = v)", 2)
  end
  return rawset(t, k, v)
end

local function GETMETATABLE(t)
  if is_external(t) then return "external table" end
  return getmetatable(t)
end

-- The sandbox's rawget and rawlen see a read-only table as they see a
-- writable one's proxy: empty.
local function RAWGET(t, k)
  if RO_INFO(t) then return nil end
  return rawget(t, k)
end

local function RAWLEN(t)
  if RO_INFO(t) then return 0 end
  return rawlen(t)
end

local function SETMETATABLE(t, mt)
  if RO_INFO(t) or is_external(t) then
    error("cannot change the metatable of an external table", 2)
  end
  return setmetatable(t, mt)
end

-- Builds an external table: the proxy, its metatable and its cache.
-- `d` is the cache, already filled by the caller when `complete`.
local function make(id, complete, len, d, io)
  local m = {
    __index = d, __newindex = NEWINDEX, __len = LEN, __pairs = PAIRS,
    __name = "external table",
    lp_id = id, lp_len = len, lp_io = io or nil,
  }
  if not complete then incomplete(m) end
  return setmetatable({ [IDKEY] = id }, m)
end

return {
  make = make, newindex = NEWINDEX, len = LEN, pairs_ = PAIRS,
  next = NEXT, getmetatable = GETMETATABLE, setmetatable = SETMETATABLE, rawset = RAWSET,
  rawget = RAWGET, rawlen = RAWLEN,
  ud_mt = { __newindex = UD_NEWINDEX, __pairs = UD_PAIRS },
}
