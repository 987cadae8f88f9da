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

-- What a check-mode evaluation may spend: `check` reads files people are
-- sent, and building a workflow table needs little.
M.CHECK_INSTRUCTIONS = 50000000
M.CHECK_SECONDS = 5
M.CHECK_MEMORY_KB = 256 * 1024
M.CHECK_STRING_BYTES = 16 * 1024 * 1024

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Globals of the check-mode evaluation: copies of the libraries, so the
-- file cannot change the host's own; string functions that make big
-- strings are bounded.
local function restricted_globals()
  local g = {}
  for _, k in ipairs{ "assert", "error", "ipairs", "next",
                      "pairs", "pcall", "print", "rawequal", "rawget",
                      "rawlen", "rawset", "select", "setmetatable",
                      "tonumber", "tostring", "type", "xpcall",
                      "_VERSION" } do
    g[k] = _G[k]
  end
  for _, k in ipairs{ "string", "table", "math", "utf8", "coroutine" } do
    g[k] = copy(_G[k])
  end
  local rep = string.rep
  g.string.rep = function(str, n, sep)
    local size = #tostring(str) + (sep and #tostring(sep) or 0)
    if type(n) == "number" and n * size > M.CHECK_STRING_BYTES then
      error("string.rep: result larger than the check's limit", 2)
    end
    return rep(str, n, sep)
  end
  -- a stop is final: the file's own pcall cannot catch it, and code in
  -- its coroutines counts like the rest
  local function pass(ok, ...)
    if not ok and M.is_stop((...)) then error((...), 0) end
    return ok, ...
  end
  g.pcall = function(f, ...) return pass(pcall(f, ...)) end
  g.xpcall = function(f, h, ...) return pass(xpcall(f, h, ...)) end
  g.coroutine.create = function(f)
    local co = coroutine.create(f)
    local h, m, c = debug.gethook()
    if h then debug.sethook(co, h, m, c) end
    return co
  end
  g.coroutine.wrap = function(f)
    local co = g.coroutine.create(f)
    return function(...)
      local r = table.pack(coroutine.resume(co, ...))
      if not r[1] then error(r[2], 0) end
      return table.unpack(r, 2, r.n)
    end
  end
  -- the string metatable is the host's: a file may not reach it
  g.getmetatable = function(v)
    if type(v) == "string" then return nil end
    return getmetatable(v)
  end
  g.collectgarbage = function(opt)
    if opt == nil or opt == "collect" or opt == "count" or opt == "step"
    then
      return collectgarbage(opt)
    end
    error("collectgarbage('" .. tostring(opt) .. "') is not available "
          .. "to check", 2)
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

--- Runs fn under check's budgets: instructions, seconds of CPU and
-- memory, checked every thousand instructions; while it runs, strings'
-- methods (('x'):rep(n)) are those of the copy lib, not the host's.
-- Returns pcall's results.
local HERE = debug.getinfo(1, "S").source
local STOP_MT = { __tostring = function(e) return e.msg end }
local function stop(msg) return setmetatable({ msg = msg }, STOP_MT) end
function M.is_stop(e) return getmetatable(e) == STOP_MT end

function M.bounded(fn, lib)
  local smt = getmetatable("")
  local index = smt.__index
  local t0, kb0, count = os.clock(), collectgarbage("count"), 0
  local hook, mask, hcount = debug.gethook()
  -- Every thousand instructions; never in this file's own code: the
  -- budget is the checked file's, and raising between the pcall and the
  -- reset below would escape. (A few big allocations between two looks
  -- can pass the memory budget: `agentcube check` also caps the memory of
  -- its whole state, see src/host.)
  local function ours()
    local where = debug.getinfo(3, "S")
    return where ~= nil and where.source == HERE
  end
  debug.sethook(function()
    count = count + 1000
    if (count > M.CHECK_INSTRUCTIONS or
        os.clock() - t0 > M.CHECK_SECONDS) and not ours() then
      error(stop(("stopped: building the workflow took more than check "
                  .. "allows (%d million instructions or %g s of CPU)")
                 :format(M.CHECK_INSTRUCTIONS // 1000000, M.CHECK_SECONDS)),
            0)
    end
    if collectgarbage("count") - kb0 > M.CHECK_MEMORY_KB then
      collectgarbage()
      if collectgarbage("count") - kb0 > M.CHECK_MEMORY_KB and
         not ours() then
        error(stop("stopped: building the workflow used more memory "
                   .. "than check allows (" .. M.CHECK_MEMORY_KB // 1024 ..
                   " MiB)"), 0)
      end
    end
  end, "", 1000)
  smt.__index = lib
  local res = table.pack(pcall(fn))
  smt.__index = index
  debug.sethook(hook, mask, hcount)
  return table.unpack(res, 1, res.n)
end

--- Evaluates a Lua workflow file for `check`. Returns "table", value;
-- "script"; or nil, "FILE:LINE:1: message".
function M.eval_lua_check(text, path)
  local env = M.strict_env(restricted_globals(), {})
  local chunk, err = M.compile_lua(text, path, env)
  if not chunk then return nil, err end
  local ok, v = M.bounded(chunk, env.string)
  if not ok then
    if v == SCRIPT then return "script" end
    if M.is_stop(v) then return nil, path .. ":1:1: " .. v.msg end
    local msg = with_col(v)
    if not msg:match("^[^\n]-:%d+:%d+: ") then     -- "not enough memory"
      msg = path .. ":1:1: " .. msg
    end
    return nil, msg
  end
  if type(v) == "table" then return "table", v end
  return "script"
end

return M
