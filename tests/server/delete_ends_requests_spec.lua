-- A DELETE of a session ends every request of that session in flight, and
-- the box is really gone afterwards (no mount, no directory, nothing
-- running as its uid), even when a client keeps trickling bytes.
local server = require "server"

local RAW = "python3 tests/helpers/rawconn.py "
local DP = server.DP

local function hostport(srv)
  return srv.url:match("^http://([^:]+):(%d+)$")
end

local function boxes(srv)
  local p = io.popen("ls " .. server.q(srv.state_dir .. "/boxes") ..
                     " 2>/dev/null | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

local function mounts(srv)
  local p = io.popen("grep -c " .. server.q(srv.state_dir) ..
                     " /proc/self/mountinfo")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

-- Polls f() until it is true or about limit seconds pass.
local function eventually(f, limit)
  for _ = 1, (limit or 10) * 10 do
    if f() then return true end
    os.execute("sleep 0.1")
  end
  return f()
end

describe("DELETE ends the session's requests", function()
  local srv, host, port
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    host, port = hostport(srv)
  end)
  teardown(function() srv:destroy() end)

  local function trickle(id, path, ctype)
    return io.popen(RAW .. "trickle " .. host .. " " .. port .. " " ..
      server.q(DP .. path) .. " " ..
      server.q("x-agentcube-session-id: " .. id .. "|Content-Type: " ..
               ctype) .. " 10000000")
  end

  it("a trickling multipart upload is cut and the box goes", function()
    local id = srv:create()
    local before = mounts(srv)
    assert.is_true(boxes(srv) >= 1)
    local p = trickle(id, "api/files", "multipart/form-data; boundary=XX")
    assert.equal("started", p:read("l"))
    os.execute("sleep 0.5")
    assert.equal(200, (srv:delete(id)))
    local line = p:read("l")
    p:close()
    local s = tonumber(line:match("^closed after ([%d.]+)"))
    assert.is_true(s ~= nil and s < 10, line)
    assert.is_true(eventually(function() return boxes(srv) == 0 end),
                   "the box directory stays")
    assert.is_true(before == 0 or mounts(srv) < before, "the image stays "
                   .. "mounted")
    -- the session is gone for good
    local status = srv:exec(id, { "true" })
    assert.equal(404, status)
  end)

  it("a trickling JSON upload is cut too", function()
    local id = srv:create()
    local p = trickle(id, "api/files", "application/json")
    assert.equal("started", p:read("l"))
    assert.equal(200, (srv:delete(id)))
    local line = p:read("l")
    p:close()
    assert.matches("^closed after", line)
    assert.is_true(eventually(function() return boxes(srv) == 0 end))
  end)

  it("a running command is ended", function()
    local id = srv:create()
    local body = '{"command":["sleep","60.123"],"timeout":"120s"}'
    local p = io.popen(RAW .. "request " .. host .. " " .. port .. " POST " ..
      server.q(DP .. "api/execute") .. " " ..
      server.q("x-agentcube-session-id: " .. id ..
               "|Content-Type: application/json") .. " " .. server.q(body))
    assert.equal("sent", p:read("l"))
    assert.is_true(eventually(function()
      local q = io.popen("pgrep -f '^sleep 60.123$' | wc -l")
      local n = tonumber(q:read("l"))
      q:close()
      return n > 0
    end), "the command never started")
    assert.equal(200, (srv:delete(id)))
    local line = p:read("l")
    p:close()
    local s = tonumber(line:match("^closed after ([%d.]+)"))
    assert.is_true(s ~= nil and s < 30, line)
    assert.is_true(eventually(function() return boxes(srv) == 0 end))
  end)

  it("other sessions' requests are not touched", function()
    local a, b = srv:create(), srv:create()
    local p = trickle(b, "api/files", "application/json")
    assert.equal("started", p:read("l"))
    assert.equal(200, (srv:delete(a)))
    -- b's upload is still running: a DELETE of b ends it (control)
    os.execute("sleep 0.5")
    assert.equal(200, (srv:delete(b)))
    local line = p:read("l")
    p:close()
    local sent = tonumber(line:match("sent (%d+)$"))
    -- 0.5 s at one byte every 50 ms: well past the first 64 bytes
    assert.is_true(sent and sent > 64, line)
  end)
end)
