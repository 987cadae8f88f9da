-- luahelp.lua -- what the Lua module's specs share: where the tree and the
-- build are, a scriptable fake AgentCube (fake_server.py) for faults a real
-- server cannot produce, child processes, and session counting.
local server = require "server"
local httpc = require "httpc"
local cjson = require "cjson.safe"

local M = {}

M.here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "tests/lua"
M.root = (function()
  local p = io.popen("cd " .. server.q(M.here .. "/../..") .. " && pwd")
  local r = p:read("l")
  p:close()
  return r
end)()
-- tests/run exports AGENTCUBE_BIN=$ROOT/$BUILD/agentcube
M.bin = os.getenv("AGENTCUBE_BIN") or (M.root .. "/build/agentcube")
M.build = M.bin:match("^(.*)/[^/]*$")
M.san_build = (os.getenv("AGENTCUBE_SAN_BIN") or ""):match("^(.*)/[^/]*$")
M.q = server.q
M.read_file = server.read_file

-- Runs a shell command; returns its stdout, and the exit code.
function M.run(cmd)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs a Lua chunk in a child lua5.4 with this process's LUA_PATH and
-- LUA_CPATH and the given environment; returns stdout+stderr, exit code.
function M.lua(code, env, opts)
  opts = opts or {}
  local dir = server.tmpdir("agentcube-lua")
  local path = dir .. "/script.lua"
  M.write_file(path, code)
  local envs = {}
  for k, v in pairs(env or {}) do envs[#envs + 1] = M.q(k .. "=" .. v) end
  -- opts.prefix (e.g. "env -u VAR") comes first, so that env can set
  -- what it unsets
  local out, status = M.run("cd " .. M.q(dir) .. " && " ..
    (opts.prefix or "") .. " env " .. table.concat(envs, " ") .. " " ..
    (opts.interp or "lua5.4") .. " " .. M.q(path) .. " 2>&1")
  os.execute("rm -rf " .. M.q(dir))
  return out, status
end

-- Whether process pid lives (cjson gives numbers as floats: %d).
function M.alive(pid)
  return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true
end

-- SIGTERM, then waits up to 10 s for the process to go.
function M.stop_pid(pid)
  os.execute(("kill -TERM %d 2>/dev/null"):format(pid))
  for _ = 1, 100 do
    if not M.alive(pid) then return end
    os.execute("sleep 0.1")
  end
end

-- Stops the daemon a local-runtime client started in home and removes the
-- state (through server.lua, which knows how to take sandboxes down).
function M.stop_local(home)
  local text = server.read_file(home .. "/serve.json")
  local st = text and cjson.decode(text)
  if st and st.pid then
    M.stop_pid(st.pid)
  end
  local s = server.start{ state_dir = home }
  s.owns_state = true
  s:destroy()
end

-- ---------------------------------------------------------------------
-- The fake server

local Fake = {}
Fake.__index = Fake

function M.fake()
  local self = setmetatable({}, Fake)
  self.proc = assert(io.popen("echo $$; exec python3 " ..
                              M.q(M.here .. "/fake_server.py"), "r"))
  self.pid = tonumber(self.proc:read("l"))
  self.url = self.proc:read("l")
  assert(self.url and self.url:match("^http://"), "fake server did not start")
  return self
end

-- rules: see fake_server.py
function Fake:rules(rules)
  local status = httpc.request{ method = "POST", url = self.url .. "/__rules",
                                body = cjson.encode(rules or {}),
                                headers = { ["Content-Type"] =
                                            "application/json" } }
  assert(status == 200)
end

function Fake:reset()
  assert(httpc.request{ method = "POST", url = self.url .. "/__reset" } ==
         200)
end

function Fake:log()
  local status, body = httpc.request{ url = self.url .. "/__log" }
  assert(status == 200)
  return cjson.decode(body)
end

-- Requests whose method and path match.
function Fake:count(method, pattern)
  local n = 0
  for _, r in ipairs(self:log()) do
    if r.method == method and r.path:match(pattern) then n = n + 1 end
  end
  return n
end

function Fake:sessions()
  local status, body = httpc.request{
    url = self.url .. "/v1/code-interpreter/sessions" }
  assert(status == 200)
  return cjson.decode(body).sessions
end

function Fake:stop()
  if self.proc then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.proc:close()
    self.proc = nil
  end
end

-- The options a client needs to talk to url.
function M.opts(url, extra)
  local o = { workload_manager_url = url, router_url = url }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Sessions a real server holds (the list extension).
function M.session_ids(srv)
  local status, j = srv:json("GET", "/v1/code-interpreter/sessions")
  assert(status == 200, "session list failed: " .. tostring(status))
  local ids = {}
  for _, s in ipairs(j.sessions) do ids[#ids + 1] = s.sessionId end
  return ids
end

-- A URL nothing listens on (port 1 needs root to bind; nothing does).
M.dead_url = "http://127.0.0.1:1"

return M
