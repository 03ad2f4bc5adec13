-- Sandbox wrappers. Run once per worker with the functions they wrap; returns
-- the wrapped base functions and a function that, given a compute's
-- environment, returns its `load` and `collectgarbage`.
--
-- `pcall`, `xpcall` and `coroutine.resume` arrive already wrapped by the
-- prelude (a stopped compute's error is raised again). Here they also make
-- the heap limit sticky: once an allocation failed, `on_memory_error` marks
-- the compute as stopped by the memory limit and the error is raised again,
-- so `pcall` cannot swallow the limit either. `stop` is the prelude's table
-- whose `reason` is set once the compute is being stopped.
local pcall, xpcall, resume, setmetatable, on_memory_error, stop = ...
local load, collectgarbage, select, error, tostring, type, rawget, next =
      load, collectgarbage, select, error, tostring, type, rawget, next

local MEMERR = "not enough memory"

local function memcheck(ok, ...)
  if not ok then
    local e = ...
    -- Lua raises the preallocated string; an error crossing a Rust callback
    -- arrives as userdata whose text ends with it.
    if e == MEMERR or (type(e) == "userdata" and tostring(e):sub(-#MEMERR) == MEMERR) then
      on_memory_error()
      error(MEMERR, 0)
    end
  end
  return ok, ...
end

local function PCALL(...) return memcheck(pcall(...)) end
-- Lua runs a message handler before it unwinds, and an error raised by the
-- instruction hook is raised with hooks off: a handler called for a stop
-- would run with no budget at all. So once the compute is stopped, the
-- script's handler is not called.
local function XPCALL(f, handler, ...)
  if type(handler) ~= "function" then return memcheck(xpcall(f, handler, ...)) end
  local function guarded(...)
    local reason = stop.reason
    if reason ~= nil then return reason end
    return handler(...)
  end
  return memcheck(xpcall(f, guarded, ...))
end
local function RESUME(...) return memcheck(resume(...)) end

-- No finalizers: a __gc metamethod would run untrusted code outside the
-- compute that created it (between computes, or inside another session's).
local function SETMETATABLE(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed here", 2)
  end
  return setmetatable(t, mt)
end

local function COLLECTGARBAGE(opt)
  if opt == "count" then return collectgarbage("count") end
  error("collectgarbage(" .. (opt == nil and "" or ("'" .. tostring(opt) .. "'"))
        .. ") is not allowed here: only collectgarbage('count')", 2)
end

local function env_functions(env)
  -- Text only: a binary chunk could break the VM. Without an explicit
  -- environment, a loaded chunk sees the compute's globals.
  local function LOAD(chunk, name, _mode, ...)
    if select("#", ...) == 0 then return load(chunk, name, "t", env) end
    return load(chunk, name, "t", ...)
  end
  return LOAD, COLLECTGARBAGE
end

-- A compute's fresh environment: the base functions as they are, a copy of
-- each library (a compute that changes string.upper changes only its own
-- copy), and load/collectgarbage bound to it. Copying the ~150 entries here
-- costs a fraction of doing it from Rust one call each.
local function new_env(base, libs)
  local env = {}
  for k, v in next, base do env[k] = v end
  for name, lib in next, libs do
    local copy = {}
    for k, v in next, lib do copy[k] = v end
    env[name] = copy
  end
  env.load, env.collectgarbage = env_functions(env)
  env._G = env
  return env
end

return {
  pcall = PCALL, xpcall = XPCALL, resume = RESUME, setmetatable = SETMETATABLE,
  new_env = new_env,
}
