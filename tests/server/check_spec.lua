-- `agentcube serve --check` reports the server's protections and every
-- budget in force, as configured.
local server = require "server"

local function check(config)
  local dir = server.tmpdir("agentcube-check")
  local args = " serve --check --state-dir " .. server.q(dir .. "/s")
  if config then
    local f = io.open(dir .. "/c.yaml", "w")
    f:write(config)
    f:close()
    args = args .. " --config " .. server.q(dir .. "/c.yaml")
  end
  local p = io.popen(server.q(server.bin) .. args .. " 2>&1")
  local out = p:read("a")
  p:close()
  os.execute("rm -rf " .. server.q(dir))
  return out
end

describe("serve --check", function()
  it("names the server's protections", function()
    local out = check()
    for _, name in ipairs{ "state directory checks", "/proc masking",
                           "private /etc mount", "session URL binding",
                           "unnamed upload files", "admission control",
                           "per-uid kernel resources",
                           "pseudo-terminals" } do
      assert.matches("\n  " .. name:gsub("%p", "%%%0") .. "%s+on ", out)
    end
    assert.matches("%d+ protections? off\n$", out)
  end)

  it("reports the budgets as configured", function()
    local defaults = check()
    assert.matches("sessions%s+256\n", defaults)
    assert.matches("depth 64, 100000 values", defaults)
    local out = check("maxSessions: 7\nmaxJsonDepth: 9\nmaxJsonNodes: 99\n" ..
                      "maxRequestMemory: 300Mi\nmemoryOvercommit: 0\n" ..
                      "maxLoopDevices: 5\nminFreeDisk: 2Gi\n")
    assert.matches("sessions%s+7\n", out)
    assert.matches("loop devices%s+5\n", out)
    assert.matches("depth 9, 99 values", out)
    assert.matches("memory of requests in flight%s+300 MiB", out)
    assert.matches("memory overcommit%s+off", out)
    assert.matches("keep 2048 MiB free", out)
  end)
end)
