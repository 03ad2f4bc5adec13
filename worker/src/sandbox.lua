-- Sandbox wrappers that need the compute's environment. Run once per worker;
-- returns a function that, given a compute's environment, returns its
-- `load` and `collectgarbage`.
local load, collectgarbage, select, error, tostring = load, collectgarbage, select, error, tostring

local function COLLECTGARBAGE(opt)
  if opt == "count" then return collectgarbage("count") end
  error("collectgarbage(" .. (opt == nil and "" or ("'" .. tostring(opt) .. "'"))
        .. ") is not allowed here: only collectgarbage('count')", 2)
end

return function(env)
  -- Text only: a binary chunk could break the VM. Without an explicit
  -- environment, a loaded chunk sees the compute's globals.
  local function LOAD(chunk, name, _mode, ...)
    if select("#", ...) == 0 then return load(chunk, name, "t", env) end
    return load(chunk, name, "t", ...)
  end
  return LOAD, COLLECTGARBAGE
end
