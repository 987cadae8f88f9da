-- Connection budgets of the event-driven server: idle connections cost no
-- thread and do not hold up others, caps per address and in total answer
-- with a clear refusal, slow headers are cut, serve --check reports it all.
local server = require "server"

local RAW = "python3 tests/helpers/rawconn.py "

local function hostport(srv)
  return srv.url:match("^http://([^:]+):(%d+)$")
end

local function proc_status(pid, key)
  local s = server.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match(key .. ":%s*(%d+)"))
end

local function count_fds(pid)
  local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

-- The server accepts connections a moment after a client has them open
-- (they wait in the kernel's backlog first): asks /health until it
-- answers want, for at most secs seconds; returns the last answer.
local function health_until(srv, want, secs)
  local deadline = now() + secs
  local status, j, h
  repeat
    status, j, h = srv:json("GET", "/health")
    if status == want then break end
    os.execute("sleep 0.05")
  until now() >= deadline
  return status, j, h
end

describe("connection budgets", function()
  it("2000 idle connections cost no threads and do not block a request",
     function()
    local srv = server.start{ config = [[
maxConnections: 3000
maxConnectionsPerAddress: 2500
headerTimeout: 120s
idleTimeout: 120s
default: { warmPoolSize: 0 }
]] }
    local host, port = hostport(srv)
    local threads0 = proc_status(srv.pid, "Threads")
    -- From another loopback address, so the spec's own requests are not
    -- counted against the same address.
    local p = io.popen(RAW .. "idle 2000 127.0.0.2 " .. host .. " " ..
                       port .. " 20")
    assert.equal("open 2000", p:read("l"))
    -- positive control: the server really holds them (connected is not
    -- yet accepted: the kernel's backlog takes them first)
    local fds, deadline = count_fds(srv.pid), now() + 20
    while fds < 2000 and now() < deadline do
      os.execute("sleep 0.05")
      fds = count_fds(srv.pid)
    end
    assert.is_true(fds >= 2000, "server holds " .. fds .. " fds")
    local t0 = now()
    local status, j = srv:json("GET", "/health")
    local dt = now() - t0
    assert.equal(200, status)
    assert.equal("healthy", j.status)
    assert.is_true(dt < 2, ("health took %.3fs"):format(dt))
    local id = srv:create()
    local out = srv:sh(id, "echo ok")
    assert.equal("ok\n", out)
    local threads = proc_status(srv.pid, "Threads")
    assert.is_true(threads - threads0 < 40,
      ("threads %d -> %d with 2000 connections"):format(threads0, threads))
    assert.equal("still-open 2000", p:read("l"))
    p:close()
    srv:delete(id)
    srv:destroy()
  end)

  it("refuses connections over the per-address cap with 429", function()
    local srv = server.start{ config = [[
maxConnectionsPerAddress: 3
default: { warmPoolSize: 0 }
]] }
    local host, port = hostport(srv)
    local p = io.popen(RAW .. "idle 3 127.0.0.1 " .. host .. " " .. port ..
                       " 4")
    assert.equal("open 3", p:read("l"))
    local status, j, h = health_until(srv, 429, 3)
    assert.equal(429, status)
    assert.equal("TOO_MANY_CONNECTIONS", j.code)
    assert.matches("too many connections from 127.0.0.1 %(the server " ..
                   "allows 3 per address%)", j.error)
    assert.equal("close", h["connection"])
    assert.equal("still-open 3", p:read("l"))
    p:close()
    -- positive control: once they are gone, the same client is served
    status = srv:json("GET", "/health")
    assert.equal(200, status)
    srv:destroy()
  end)

  it("refuses connections over the global cap with 503", function()
    local srv = server.start{ config = [[
maxConnections: 4
default: { warmPoolSize: 0 }
]] }
    local host, port = hostport(srv)
    local p = io.popen(RAW .. "idle 4 127.0.0.2 " .. host .. " " .. port ..
                       " 4")
    assert.equal("open 4", p:read("l"))
    local status, j = health_until(srv, 503, 3)
    assert.equal(503, status)
    assert.equal("CONNECTION_LIMIT", j.code)
    assert.matches("limit of 4 connections", j.error)
    p:read("l")
    p:close()
    status = srv:json("GET", "/health")
    assert.equal(200, status)
    srv:destroy()
  end)

  it("closes a connection whose header does not arrive in time", function()
    local srv = server.start{ config = [[
headerTimeout: 1s
default: { warmPoolSize: 0 }
]] }
    local host, port = hostport(srv)
    local p = io.popen(RAW .. "partial " .. host .. " " .. port)
    assert.equal("sent", p:read("l"))
    local s = tonumber(p:read("l"):match("^closed after ([%d.]+)$"))
    p:close()
    assert.is_true(s ~= nil and s >= 0.5 and s < 10, tostring(s))
    -- positive control: a complete request on a fresh connection is served
    p = io.popen(RAW .. "request " .. host .. " " .. port ..
                 " GET /health '' ''")
    assert.equal("sent", p:read("l"))
    assert.matches("status 200$", p:read("l"))
    p:close()
    srv:destroy()
  end)

  it("serve --check reports the budgets, defaults and configured", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/c.yaml", "w")
    f:write("maxConnections: 77\nheaderTimeout: 5s\nidleTimeout: 2m\n")
    f:close()
    local p = io.popen(server.q(server.bin) .. " serve --check --state-dir " ..
                       server.q(dir .. "/s") .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("maxConnections%s+1024 %(503 beyond%)", out)
    assert.matches("maxConnectionsPerAddress%s+256 %(429 beyond%)", out)
    assert.matches("headerTimeout%s+30s", out)
    assert.matches("idleTimeout%s+60s", out)
    p = io.popen(server.q(server.bin) .. " serve --check --state-dir " ..
                 server.q(dir .. "/s") .. " --config " ..
                 server.q(dir .. "/c.yaml") .. " 2>&1")
    out = p:read("a")
    p:close()
    assert.matches("maxConnections%s+77 ", out)
    assert.matches("headerTimeout%s+5s", out)
    assert.matches("idleTimeout%s+120s", out)
    -- a cap of 0 is refused with the place of the mistake
    f = io.open(dir .. "/bad.yaml", "w")
    f:write("maxConnections: 0\n")
    f:close()
    p = io.popen(server.q(server.bin) .. " serve --check --state-dir " ..
                 server.q(dir .. "/s") .. " --config " ..
                 server.q(dir .. "/bad.yaml") .. " 2>&1; echo \"exit $?\"")
    out = p:read("a")
    p:close()
    assert.matches("bad.yaml:1:%d+: maxConnections must be at least 1", out)
    assert.matches("exit 2", out)
    server.sh("rm -rf " .. server.q(dir))
  end)
end)
