-- Sandbox wrappers. Run once per worker with the functions they wrap (table
-- F, from sandbox.rs); returns the wrapped functions and new_env, which
-- builds each compute's fresh environment.
--
-- Stops (instruction budget, CPU time, memory, cancel) are raised by the
-- hook in stop.rs at every instruction once decided, and by the coroutine
-- functions (coroutines.rs), so a `pcall`, a `load` reader or a `__close`
-- handler that catches one gets no further. One gap is closed here: Lua
-- runs an `xpcall` message handler before it unwinds, and with hooks off
-- when the error came from the hook, so after a stop the script's handler
-- is not called at all.
--
-- Error values stay what the script raised. An error raised by a Rust
-- callback through mlua reaches Lua as opaque userdata whose text holds a
-- Rust traceback with internal chunk names. So the worker's own callbacks
-- never raise: they return `true, results...` or `false, message` (or
-- `nil, message`), and Lua raises the message as a plain string at the
-- script's line (`check` here, `fail` in the prelude).
-- For any other Rust callback (bigint's, the external tables'), every place
-- a script can catch an error (pcall, xpcall's handler, coroutine.resume,
-- wrap and close) hands it `plain(e)`: such userdata becomes its message.
local F = ...
local pcall, xpcall, load, setmetatable, plain = pcall, F.xpcall, load, F.setmetatable, F.plain
local select, error, tostring, type, rawget, next = select, error, tostring, type, rawget, next
local stopped, clock, count, randomseed, entropy, log, clone =
      F.stopped, F.clock, F.count, F.randomseed, F.entropy, F.log, F.clone

local function check(ok, ...)
  if not ok then error((...), 2) end
  return ...
end

local function caught(ok, ...)
  if ok then return ok, ... end
  return ok, plain((...))
end

local function PCALL(...)
  return caught(pcall(...))
end

local function XPCALL(f, handler, ...)
  return xpcall(f, function(e, ...)
    local s = stopped()
    if s ~= nil then return s end
    return handler(plain(e), ...)
  end, ...)
end

-- No finalizers: a __gc metamethod would run untrusted code outside the
-- compute that created it (between computes, or inside another session's).
local function SETMETATABLE(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed here", 2)
  end
  return setmetatable(t, mt)
end

-- Lua's print: each argument through tostring (a script's __tostring runs
-- here, in Lua, so its errors reach the script as it raised them), joined
-- by tabs in Rust, which bounds the line.
local function PRINT(...)
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  return check(log(parts, n))
end

-- This compute's memory (see memory.rs), in KiB like Lua's count.
local function COLLECTGARBAGE(opt)
  if opt == "count" then return count() end
  error("collectgarbage(" .. (opt == nil and "" or ("'" .. tostring(opt) .. "'"))
        .. ") is not allowed here: only collectgarbage('count')", 2)
end

-- Without arguments, a seed from the OS (Lua's own would be the time).
local function RANDOMSEED(...)
  if select("#", ...) == 0 then return randomseed(entropy()) end
  return randomseed(...)
end

local function env_load(env)
  -- Text only: a binary chunk could break the VM. Without an explicit
  -- environment, a loaded chunk sees the compute's globals.
  return function(chunk, name, _mode, ...)
    if select("#", ...) == 0 then return load(chunk, name, "t", env) end
    return load(chunk, name, "t", ...)
  end
end

-- A table as a flat array {k1, v1, k2, v2, ...}, which clone walks by index.
local function flat(t)
  local a, n = {}, 0
  for k, v in next, t do a[n + 1] = k; a[n + 2] = v; n = n + 2 end
  return a
end

-- Returns new_env(s1, s2), which builds a compute's fresh environment: the
-- base functions as they are, a copy of each library (a compute that
-- changes string.upper changes only its own copy), and load bound to it.
-- The random generator is seeded from the OS (s1, s2), so nothing drawn
-- before shows. `clone` (sandbox.rs) copies a flat array into a table
-- made at its final size, so the ~150 entries cost no rehash.
local function env_maker(base, libs)
  base = flat(base)
  local list = {}
  for name, lib in next, libs do list[#list + 1] = name; list[#list + 1] = flat(lib) end
  -- The libraries, load, _G and the compute's _io, _home and ext.
  local extra = #list // 2 + 5
  return function(s1, s2)
    local env = clone(base, extra)
    for i = 1, #list, 2 do env[list[i]] = clone(list[i + 1], 0) end
    env.load = env_load(env)
    env._G = env
    randomseed(s1, s2)
    return env
  end
end

return {
  pcall = PCALL, xpcall = XPCALL, setmetatable = SETMETATABLE, print = PRINT,
  collectgarbage = COLLECTGARBAGE, randomseed = RANDOMSEED, clock = clock,
  env_maker = env_maker,
}
