-- Pseudo-terminals are a host-wide resource: each session has a devpts
-- instance of its own with a maximum (template key ptys), so one session
-- cannot take the host's.
local server = require "server"

local COUNT = [[python3 -c "
import pty
fds = []
try:
    for i in range(500):
        fds.append(pty.openpty())
except OSError as e:
    pass
print(len(fds))
"]]

describe("ptys", function()
  local srv, a, b

  setup(function()
    srv = server.start{ config = [[
templates:
  - name: my-interpreter
    ptys: 4
  - name: roomy
    ptys: 40
]] }
    a = srv:create()
    b = srv:create{ name = "roomy", namespace = "default" }
  end)
  teardown(function()
    srv:destroy()
  end)

  it("stop at the session's maximum", function()
    local out, err, code = srv:sh(a, COUNT)
    assert.are.equal(0, code, err)
    assert.are.equal("4\n", out)
  end)

  it("are counted per session, not taken from another (control)", function()
    local out = srv:sh(b, COUNT)
    assert.are.equal("40\n", out)
    -- while one session holds all of its own, the other still gets its
    local held = srv:sh(a, "(" .. COUNT:gsub("print%(len%(fds%)%)",
      "import time; time.sleep(4)") .. ") >/dev/null 2>&1 & sleep 1; " ..
      COUNT)
    assert.are.equal("0\n", held)
    out = srv:sh(b, COUNT)
    assert.are.equal("40\n", out)
  end)

  it("do not show the instance's host path", function()
    local out = srv:sh(a, "grep devpts /proc/self/mountinfo")
    assert.matches(" / /dev/pts ", out)
    assert.matches("max=4", out)
    assert.is_nil(out:find("/run/agentcube", 1, true))
  end)
end)
