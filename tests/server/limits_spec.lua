-- Resource limits of a template: memory, processes, disk, file size, CPU.
local server = require "server"

describe("limits", function()
  local srv, id
  setup(function()
    srv = server.start{ config = [[
templates:
  - name: tight
    warmPoolSize: 0
    disk: 64Mi
    maxFileSize: 32Mi
    resources: { limits: { memory: 128Mi, pids: 48, cpu: "500m" } }
]] }
    local _, j = srv:json("POST", "/v1/code-interpreter",
                          { name = "tight", namespace = "default" })
    id = j.sessionId
  end)
  teardown(function() srv:destroy() end)

  it("kills a process that exceeds the memory limit", function()
    local _, _, code, j = srv:sh(id, [[python3 -c '
l = []
for i in range(64):
    l.append(bytearray(16 << 20))
print("survived")']])
    assert.are_not.equal(0, code)
    assert.is_nil(j.stdout:find("survived", 1, true))
    assert.is_true(j.oom_killed)
    -- the session still works afterwards
    assert.equal("ok\n", (srv:sh(id, "echo ok")))
  end)

  it("contains a fork bomb at the pids limit", function()
    local out, _, code = srv:sh(id, [[
n=0
for i in $(seq 1 200); do sleep 5 & if [ $? -eq 0 ]; then n=$((n+1)); fi; done 2>/dev/null
echo started=$n
]], "20s")
    assert.equal(0, code)
    local n = tonumber(out:match("started=(%d+)"))
    assert.is_true(n < 48, out)
    assert.equal("ok\n", (srv:sh(id, "echo ok")))
  end)

  it("stops a disk fill at the quota with ENOSPC", function()
    local out = srv:sh(id, "dd if=/dev/zero of=fill bs=1M count=200 2>&1; " ..
                           "echo rc=$?; rm -f fill")
    assert.matches("No space left on device", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    -- the file API reports the full disk too
    srv:sh(id, "dd if=/dev/zero of=fill bs=1M count=200 2>/dev/null; true")
    local status = srv:write(id, "more.txt", ("x"):rep(1 << 20))
    assert.is_true(status >= 400)
    srv:sh(id, "rm -f fill")
    assert.equal(200, (srv:write(id, "more.txt", "x")))
  end)

  it("stops a single huge file at maxFileSize", function()
    local out = srv:sh(id, "dd if=/dev/zero of=/tmp/big bs=1M count=40 " ..
                           "2>&1; echo rc=$?; stat -c %s /tmp/big; rm -f /tmp/big")
    assert.matches("File too large", out, 1, true)
    assert.matches("33554432", out, 1, true)
  end)

  it("throttles CPU to the quota", function()
    local out = srv:sh(id, [[python3 -c '
import time, os
t0 = time.time(); c0 = time.process_time()
while time.time() - t0 < 2: pass
print(round((time.process_time() - c0) / (time.time() - t0), 2))']], "30s")
    local share = tonumber(out)
    assert.is_true(share < 0.8, "cpu share " .. tostring(share))
  end)
end)
