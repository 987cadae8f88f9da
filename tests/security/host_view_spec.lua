-- A session's trees are published on the host (bwrap reaches them by
-- path) but no other host user can read or plant files there, /tmp
-- included, while the sandbox itself still has a world-writable /tmp.
local server = require "server"
local q = server.q

local NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups "

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo status=$?")
  local out = p:read("a")
  p:close()
  return out
end

describe("the published session trees", function()
  local srv, id, mark, tmpfile

  setup(function()
    srv = server.start{}
    id = srv:create()
    mark = "agentcube-secret-" .. os.time() .. "-" .. math.random(1e6)
    srv:sh(id, "echo " .. mark .. " > /tmp/" .. mark .. "; " ..
               "echo " .. mark .. " > /workspace/" .. mark)
    local p = io.popen("ls -d /run/agentcube/*/*/tmp/" .. mark ..
                       " " .. q(srv.state_dir) .. "/boxes/*/root/tmp/" ..
                       mark .. " 2>/dev/null | head -1")
    tmpfile = p:read("l")
    p:close()
  end)
  teardown(function()
    srv:destroy()
  end)

  it("are found on the host by root (control)", function()
    assert.truthy(tmpfile, "the session's /tmp is not on the host")
    assert.truthy(server.read_file(tmpfile):find(mark, 1, true))
  end)

  it("cannot be read or written by another host user", function()
    local box = tmpfile:match("^(.*)/tmp/[^/]+$")
    local out = run(NOBODY .. "cat " .. q(tmpfile))
    assert.matches("Permission denied", out)
    assert.is_nil(out:find(mark .. "\n", 1, true))
    out = run(NOBODY .. "ls " .. q(box .. "/tmp") .. " " ..
              q(box .. "/workspace"))
    assert.matches("Permission denied", out)
    out = run(NOBODY .. "touch " .. q(box .. "/tmp/planted"))
    assert.matches("Permission denied", out)
    -- control: the same user reads a world-readable file elsewhere
    out = run(NOBODY .. "cat /etc/hostname")
    assert.matches("status=0", out)
  end)

  it("leave the sandbox a sticky world-writable /tmp", function()
    local out = srv:sh(id, "stat -c %a /tmp; cat /tmp/" .. mark)
    assert.are.equal("1777\n" .. mark .. "\n", out)
  end)
end)
