-- soak/soak.lua MINUTES -- mixed load on a real `agentcube serve` for
-- MINUTES: 32 clients creating, executing, uploading, downloading,
-- listing and deleting, some hanging up mid-request; the server is
-- killed with SIGKILL and restarted twice. At the end: failed requests
-- other than those cut by the kills, leaked sessions, mounts, loop
-- devices, session uids' processes, server descriptors, and the server's
-- RSS per minute, which must stay flat. It speaks TAP (one test: "ok 1"
-- when everything is clean), so tests/run can count it; exit status 0
-- only when clean.
local server = require "server"

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

-- maxSessions leaves room for the sessions of creates a kill cuts (no
-- client can delete them until the end).
local srv = server.start{ config = [[
maxSessions: 256
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
print("1..1")
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
local rss = {}
local samples = {}       -- every 10 s: { t = seconds into the run, kb, life }
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
  if (t - start) % 10 == 0 and (#samples == 0 or
                                 samples[#samples].t ~= t - start) then
    samples[#samples + 1] = { t = t - start, kb = rss_kb(srv.pid),
                              life = lifetime }
  end
  if t - start >= (minute + 1) * 60 then
    minute = minute + 1
    rss[minute] = rss_kb(srv.pid)
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
local known = {}         -- every session id a client was given
for i = 1, CLIENTS do
  for line in io.lines(work .. "/w" .. i .. ".log") do
    local t, op, st, ms, note = line:match("^(%S+) (%S+) (%S+) (%S+) ?(%S*)")
    if op == "create" and st == "200" and note ~= "" then
      known[note] = true
    end
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

-- Sessions left: one a client was given and did not get rid of is a
-- leak; one no client ever heard of was made by a create whose answer a
-- kill cut (its record was written just before): those go now, counted
-- with the cuts.
local status, list = srv:json("GET", "/v1/code-interpreter/sessions")
local leaked, orphans = -1, 0
if status == 200 and type(list) == "table" and type(list.sessions) ==
   "table" then
  leaked = 0
  for _, s in ipairs(list.sessions) do
    if known[s.sessionId] then
      leaked = leaked + 1
      print("# leaked session " .. s.sessionId)
    else
      orphans = orphans + 1
      srv:json("DELETE", "/v1/code-interpreter/sessions/" .. s.sessionId)
    end
  end
end
-- Deleted sessions' boxes go as their last requests end; give the server
-- a minute to finish that before counting its descriptors.
local end_fds = nfds(srv.pid)
for _ = 1, 60 do
  if not base_fds or end_fds <= base_fds + 8 then break end
  os.execute("sleep 1")
  end_fds = nfds(srv.pid)
end
local cg = cgname(sh_out("realpath " .. q(srv.state_dir)):gsub("\n$", ""))
srv:stop()
local mounts = tonumber(sh_out("grep -c " .. q(srv.state_dir) ..
  " /proc/self/mountinfo"))
local loops = tonumber(sh_out("losetup -a | grep -c " .. q(srv.state_dir)))
-- processes left in the server's cgroups (sandboxed commands, bwrap)
local function left_procs()
  return sh_out("grep -l " .. q(cg) .. " /proc/[0-9]*/cgroup 2>/dev/null")
end
local left = left_procs()
for _ = 1, 20 do               -- killed ones may take a moment to go
  if left == "" then break end
  os.execute("sleep 1")
  left = left_procs()
end
local procs = 0
for f in left:gmatch("[^\n]+") do
  procs = procs + 1
  if procs <= 5 then
    local cmd = (server.read_file(f:gsub("cgroup$", "cmdline")) or "")
      :gsub("%z", " ")
    print("# left: " .. f:gsub("/cgroup$", "") .. " " .. cmd:sub(1, 100))
  end
end
print(("# requests %d (%s), hang-ups %d, cut by the kills %d, failed %d")
  :format(total, (function()
    local t = {}
    for k, v in pairs(ops) do t[#t + 1] = k .. " " .. v end
    table.sort(t)
    return table.concat(t, ", ")
  end)(), hangups, cut, failed))
print(("# sessions made by creates the kills cut: %d (deleted)")
  :format(orphans))
print(("# leaked: sessions %d, mounts %d, loop devices %d, processes %d, " ..
       "server fds %d at minute 1 -> %d at the end"):format(leaked, mounts,
       loops, procs, base_fds or -1, end_fds or -1))
-- Flat: within each server run (a kill starts a new one), from 20 s
-- after its start (warm) to its end, on the 10 s samples; judged on the
-- longest run, which must have 3 warm samples at least.
local runs = {}
for _, smp in ipairs(samples) do
  local r = runs[smp.life] or { from = smp.t, kb = {} }
  runs[smp.life] = r
  if smp.t - r.from >= 20 then r.kb[#r.kb + 1] = smp.kb end
end
local first, last, longest = nil, nil, 0
for _, r in pairs(runs) do
  if #r.kb > longest then
    longest, first, last = #r.kb, r.kb[1], r.kb[#r.kb]
  end
end
local per_minute = {}
for m = 1, #rss do per_minute[m] = tostring(rss[m]) end
print("# RSS per minute (KiB): " .. table.concat(per_minute, " "))
if longest >= 3 then
  print(("# RSS of the longest server run, warm: %d KiB -> %d KiB (x%.2f)")
    :format(first, last, last / first))
else
  first = nil
  print("# RSS: no server run was long enough to judge its growth")
end
srv:destroy()
os.execute("rm -rf " .. q(work))
local clean = failed == 0 and leaked == 0 and mounts == 0 and loops == 0 and
  procs == 0 and total > 0 and (not first or last / first < 1.5) and
  (not base_fds or end_fds <= base_fds + 8)
print((clean and "ok 1 - soak clean" or "not ok 1 - soak NOT clean") ..
  (": %d min, %d requests, %d failed, %d cut by the kills, leaked %d " ..
   "sessions %d mounts %d loop devices %d processes"):format(MINUTES, total,
   failed, cut, leaked, mounts, loops, procs))
os.exit(clean and 0 or 1)
