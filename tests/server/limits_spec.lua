-- Resource limits of a template: memory, processes, disk, file size, CPU.
local server = require "server"

describe("limits", function()
  local srv, id, free   -- free: the control, without the tight limits
  setup(function()
    srv = server.start{ config = [[
templates:
  - name: tight
    warmPoolSize: 0
    disk: 64Mi
    maxFileSize: 32Mi
    resources: { limits: { memory: 128Mi, pids: 48, cpu: "500m" } }
  - name: free
    warmPoolSize: 0
    resources: { limits: { memory: 1Gi } }
]] }
    local _, j = srv:json("POST", "/v1/code-interpreter",
                          { name = "tight", namespace = "default" })
    id = j.sessionId
    _, j = srv:json("POST", "/v1/code-interpreter",
                    { name = "free", namespace = "default" })
    free = j.sessionId
  end)
  teardown(function() srv:destroy() end)

  it("kills a process that exceeds the memory limit", function()
    local hog = [[python3 -c '
l = []
for i in range(16):
    l.append(bytearray(16 << 20))
print("survived")']]
    -- control: 256 MiB is fine where the limit is 1 GiB
    local out, _, ccode = srv:sh(free, hog)
    assert.equal(0, ccode)
    assert.equal("survived\n", out)
    local _, _, code, j = srv:sh(id, hog)
    assert.are_not.equal(0, code)
    assert.is_nil(j.stdout:find("survived", 1, true))
    assert.is_true(j.oom_killed)
    -- the session still works afterwards
    assert.equal("ok\n", (srv:sh(id, "echo ok")))
  end)

  it("contains a fork bomb at the pids limit", function()
    local out, err, code = srv:sh(id, [[python3 -c '
import os, time
n = 0
for i in range(200):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
print("started=%d" % n)']], "30s")
    assert.equal(0, code, err)
    local n = tonumber(out:match("started=(%d+)"))
    assert.is_true(n > 0 and n < 48, out)
    assert.equal("ok\n", (srv:sh(id, "echo ok")))
  end)

  it("stops a disk fill at the quota with ENOSPC", function()
    -- files below maxFileSize each, so that the disk fills first
    local out = srv:sh(id, "for i in 1 2 3 4; do dd if=/dev/zero of=fill$i " ..
                           "bs=1M count=30 2>&1 | grep -v copied; done; " ..
                           "rm -f fill*")
    assert.matches("No space left on device", out, 1, true)
    -- the file API reports the full disk too
    srv:sh(id, "for i in 1 2 3; do dd if=/dev/zero of=fill$i bs=1M " ..
               "count=30 2>/dev/null; done; true")
    local status, j = srv:write(id, "more.txt", ("x"):rep(1 << 20))
    assert.equal(507, status)
    assert.matches("space", j.error)
    srv:sh(id, "rm -f fill*")
    assert.equal(200, (srv:write(id, "more.txt", "x")))
  end)

  it("stops a single huge file at maxFileSize", function()
    local out = srv:sh(id, "dd if=/dev/zero of=/tmp/big bs=1M count=40 " ..
                           "2>/dev/null; echo rc=$?; stat -c %s /tmp/big; " ..
                           "rm -f /tmp/big")
    assert.equal("rc=153\n33554432\n", out)   -- SIGXFSZ at 32 MiB
  end)

  it("throttles CPU to the quota (500m), against an unthrottled control",
     function()
    local spin = [[python3 -c '
import time
t0 = time.monotonic(); c0 = time.process_time()
while time.monotonic() - t0 < 2: pass
print(round((time.process_time() - c0) / (time.monotonic() - t0), 2))']]
    local control = tonumber((srv:sh(free, spin, "30s")))
    local share = tonumber((srv:sh(id, spin, "30s")))
    print(("# cpu share: throttled %.2f, unthrottled %.2f"):format(share,
                                                                 control))
    if control < 0.8 then
      -- the machine is too busy to tell a 0.5 quota from its own load
      pending(("the unthrottled control got only %.2f CPU"):format(control))
      return
    end
    assert.is_true(share <= 0.6, "cpu share " .. tostring(share))
  end)
end)
