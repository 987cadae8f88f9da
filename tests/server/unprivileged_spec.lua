-- The local runtime run by an unprivileged user: it works with what the
-- kernel allows and says which protections are off.
local server = require "server"

describe("an unprivileged server", function()
  local srv, dir, bin
  local WRAP = "setpriv --reuid=65534 --regid=65534 --clear-groups"

  setup(function()
    dir = server.tmpdir("agentcube-unpriv")
    -- a copy the unprivileged user can surely execute, wherever the
    -- build tree lives
    bin = dir .. "/agentcube"
    os.execute("cp " .. server.q(server.bin) .. " " .. server.q(bin) ..
               " && chmod 755 " .. server.q(dir) .. " " .. server.q(bin) ..
               " && chown 65534:65534 " .. server.q(dir))
    srv = server.start{ state_dir = dir .. "/state", wrap = WRAP,
                        env = { HOME = dir }, bin = bin, config = [[
templates:
  - name: net
    warmPoolSize: 0
    network: true
]] }
  end)
  teardown(function()
    srv:stop()
    os.execute("rm -rf " .. server.q(dir))
  end)

  it("--check names what is off and why", function()
    local p = io.popen(WRAP .. " " .. server.q(bin) ..
                       " serve --check --state-dir " ..
                       server.q(dir .. "/check") .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("uid switching%s+off%s+not root", out)
    assert.matches("disk quota %(loop image%)%s+off", out)
    assert.matches("seccomp filter%s+on", out)
    assert.matches("network isolation%s+on", out)
    assert.matches("session networks%s+off%s+not root", out)
    assert.matches("%d+ protections off\n$", out)
  end)

  it("refuses a session with network (503 and why) rather than share " ..
     "the host's network (control: one without is created)", function()
    local status, j = srv:json("POST", "/v1/code-interpreter",
                               { name = "net", namespace = "default" })
    assert.equal(503, status)
    assert.matches("cannot give a session a network: not root", j.message,
                   1, true)
    local id = srv:create{ name = "other", namespace = "default" }
    assert.equal(200, srv:delete(id))
  end)

  it("runs commands and moves files in isolated sandboxes", function()
    local id = srv:create()
    local out, _, code = srv:sh(id, "echo hi > /tmp/x; cat /tmp/x; id -u; " ..
                                     "ls /root 2>&1; true")
    assert.equal(0, code)
    assert.matches("^hi\n1000\n", out)
    assert.matches("No such file or directory", out, 1, true)
    assert.equal(200, (srv:write(id, "/tmp/y", "data")))
    local _, body = srv:download(id, "/tmp/y")
    assert.equal("data", body)
    local status, j = srv:exec(id, { "sleep", "10" }, { timeout = "1s" })
    assert.equal(200, status)
    assert.equal(124, j.exit_code)
    assert.equal(200, srv:delete(id))
  end)
end)
