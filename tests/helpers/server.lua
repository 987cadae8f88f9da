-- server.lua -- starts a real `agentcube serve` for a spec and talks to it.
--
--   local server = require "server"
--   local srv = server.start{ config = "templates: ...", auth = true }
--   local status, json = srv:json("POST", "/v1/code-interpreter", {...})
--   srv:stop()
--
-- Every server gets its own state directory and a free port, so specs can
-- run side by side and leave nothing behind.
local httpc = require "httpc"
local cjson = require "cjson.safe"

local M = {}
local Server = {}
Server.__index = Server

local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok, code
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file
M.q = q
M.sh = sh

function M.tmpdir(prefix)
  local p = io.popen("mktemp -d /tmp/" .. (prefix or "agentcube-spec") ..
                     ".XXXXXX")
  local dir = p:read("l")
  p:close()
  return dir
end

M.bin = os.getenv("AGENTCUBE_SERVER_BIN") or os.getenv("AGENTCUBE_BIN") or
        "build/agentcube"

-- Starts a server. opts: config (YAML text), auth (default false),
-- state_dir (reuse one), reap_ms, args (extra arguments), env (a table of
-- environment variables), wrap (a command prefix, e.g. setpriv), bin
-- (another agentcube executable).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ opts = opts }, Server)
  self.state_dir = opts.state_dir or M.tmpdir("agentcube-state")
  self.owns_state = opts.state_dir == nil
  if opts.config then
    self.config_path = self.state_dir .. ".yaml"
    local f = assert(io.open(self.config_path, "w"))
    f:write(opts.config)
    f:close()
  end
  self:launch()
  return self
end

function Server:launch()
  local o = self.opts
  local args = { "--listen", o.listen or "127.0.0.1:0", "--state-dir",
                 self.state_dir }
  if not o.auth then args[#args + 1] = "--no-auth" end
  if self.config_path then
    args[#args + 1] = "--config"
    args[#args + 1] = self.config_path
  end
  args[#args + 1] = "--reap-interval-ms"
  args[#args + 1] = tostring(o.reap_ms or 200)
  for _, a in ipairs(o.args or {}) do args[#args + 1] = a end
  local qargs = {}
  for i, a in ipairs(args) do qargs[i] = q(a) end
  self.log = self.state_dir .. ".log"
  local envs = {}
  for k, v in pairs(o.env or {}) do envs[#envs + 1] = q(k .. "=" .. v) end
  local cmd = "echo $$; exec " .. (o.wrap or "") .. " env " ..
              table.concat(envs, " ") .. " " .. q(o.bin or M.bin) .. " serve " ..
              table.concat(qargs, " ") .. " 2>>" .. q(self.log)
  self.proc = assert(io.popen(cmd, "r"))
  self.pid = tonumber(self.proc:read("l"))
  -- A spec that fails before stop() leaves its server running, and the
  -- popen handle's finalizer would wait for it forever when busted ends:
  -- this guard, finalized first (it is newer), stops it. stop() disarms it.
  self.guard = setmetatable({ pid = self.pid }, { __gc = function(g)
    if g.pid then os.execute("kill -TERM " .. g.pid .. " 2>/dev/null") end
  end })
  self.url = self.proc:read("l")
  if not self.url or not self.url:match("^http://") then
    local log = read_file(self.log) or ""
    self.guard.pid = nil
    self.proc:close()
    error("agentcube serve did not start: " .. log)
  end
  if o.auth then
    self.token = (read_file(self.state_dir .. "/token") or ""):gsub("%s+$", "")
  end
end

-- Raw request. t: method, path, body, headers, session, form, output,
-- timeout, noauth.
function Server:request(t)
  local headers = {}
  for k, v in pairs(t.headers or {}) do headers[k] = v end
  if self.token and not t.noauth and headers.Authorization == nil then
    headers.Authorization = "Bearer " .. self.token
  end
  if t.session then headers["x-agentcube-session-id"] = t.session end
  return httpc.request{
    method = t.method or "GET", url = self.url .. t.path, body = t.body,
    headers = headers, form = t.form, output = t.output,
    timeout = t.timeout or 120 }
end

-- JSON request: returns status, decoded body (or raw text), headers.
function Server:json(method, path, body, extra)
  extra = extra or {}
  local headers = extra.headers or {}
  if body ~= nil then headers["Content-Type"] = "application/json" end
  local status, text, hdrs = self:request{
    method = method, path = path,
    body = body ~= nil and (type(body) == "string" and body or
                            assert(cjson.encode(body))) or nil,
    headers = headers, session = extra.session, noauth = extra.noauth,
    timeout = extra.timeout }
  if not status then return nil, text end
  local decoded = cjson.decode(text)
  -- remember each session's namespace and name: it answers only there
  if method == "POST" and path == "/v1/code-interpreter" and status == 200
     and type(decoded) == "table" and decoded.sessionId then
    local req = type(body) == "table" and body or cjson.decode(body) or {}
    self.dps = self.dps or {}
    self.dps[decoded.sessionId] = "/v1/namespaces/" ..
      tostring(req.namespace) .. "/code-interpreters/" .. tostring(req.name) ..
      "/invocations/"
  end
  return status, decoded == nil and text or decoded, hdrs
end

M.monotonic = httpc.monotonic   -- seconds, CLOCK_MONOTONIC
M.DP = "/v1/namespaces/default/code-interpreters/my-interpreter/invocations/"

-- The data-plane prefix of session id (M.DP for sessions made elsewhere).
function Server:dp(id)
  return self.dps and self.dps[id] or M.DP
end

function Server:create(body)
  local status, j = self:json("POST", "/v1/code-interpreter", body or
    { name = "my-interpreter", namespace = "default", ttl = 3600,
      metadata = {} })
  assert(status == 200, "create failed: " .. tostring(status) .. " " ..
         (type(j) == "table" and (j.message or "") or tostring(j)))
  return j.sessionId, j
end

function Server:delete(id)
  return self:json("DELETE", "/v1/code-interpreter/sessions/" .. id)
end

-- Runs argv in session id: returns status, decoded response.
function Server:exec(id, argv, opts)
  local body = { command = argv }
  for k, v in pairs(opts or {}) do body[k] = v end
  return self:json("POST", self:dp(id) .. "api/execute", body,
                   { session = id })
end

-- Runs a shell snippet; returns stdout, stderr, exit code.
function Server:sh(id, script, timeout)
  local status, j = self:exec(id, { "bash", "-c", script },
                              { timeout = timeout or "60s" })
  assert(status == 200, "execute failed: " .. tostring(status) .. " " ..
         (type(j) == "table" and tostring(j.error) or tostring(j)))
  return j.stdout, j.stderr, j.exit_code, j
end

function Server:write(id, path, content, mode)
  local b64 = require "b64"
  return self:json("POST", self:dp(id) .. "api/files",
                   { path = path, content = b64.encode(content),
                     mode = mode or "0644" }, { session = id })
end

function Server:download(id, path)
  return self:request{ path = self:dp(id) .. "api/files/" .. path,
                       session = id }
end

function Server:list(id, path)
  return self:json("GET", self:dp(id) .. "api/files?path=" .. (path or "."),
                   nil,
                   { session = id })
end

local function capture(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end
M.capture = capture

-- What a session holds on the host, seen from outside the server: its box
-- directory, session uid, loop device, published mount point and cgroup
-- directories. Read while the session exists (the record names its slot).
function Server:box_of(id)
  local rec = read_file(self.state_dir .. "/sessions/" .. id .. ".json")
  local slot = rec and rec:match('"slot":%s*(%d+)')
  assert(slot, "no session record with a slot for " .. id)
  local r = { dir = self.state_dir .. "/boxes/" .. slot }
  local info = read_file(r.dir .. "/box.info") or ""
  r.uid = tonumber(info:match("uid (%d+)"))
  r.loop = capture("losetup -n -O NAME -j " .. q(r.dir .. "/disk.img") ..
                   " 2>/dev/null"):match("(/dev/loop%d+)")
  for line in io.lines("/proc/self/mountinfo") do
    local mnt, src = line:match("^%S+ %S+ %S+ %S+ (%S+) .* %- %S+ (%S+)")
    if r.loop and src == r.loop then r.mount = mnt end
  end
  r.cgname = r.mount and r.mount:match("(box%-%x+)$")
  r.cgroups = {}
  if r.cgname then
    for d in capture("find /sys/fs/cgroup -maxdepth 5 -type d -name " ..
                     q(r.cgname) .. " 2>/dev/null"):gmatch("[^\n]+") do
      r.cgroups[#r.cgroups + 1] = d
    end
  end
  return r
end

-- A command line no other process on the machine has: "sleep 200.<n>".
function M.marker()
  return ("sleep %d.%06d"):format(200 + math.random(0, 99),
                                  math.random(0, 999999))
end

-- What of r (from box_of) is still there: a list of descriptions.
function M.box_left(r)
  local left = {}
  if capture("ls -d " .. q(r.dir) .. " 2>/dev/null") ~= "" then
    left[#left + 1] = "box directory " .. r.dir
  end
  if r.mount and read_file("/proc/self/mountinfo"):find(" " .. r.mount .. " ",
                                                        1, true) then
    left[#left + 1] = "mount " .. r.mount
  end
  if r.loop and capture("losetup -n -O BACK-FILE " .. r.loop ..
                        " 2>/dev/null"):find(r.dir, 1, true) then
    left[#left + 1] = "loop device " .. r.loop
  end
  for _, d in ipairs(r.cgroups) do
    if capture("ls -d " .. q(d) .. " 2>/dev/null") ~= "" then
      left[#left + 1] = "cgroup " .. d
    end
  end
  -- uids are shared by every server on the machine: a command is found
  -- by its own unique command line (r.marker), set by the caller
  if r.marker and capture("pgrep -f " .. q("^" .. r.marker .. "$")) ~= "" then
    left[#left + 1] = "the command " .. r.marker
  end
  return left
end

-- Waits up to secs for everything of r to be gone; returns what is left.
function M.wait_box_gone(r, secs)
  local left
  for _ = 1, math.floor((secs or 30) * 10) do
    left = M.box_left(r)
    if #left == 0 then return left end
    os.execute("sleep 0.1")
  end
  return left
end

-- Stops with SIGTERM and waits; returns the exit status.
function Server:stop()
  if not self.proc then return end
  self.guard.pid = nil
  sh("kill -TERM " .. self.pid)
  local _, _, code = self.proc:close()
  self.proc = nil
  return code
end

function Server:kill9()
  self.guard.pid = nil
  sh("kill -KILL " .. self.pid)
  self.proc:close()
  self.proc = nil
end

function Server:restart()
  self:stop()
  self:launch()
end

-- Stops the server and removes its state (sessions are torn down by the
-- server's own start-up cleanup of a fresh instance with no records).
function Server:destroy()
  if self.proc then
    local code = self:stop()
    -- a sanitizer build reports leaks and errors through the exit status
    if code ~= 0 then
      local log = self:logtext()
      error(("agentcube serve exited with status %s:\n%s"):format(
        tostring(code), log:sub(-3000)))
    end
  end
  if self.owns_state then
    -- delete every session through a short-lived server so that mounts
    -- and cgroups go away, then remove the directory
    local r = io.open(self.state_dir .. "/sessions", "r")
    if r then
      r:close()
      sh("rm -f " .. q(self.state_dir) .. "/sessions/*.json")
      self.opts.reap_ms = 100
      local ok = pcall(self.launch, self)
      if ok then self:stop() end
    end
    sh("rm -rf " .. q(self.state_dir) .. " " .. q(self.state_dir .. ".yaml") ..
       " " .. q(self.state_dir .. ".log"))
  end
end

function Server:logtext()
  return read_file(self.log) or ""
end

return M
