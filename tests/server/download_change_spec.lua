-- A download of a file the sandbox changes while it is sent, or whose
-- client goes away, ends: no spinning connection, no descriptor kept.
local server = require "server"
local q = server.q

local function cpu_ticks(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- utime and stime are fields 14 and 15 of stat, 12 and 13 after ")"
  return tonumber(fields[12]) + tonumber(fields[13])
end

-- Descriptors of the server that point at a file named name.
local function fds_on(pid, name)
  local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null | grep -c " ..
                     q(name))
  local n = tonumber(p:read("a"):match("%d+"))
  p:close()
  return n
end

local function wait_until(pred, seconds)
  for _ = 1, seconds * 10 do
    if pred() then return true end
    os.execute("sleep 0.1")
  end
  return pred()
end

describe("a download", function()
  local srv, id, dir

  setup(function()
    srv = server.start{}
    id = srv:create()
    dir = server.tmpdir("agentcube-dl")
  end)
  teardown(function()
    srv:destroy()
    os.execute("rm -rf " .. q(dir))
  end)

  -- curl in the background; returns a function that waits for its status
  local function curl_bg(name, rate, out)
    local url = srv.url .. server.DP .. "api/files/" .. name
    local status = dir .. "/" .. out .. ".status"
    os.execute("( curl -s --max-time 120 --limit-rate " .. rate ..
               " -H 'x-agentcube-session-id: " .. id .. "' -o " ..
               q(dir .. "/" .. out) .. " " .. q(url) .. " & echo $! > " ..
               q(dir .. "/" .. out .. ".pid") .. "; wait $!; echo $? > " ..
               q(status) .. " ) >/dev/null 2>&1 &")
    return function(seconds)
      local ok = wait_until(function() return server.read_file(status) end,
                            seconds)
      return ok and tonumber(server.read_file(status)) or nil
    end
  end

  it("arrives whole when nothing changes (control)", function()
    srv:sh(id, "head -c 3000000 /dev/urandom > same.bin")
    local wait = curl_bg("same.bin", "20M", "same")
    assert.are.equal(0, wait(60))
    local f = io.open(dir .. "/same", "rb")
    assert.are.equal(3000000, #f:read("a"))
    f:close()
  end)

  it("of a file that shrinks while it is sent ends and costs no CPU",
     function()
    srv:sh(id, "head -c 64000000 /dev/zero > shrink.bin")
    local wait = curl_bg("shrink.bin", "2M", "shrink")
    os.execute("sleep 1")
    local _, terr, tcode = srv:sh(id, "truncate -s 100000 shrink.bin")
    assert.are.equal(0, tcode, terr)
    local code = wait(100)
    assert.is_not_nil(code, "the download never ended")
    assert.are_not.equal(0, code)   -- a short body: curl reports it
    assert.is_true(wait_until(function()
      return fds_on(srv.pid, "shrink.bin") == 0 end, 20),
      "the server still holds the file")
    local t0 = cpu_ticks(srv.pid)
    os.execute("sleep 3")
    local used = cpu_ticks(srv.pid) - t0
    assert.is_true(used < 100, "server used " .. used .. " ticks in 3 s")
  end)

  it("ends when its client goes away", function()
    srv:sh(id, "head -c 64000000 /dev/zero > slow.bin")
    local wait = curl_bg("slow.bin", "200K", "slow")
    assert.is_true(wait_until(function()
      return fds_on(srv.pid, "slow.bin") > 0 end, 20))
    os.execute("kill -KILL $(cat " .. q(dir .. "/slow.pid") .. ")")
    assert.is_not_nil(wait(20))
    assert.is_true(wait_until(function()
      return fds_on(srv.pid, "slow.bin") == 0 end, 30),
      "the server still sends to a client that is gone")
  end)
end)
