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
-- Complete tables are built in bulk from Rust (writable/materialize.rs) with the
-- same layout, M = { __index, __newindex, __len, __pairs, __name, lp_id }
-- (every other lp_* field defaults to nil). Reading t.k therefore costs two
-- table lookups and no function call once the entry is cached.
--
-- That is for writable tables. A read-only table (the input and all it
-- holds) is a light userdata whose pointer is its id; its contents stay in
-- Rust (readonly/cache.rs) and the metatable of all light userdata reads
-- them (readonly/meta.rs, with UD_NEWINDEX and UD_PAIRS from here). The sandbox's
-- `type` calls them tables.
local R = ...
local getmetatable, setmetatable, rawget, rawset, rawlen, next, type, error, tostring, select =
      getmetatable, setmetatable, rawget, rawset, rawlen, next, type, error, tostring, select
local move = table.move

-- Raises an error of the Rust half at the script's line. Each Rust
-- callback returns its values, or nil, the error's message and whether it
-- is running out of memory, which is raised as Lua's memory error is (no
-- position; the sandbox's pcall keeps it sticky, and the compute ends as
-- MemoryLimit).
local function fail(err, memory, level)
  if memory then error(err, 0) end
  error(err, level or 3)
end

local function keystr(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return tostring(k)
end

local function MISS(d, k)
  local v, err, memory = R.fetch(getmetatable(d).lp_m, d, k)
  if err ~= nil then fail(err, memory) end
  return v
end

-- Makes D of M answer misses from the supervisor.
local function incomplete(m)
  m.lp_incomplete = true
  setmetatable(m.__index, { __index = MISS, lp_m = m })
end

-- A walk by batches (see `batches`) keeps a log of the writes made to its
-- table since its batch was fetched: M.lp_walks is a weak-keyed set of
-- those logs (a walk abandoned by `break` drops out with its iterator).
-- NIL stands for a key cleared; log[STALE] says that many keys changed
-- at once (a move, a sort): the walk reads each value through the cache.
local NIL = {}
local STALE = {}
local WEAK_KEYS = { __mode = "k" }
-- Strings longer than this are not kept in a partial cache.
local BIG = 64 * 1024

local function NEWINDEX(p, k, v)
  local m = getmetatable(p)
  if m.lp_io and k == "input" then
    error("_io.input is read-only: cannot replace it", 2)
  end
  -- R.write returns what the entry now holds as this compute sees it: v,
  -- or for a plain table the proxy of the new external table the store
  -- fills from it. A table of the other arena (session vs home) is copied
  -- by the store under an id the worker learns only by reading it back
  -- (`refetch`). Either way the cache entry is replaced in place, never
  -- dropped and refilled, so a walk over the cache sees each key once.
  -- (The third result is `memory` with an error, else `refetch`.)
  local c, err, refetch = R.write(m.lp_id, k, v)
  if err ~= nil then fail(err, refetch) end
  if refetch then
    local memory
    c, err, memory = R.fetch(m, m.__index, k)
    if err ~= nil then fail(err, memory) end
  end
  if m.lp_incomplete and type(c) == "string" and #c > BIG then
    -- A partial cache keeps no big string: the store has it.
    rawset(m.__index, k, nil)
  else
    rawset(m.__index, k, c)
  end
  m.lp_len = nil
  local walks = m.lp_walks
  if walks ~= nil then
    if c == nil then c = NIL end
    for log in next, walks do log[k] = c end
  end
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
    local err, memory
    n, err, memory = R.len(m.lp_id)
    if err ~= nil then fail(err, memory) end
    m.lp_len = n
  end
  return n
end

-- Iterates a table not cached whole in batches fetched from the supervisor
-- (each fetch first sends the writes buffered so far). Lua's rule for a
-- walk holds: a value assigned during the walk is the one returned, a key
-- cleared during the walk is not returned. For a writable table `m` is
-- its metatable, where the walk registers its log of writes (NEWINDEX
-- fills it); a read-only table (m == nil) cannot change.
local function batches(id, m)
  local keys, vals, i, n, done, after, log = nil, nil, 0, 0, false, nil, nil
  return function()
    while true do
      i = i + 1
      if i > n then
        if log ~= nil then m.lp_walks[log] = nil; log = nil end
        if done then return nil end
        keys, vals, n, done = R.next_batch(id, after, 512)
        -- An error: nil, its message, memory.
        if keys == nil then fail(vals, n) end
        i = 1
        if n == 0 then return nil end
        if m ~= nil then
          local walks = m.lp_walks
          if walks == nil then
            walks = setmetatable({}, WEAK_KEYS)
            m.lp_walks = walks
          end
          log = {}
          walks[log] = true
        end
      end
      local k = keys[i]
      after = k
      local v = vals[i]
      if log ~= nil then
        if log[STALE] then
          v = m.__index[k]
        else
          local w = log[k]
          if w ~= nil then
            if w == NIL then v = nil else v = w end
          end
        end
      end
      if v ~= nil then return k, v end
    end
  end
end

local RO_NEXT, RO_INFO = R.ro_next, R.ro_info

-- A writable external table's proxy, and only one, holds its id under
-- IDKEY: no script can make that key, so no plain table passes for an
-- external one.
local IDKEY = R.idkey
local function is_external(t)
  if type(t) ~= "table" or rawget(t, IDKEY) == nil then return nil end
  return getmetatable(t)
end

-- The sandbox's next: external tables iterate their entries. A plain
-- table's `next` is Lua's; a cached external table walks its cache, whose
-- entries writes replace in place; any other asks the supervisor for the
-- entry after `k` (writes are sent first, so it is current).
local function NEXT(t, k)
  if type(t) == "table" then
    if rawget(t, IDKEY) == nil then return next(t, k) end
    local m = getmetatable(t)
    if not m.lp_incomplete then return next(m.__index, k) end
    local keys, vals, n = R.next_batch(m.lp_id, k, 1)
    if keys == nil then fail(vals, n) end
    if n == 0 then return nil end
    return keys[1], vals[1]
  end
  if RO_INFO(t) then return RO_NEXT(t, k) end
  return next(t, k)
end

-- __pairs of writable tables: `next` itself when the table is cached whole
-- (as for a plain table), else a walk by batches. Neither hands the script
-- anything but the proxy it already holds.
local function PAIRS(p)
  local m = getmetatable(p)
  if not m.lp_incomplete then return NEXT, p, nil end
  return batches(m.lp_id, m), p, nil
end

-- __pairs of read-only tables: from the cache when it holds the whole table.
local function UD_PAIRS(u)
  local id, complete = RO_INFO(u)
  if complete then return NEXT, u, nil end
  return batches(id, nil), u, nil
end

-- The sandbox's pairs: Lua's, but a table without __pairs walks with the
-- sandbox's `next` (Lua's own would reveal a proxy's private key).
local function PAIRS_G(...)
  if select("#", ...) == 0 then
    error("bad argument #1 to 'pairs' (value expected)", 2)
  end
  local t = ...
  local mt = getmetatable(t)
  local h = type(mt) == "table" and rawget(mt, "__pairs") or nil
  if h ~= nil then
    local f, s, c = h(t)
    return f, s, c
  end
  return NEXT, t, nil
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

-- table.insert, table.remove, table.move and table.sort done whole on a
-- writable table (the C functions of writable/tablelib.rs call these).

-- Marks the walks by batches of m's table stale (see `batches`).
local function stale(m)
  local walks = m.lp_walks
  if walks ~= nil then
    for log in next, walks do log[STALE] = true end
  end
end

-- table.move(t, f, e, d) within t: the store's move (one request, not
-- waited for), then the cache's: Lua's own move on a whole cache, a
-- partial one dropped (refilled on use).
local function MOVE(t, f, e, d)
  local m = getmetatable(t)
  local _, err, memory = R.move(m.lp_id, f, e, d)
  if err ~= nil then fail(err, memory) end
  local cache = m.__index
  if m.lp_incomplete then
    m.__index = setmetatable({}, getmetatable(cache))
    m.lp_n = 0
  else
    move(cache, f, e, d)
  end
  m.lp_len = nil
  stale(m)
end

-- t[k] for table.remove: from the cache, else alone from the supervisor
-- (not a window: the cache is dropped next).
local function GET(t, k)
  local m = getmetatable(t)
  local v = rawget(m.__index, k)
  if v ~= nil or not m.lp_incomplete then return v end
  local err, memory
  v, err, memory = R.get(m.lp_id, k)
  if err ~= nil then fail(err, memory) end
  return v
end

-- Before table.sort(t) on t[1..n]: returns the plain table Lua's sort is
-- to sort (t's cache, holding 1..n) and a copy of its order, or nil when
-- the sort must go through the metamethods (a hole in 1..n of a table not
-- cached whole). A partial cache becomes 1..n and stays put (pinned)
-- until SORT_DONE, so the comparator sees the sort as it goes.
local function SORT_PREP(t, n)
  local m = getmetatable(t)
  local d = m.__index
  if m.lp_incomplete then
    local copy = setmetatable({}, getmetatable(d))
    for i = 1, n do
      local v = t[i]
      if v == nil then return nil end
      copy[i] = v
    end
    m.__index = copy
    m.lp_n = n
    m.lp_pinned = true
    d = copy
  end
  return d, move(d, 1, n, 1, {})
end

-- After the sort (done or failed): writes back what it changed. Returns
-- the write-back's error (message, memory) instead of raising it.
local function SORT_DONE(t, d, before, n)
  local m = getmetatable(t)
  m.lp_pinned = nil
  stale(m)
  local _, err, memory = R.sort_done(m.lp_id, d, before, n)
  return err, memory
end

R.bulk = { move = MOVE, get = GET, sort_prep = SORT_PREP, sort_done = SORT_DONE }

-- `ext.table()`.
local function EXT_TABLE()
  local t, err, memory = R.new_table()
  if err ~= nil then fail(err, memory) end
  return t
end

return {
  ext_table = EXT_TABLE,
  make = make, newindex = NEWINDEX, len = LEN, pairs_ = PAIRS,
  next = NEXT, pairs = PAIRS_G, getmetatable = GETMETATABLE, setmetatable = SETMETATABLE, rawset = RAWSET,
  rawget = RAWGET, rawlen = RAWLEN,
  ud_mt = { __newindex = UD_NEWINDEX, __pairs = UD_PAIRS },
}
