-- agentcube.workflow.load -- a workflow file to raw Lua values.
--
-- YAML files (any name not ending in .lua) go through agentcube.yaml,
-- which keeps the position of every node. Lua files are compiled in text
-- mode ("t") into their own environment with strict globals (reading an
-- undefined global raises); what they return decides their style: a
-- table is a workflow (same keys as YAML, with functions allowed for
-- `lua` steps), anything else means a plain script that drives sessions
-- itself through require "agentcube".
--
-- Evaluating a Lua file runs it. For `check`, which must not start
-- anything, a Lua file is evaluated in a restricted environment where
-- require (other than cjson), io, os (other than getenv, time, date,
-- clock, difftime), dofile, loadfile and load stop the evaluation: a file
-- that reaches one of them is a plain script, checked for syntax only.
local M = {}

-- The C modules; agentcube.core registers them in package.preload.
function M.cmodule(name)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  require "agentcube.core"
  return require(name)
end

--- Reads a whole file: text, or nil, "FILE:1:1: message".
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, ("%s:1:1: cannot read: %s"):format(path, err) end
  local text = f:read("a")
  f:close()
  if not text then return nil, path .. ":1:1: cannot read" end
  return text
end

function M.is_lua(path)
  return path:match("%.lua$") ~= nil
end

--- Parses YAML text: value, marks, or nil, "FILE:LINE:COL: message".
function M.yaml(text, path)
  local yaml = M.cmodule("agentcube.yaml")
  return yaml.load(text, path)
end

-- The error value that stops a check-mode evaluation at a side effect.
local SCRIPT = setmetatable({}, {
  __tostring = function() return "plain Lua script" end,
})
M.SCRIPT = SCRIPT

local function stop_here() error(SCRIPT, 0) end

-- Globals of the check-mode evaluation.
local function restricted_globals()
  local g = {}
  for _, k in ipairs{ "assert", "error", "getmetatable", "ipairs", "next",
                      "pairs", "pcall", "print", "rawequal", "rawget",
                      "rawlen", "rawset", "select", "setmetatable",
                      "tonumber", "tostring", "type", "xpcall",
                      "collectgarbage", "_VERSION", "string", "table",
                      "math", "utf8", "coroutine" } do
    g[k] = _G[k]
  end
  g.require = function(name)
    if name == "cjson" or name == "cjson.safe" then return require(name) end
    stop_here()
  end
  local os_ok = { getenv = os.getenv, time = os.time, date = os.date,
                  clock = os.clock, difftime = os.difftime }
  g.os = setmetatable({}, { __index = function(_, k)
    return os_ok[k] or stop_here()
  end })
  g.io = setmetatable({}, { __index = stop_here })
  g.dofile, g.loadfile, g.load = stop_here, stop_here, stop_here
  g.debug = setmetatable({}, { __index = stop_here })
  g.package = setmetatable({}, { __index = stop_here })
  return g
end

--- A fresh environment with strict globals over base (default _G):
-- reading a name that is neither set in the script nor in base raises.
function M.strict_env(base, args)
  base = base or _G
  local env = { arg = args }
  env._G = env
  return setmetatable(env, {
    __index = function(_, k)
      local v = base[k]
      if v == nil then
        error(("undefined global '%s'"):format(tostring(k)), 2)
      end
      return v
    end,
  })
end

-- "path:12: msg" -> "path:12:1: msg"
local function with_col(msg)
  if type(msg) ~= "string" then return tostring(msg) end
  return (msg:gsub("^([^\n]-):(%d+): ", "%1:%2:1: ", 1))
end
M.with_col = with_col

--- Compiles a Lua workflow file: chunk, or nil, "FILE:LINE:1: message".
function M.compile_lua(text, path, env)
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then return nil, with_col(err) end
  return chunk
end

--- Evaluates a Lua workflow file for `check`. Returns "table", value;
-- "script"; or nil, "FILE:LINE:1: message".
function M.eval_lua_check(text, path)
  local env = M.strict_env(restricted_globals(), {})
  local chunk, err = M.compile_lua(text, path, env)
  if not chunk then return nil, err end
  local ok, v = pcall(chunk)
  if not ok then
    if v == SCRIPT then return "script" end
    return nil, with_col(v)
  end
  if type(v) == "table" then return "table", v end
  return "script"
end

return M
