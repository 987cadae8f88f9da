-- The official AgentCube Python SDK, unmodified, against `agentcube serve`.
-- The SDK is not a Debian package: point AGENTCUBE_PY_SDK at a checkout of
-- its sdk-python directory to run this spec; without it the spec is pending.
local server = require "server"

local sdk = os.getenv("AGENTCUBE_PY_SDK")

describe("the official Python SDK", function()
  if not sdk then
    pending("AGENTCUBE_PY_SDK is not set")
    return
  end

  it("runs the README's scenarios against the local runtime", function()
    local srv = server.start{ auth = true }
    local script = server.read_file("tests/sdk/quickstart.py")
    local path = server.tmpdir() .. "/quickstart.py"
    local f = io.open(path, "w")
    f:write(script)
    f:close()
    local p = io.popen(("WORKLOAD_MANAGER_URL=%s ROUTER_URL=%s " ..
      "AGENTCUBE_TOKEN=%s PYTHONPATH=%s /usr/bin/python3 %s 2>&1"):format(
      srv.url, srv.url, srv.token, server.q(sdk), server.q(path)))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.matches("Hello, AgentCube!", out, 1, true)
    assert.matches("value=42", out, 1, true)
    assert.matches("summary=sum_a,4", out, 1, true)
    assert.matches("reused=42", out, 1, true)
    local _, j = srv:json("GET", "/v1/code-interpreter/sessions")
    assert.equal(0, #j.sessions)
    srv:destroy()
  end)

  it("leaves no run_code script in /workspace", function()
    local srv = server.start{}
    local path = server.tmpdir() .. "/litter.py"
    local f = io.open(path, "w")
    f:write([[
import os
from agentcube import CodeInterpreterClient
url = os.environ["URL"]
with CodeInterpreterClient(workload_manager_url=url, router_url=url) as c:
    c.write_file("mine", "mine.txt")
    for i in range(3):
        c.run_code("python", "print(%d)" % i)
        c.run_code("bash", "echo %d" % i)
    print("files=" + ",".join(sorted(e["name"] for e in c.list_files("."))))
]])
    f:close()
    local p = io.popen(("URL=%s PYTHONPATH=%s /usr/bin/python3 %s 2>&1")
                       :format(srv.url, server.q(sdk), server.q(path)))
    local out = p:read("a")
    local ok = p:close()
    srv:destroy()
    assert.is_true(ok, out)
    -- mine.txt is the control: the listing sees the workspace's files
    assert.matches("files=mine.txt\n", out, 1, true)
  end)
end)
