-- Admission control: a session the host cannot give is refused with a
-- clear 503 (sessions, loop devices, memory) or 507 (disk), and the next
-- one is admitted once room is made.
local server = require "server"

local function host_memory()
  local f = io.open("/proc/meminfo")
  local kb = tonumber(f:read("a"):match("MemTotal:%s+(%d+)"))
  f:close()
  return kb * 1024
end

local function free_bytes(path)
  local p = io.popen("df -B1 --output=avail " .. server.q(path) ..
                     " | tail -1")
  local n = tonumber(p:read("a"):match("%d+"))
  p:close()
  return n
end

local function create(srv, name)
  return srv:json("POST", "/v1/code-interpreter",
                  { name = name or "t", namespace = "default" })
end

describe("admission control", function()
  it("caps sessions (maxSessions) with 503, even with a warm sandbox " ..
     "ready, and admits after a delete", function()
    local srv
    finally(function() if srv then srv:destroy() end end)
    srv = server.start{ config = [[
maxSessions: 2
default:
  warmPoolSize: 0
templates:
  - name: t
    warmPoolSize: 1
]] }
    -- the complete boxes on disk (box.info is written last): the
    -- sessions' and the warm one
    local function boxes_reach(n)
      local deadline = server.monotonic() + 30
      repeat
        local p = io.popen("ls " .. server.q(srv.state_dir .. "/boxes") ..
                           "/*/box.info 2>/dev/null")
        local count = select(2, p:read("a"):gsub("\n", ""))
        p:close()
        if count >= n then return true end
        os.execute("sleep 0.05")
      until server.monotonic() > deadline
      return false
    end
    local s1, a = create(srv)
    local s2 = create(srv)
    assert.are.equal(200, s1)
    assert.are.equal(200, s2)
    assert.is_true(boxes_reach(3), "the warm sandbox is refilled")
    local s3, j = create(srv)
    assert.are.equal(503, s3)
    assert.matches("too many sessions: 2 of 2 %(maxSessions%)", j.message)
    -- the Router's auto-create says the same
    local st, rj = srv:json("POST", "/v1/namespaces/default/" ..
                            "code-interpreters/t/invocations/api/execute",
                            { command = { "true" } })
    assert.are.equal(503, st)
    assert.matches("maxSessions", rj.error)
    assert.are.equal(200, (srv:delete(a.sessionId)))
    assert.are.equal(200, (create(srv)))
  end)

  it("refuses memory limits past memoryOvercommit x host memory, to " ..
     "sessions and warm sandboxes alike", function()
    local each = math.floor(host_memory() * 0.4)
    local srv
    finally(function() if srv then srv:destroy() end end)
    srv = server.start{ config = ([[
memoryOvercommit: 1
default:
  warmPoolSize: 0
templates:
  - name: t
    warmPoolSize: 0
    resources: { limits: { memory: "%d" } }
  - name: huge
    warmPoolSize: 1
    resources: { limits: { memory: "%d" } }
]]):format(each, each * 3) }
    assert.are.equal(200, (create(srv)))
    assert.are.equal(200, (create(srv)))
    local status, j = create(srv)
    assert.are.equal(503, status)
    assert.matches("memoryOvercommit", j.message)
    status, j = create(srv, "huge")
    assert.are.equal(503, status)
    assert.matches("memoryOvercommit", j.message)
    -- the boxes on disk are the two sessions': no warm one for huge
    local p = io.popen("ls " .. server.q(srv.state_dir .. "/boxes"))
    local boxes = select(2, p:read("a"):gsub("\n", ""))
    p:close()
    assert.are.equal(2, boxes)
    srv:destroy()
    -- control: with the policy off the same third session is admitted
    srv = server.start{ config = ([[
memoryOvercommit: 0
default:
  warmPoolSize: 0
templates:
  - name: t
    warmPoolSize: 0
    resources: { limits: { memory: "%d" } }
]]):format(each) }
    for _ = 1, 3 do assert.are.equal(200, (create(srv))) end
  end)

  it("reserves disk quotas against free space with 507", function()
    local probe = server.tmpdir("agentcube-df")
    local free = free_bytes(probe)
    os.execute("rm -rf " .. server.q(probe))
    -- room for one 1 GiB image above minFreeDisk, not for two
    local min_free = free - math.floor(1.5 * 2^30)
    local srv
    finally(function() if srv then srv:destroy() end end)
    srv = server.start{ config = ([[
minFreeDisk: "%d"
default:
  warmPoolSize: 0
templates:
  - name: t
    warmPoolSize: 0
    disk: 1Gi
]]):format(min_free) }
    local status, j = create(srv)
    assert.are.equal(200, status, type(j) == "table" and j.message or j)
    status, j = create(srv)
    assert.are.equal(507, status)
    assert.matches("not enough disk", j.message)
    assert.matches("minFreeDisk", j.message)
  end)

  it("caps loop devices for disk images (maxLoopDevices)", function()
    local srv
    finally(function() if srv then srv:destroy() end end)
    srv = server.start{ config = [[
maxLoopDevices: 1
default:
  warmPoolSize: 0
templates:
  - name: t
    warmPoolSize: 0
    disk: 64Mi
]] }
    assert.are.equal(200, (create(srv)))
    local status, j = create(srv)
    assert.are.equal(503, status)
    assert.matches("maxLoopDevices", j.message)
  end)

  it("rejects a malformed policy in the configuration", function()
    local dir = server.tmpdir("agentcube-adm")
    local cfg = dir .. "/c.yaml"
    local f = io.open(cfg, "w")
    f:write("memoryOvercommit: lots\n")
    f:close()
    local p = io.popen(server.q(server.bin) .. " serve --check --state-dir " ..
                       server.q(dir .. "/s") .. " --config " .. server.q(cfg) ..
                       " 2>&1; echo status=$?")
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. server.q(dir))
    assert.matches("c.yaml:1:19: memoryOvercommit must be a number", out)
    assert.matches("status=2", out)
  end)
end)
