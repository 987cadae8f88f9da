-- soak/soak.lua MINUTES -- mixed load on a real `agentcube serve` for
-- MINUTES: 32 clients creating, executing, uploading, downloading,
-- listing and deleting, some hanging up mid-request; the server is
-- killed with SIGKILL and restarted twice. At the end: failed requests
-- other than those cut by the kills, leaked sessions, mounts, loop
-- devices, session uids' processes, server descriptors, and the server's
-- RSS per minute. Exit status 0 only when everything is clean.
local server = require "server"
local cjson = require "cjson.safe"

local MINUTES = tonumber(arg[1] or "30")
local CLIENTS = tonumber(os.getenv("SOAK_CLIENTS") or "32")
local ROOT = os.getenv("SOAK_ROOT") or "."
local q = server.q

local function sh_out(cmd)
  local p = io.popen(cmd)
  local s = p:read("a")
  p:close()
  return s
end

local function rss_kb(pid)
  local s = server.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s+(%d+)")) or 0
end

local function nfds(pid)
  return tonumber(sh_out("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l"))
end

local srv = server.start{ config = [[
maxSessions: 64
default:
  warmPoolSize: 2
templates:
  - name: soak
    warmPoolSize: 4
    disk: 64Mi
    commandTimeout: 30s
    resources: { limits: { memory: 256Mi, pids: 64 } }
]] }
local port = srv.url:match(":(%d+)$")
srv.opts.listen = "127.0.0.1:" .. port          -- the same port on restarts
local work = server.tmpdir("agentcube-soak")
local urlfile = work .. "/url"
local function publish_url(u)
  local f = assert(io.open(urlfile .. ".tmp", "w"))
  f:write(u or "", "\n")
  f:close()
  os.rename(urlfile .. ".tmp", urlfile)
end
publish_url(srv.url)

local start = os.time()
local deadline = start + MINUTES * 60
print(("# soak: %d clients for %d min against %s (state %s)"):format(
  CLIENTS, MINUTES, srv.url, srv.state_dir))
for i = 1, CLIENTS do
  os.execute(("cd %s && lua5.4 soak/worker.lua %s %d %d %s " ..
              ">%s 2>&1 &"):format(q(ROOT), q(urlfile), deadline, i,
              q(work .. "/w" .. i .. ".log"), q(work .. "/w" .. i .. ".err")))
end

-- The kills: at a third and at two thirds of the time.
local kills = { start + MINUTES * 20, start + MINUTES * 40 }
local windows = {}
local rss, life = {}, {}
local lifetime = 1
local minute = 0
local base_fds
while os.time() < deadline do
  os.execute("sleep 1")
  local t = os.time()
  if kills[1] and t >= kills[1] then
    table.remove(kills, 1)
    local w = { from = t }
    print(("# %ds: kill -9 %d"):format(t - start, srv.pid))
    publish_url(nil)
    srv:kill9()
    srv:launch()
    publish_url(srv.url)
    w.to = os.time() + 2
    windows[#windows + 1] = w
    lifetime = lifetime + 1
    print(("# %ds: restarted as %d"):format(os.time() - start, srv.pid))
  end
  if t - start >= (minute + 1) * 60 then
    minute = minute + 1
    rss[minute] = rss_kb(srv.pid)
    life[minute] = lifetime
    base_fds = base_fds or nfds(srv.pid)
    print(("# minute %d: server RSS %d KiB, %d fds (server run %d)"):format(
      minute, rss[minute], nfds(srv.pid), lifetime))
  end
end
-- let the clients finish their last iteration
for _ = 1, 180 do
  -- ("[s]oak": the shell running pgrep must not match itself)
  if sh_out("pgrep -f " .. q("[s]oak/worker.lua " .. urlfile) .. " | wc -l")
     :match("^0") then break end
  os.execute("sleep 1")
end

-- A request cut by a kill: it was in flight while the server was down.
local function in_window(t, ms)
  for _, w in ipairs(windows) do
    if t <= w.to + 1 and t + ms / 1000 >= w.from - 1 then return true end
  end
  return false
end

-- The runtime's cgroup name: agentcube-<FNV-1a 64 of the state dir>.
local function cgname(dir)
  local h = -3750763034362895579              -- 0xcbf29ce484222325
  for i = 1, #dir do
    h = (h ~ dir:byte(i)) * 1099511628211
  end
  return ("agentcube-%016x"):format(h)
end

local total, failed, cut, hangups = 0, 0, 0, 0
local ops = {}
for i = 1, CLIENTS do
  for line in io.lines(work .. "/w" .. i .. ".log") do
    local t, op, st, ms = line:match("^(%S+) (%S+) (%S+) (%S+)")
    t, ms = tonumber(t), tonumber(ms)
    total = total + 1
    ops[op] = (ops[op] or 0) + 1
    local good = st:match("^2%d%d$") or st == "cut" or
      (op == "download" and st == "404")   -- after a cut upload
    if st == "cut" then hangups = hangups + 1 end
    if not good then
      if in_window(t, ms) then
        cut = cut + 1
      else
        failed = failed + 1
        if failed <= 20 then print("# failed: w" .. i .. " " .. line) end
      end
    end
  end
end

local status, list = srv:json("GET", "/v1/code-interpreter/sessions")
local leaked = status == 200 and type(list) == "table" and
  #(list.sessions or list) or -1
local end_fds = nfds(srv.pid)
local pid = srv.pid
local cg = cgname(sh_out("realpath " .. q(srv.state_dir)):gsub("\n$", ""))
srv:stop()
local mounts = tonumber(sh_out("grep -c " .. q(srv.state_dir) ..
  " /proc/self/mountinfo"))
local loops = tonumber(sh_out("losetup -a | grep -c " .. q(srv.state_dir)))
-- processes left in the server's cgroups (sandboxed commands, bwrap)
local procs = tonumber(sh_out("grep -l " .. q(cg) ..
  " /proc/[0-9]*/cgroup 2>/dev/null | wc -l"))
print(("# requests %d (%s), hang-ups %d, cut by the kills %d, failed %d")
  :format(total, (function()
    local t = {}
    for k, v in pairs(ops) do t[#t + 1] = k .. " " .. v end
    table.sort(t)
    return table.concat(t, ", ")
  end)(), hangups, cut, failed))
print(("# leaked: sessions %d, mounts %d, loop devices %d, processes %d, " ..
       "server fds %d at minute 1 -> %d at the end"):format(leaked, mounts,
       loops, procs, base_fds or -1, end_fds or -1))
-- flat: within the last server run, from its second minute (warm) on
local first, last
for m = 1, #rss do
  if life[m] == lifetime and (m > 1 and life[m - 1] == lifetime) then
    first = first or rss[m]
    last = rss[m]
  end
end
if first and last then
  print(("# RSS of the last server run: %d KiB -> %d KiB (x%.2f)"):format(
    first, last, last / first))
else
  print("# RSS: the last server run was too short to judge its growth")
end
srv:destroy()
os.execute("rm -rf " .. q(work))
local clean = failed == 0 and leaked == 0 and mounts == 0 and loops == 0 and
  procs == 0 and total > 0 and (not first or last / first < 1.5) and
  (not base_fds or end_fds <= base_fds + 8)
print(clean and "soak: clean" or "soak: NOT clean")
os.exit(clean and 0 or 1)
