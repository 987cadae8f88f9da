-- soak/worker.lua URLFILE DEADLINE SEED LOG -- one soak client: creates a
-- session, runs commands, uploads, downloads, lists, deletes, again and
-- again until DEADLINE (unix seconds); sometimes hangs up mid-request.
-- Every request is logged as "time op status ms" (status "cut" for a
-- hang-up of our own, "err:<message>" for a transport failure); a
-- successful create adds the session id, so that the soak can tell a
-- session it leaked from one whose create a server kill cut, and an
-- error status adds the server's message.
local httpc = require "httpc"
local cjson = require "cjson.safe"

local urlfile, deadline, seed, logpath = arg[1], tonumber(arg[2]),
  tonumber(arg[3]), arg[4]
math.randomseed(seed)
local log = assert(io.open(logpath, "w"))
local DP = "/v1/namespaces/default/code-interpreters/soak/invocations/"

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function url()
  local f = io.open(urlfile)
  local u = f and f:read("l")
  if f then f:close() end
  return u
end

local function req(op, t, cut_ok)
  local t0 = now()
  local status, body = httpc.request{
    method = t.method or "GET", url = (url() or "") .. t.path,
    body = t.body, form = t.form, timeout = t.timeout or 120,
    headers = { ["Content-Type"] = t.body and "application/json" or nil,
                ["x-agentcube-session-id"] = t.session } }
  local ms = (now() - t0) * 1000
  local what = status and tostring(status) or
    (cut_ok and "cut" or "err:" .. tostring(body):gsub("%s", "_"))
  local j = status and cjson.decode(body) or nil
  local note = op == "create" and status == 200 and type(j) == "table" and
    j.sessionId or ""
  if status and (status < 200 or status > 299) then
    -- why, for the soak's report of failures
    note = tostring(type(j) == "table" and (j.message or j.error) or body)
      :sub(1, 120):gsub("%s", "_")
  end
  log:write(("%.3f %s %s %.0f %s\n"):format(t0, op, what, ms, note))
  log:flush()
  return status, j, body
end

local payload = os.tmpname()
do
  local f = assert(io.open(payload, "wb"))
  f:write(("soak-data-%d\n"):format(seed):rep(20000))
  f:close()
end

local iterations = 0
while now() < deadline and iterations < 100000 do
  iterations = iterations + 1
  local st, j = req("create", { method = "POST", path =
    "/v1/code-interpreter", body = cjson.encode{ name = "soak",
    namespace = "default", ttl = 600 } })
  local id = st == 200 and j and j.sessionId
  if id then
    for _ = 1, math.random(2, 5) do
      local r = math.random()
      if r < 0.3 then
        req("execute", { method = "POST", path = DP .. "api/execute",
          session = id, body = cjson.encode{ command = { "sh", "-c",
          "echo $((6*7)); head -c 2000 /dev/urandom | od | tail -1" } } })
      elseif r < 0.5 then
        req("upload", { method = "POST", path = DP .. "api/files",
          session = id, form = { { name = "path", value = "in.txt" },
                                 { name = "file", file = payload } } })
      elseif r < 0.65 then
        req("download", { path = DP .. "api/files/in.txt", session = id })
      elseif r < 0.8 then
        req("list", { path = DP .. "api/files?path=.", session = id })
      elseif r < 0.9 then
        -- a client that goes away in the middle of a command
        req("hangup", { method = "POST", path = DP .. "api/execute",
          session = id, timeout = 0.3, body = cjson.encode{
          command = { "sleep", "2" } } }, true)
      else
        -- a client that goes away in the middle of an upload
        req("hangup-upload", { method = "POST", path = DP .. "api/files",
          session = id, timeout = 0.05, form = {
          { name = "path", value = "cut.bin" },
          { name = "file", file = payload } } }, true)
      end
    end
    -- a delete cut by a server kill is tried again, for as long as a
    -- restart may take (it restores every session): nothing may leak
    for _ = 1, 120 do
      local ds = req("delete", { method = "DELETE", path =
        "/v1/code-interpreter/sessions/" .. id })
      if ds == 200 or ds == 404 then break end
      os.execute("sleep 1")
    end
  else
    os.execute("sleep 0.5")
  end
end
os.remove(payload)
log:close()
