-- run_code writes its script into /workspace and runs it (the SDK's two
-- requests, also with explicit URLs); the local runtime removes it once
-- it has run (tests/server/sdk_script_spec.lua), so a client's run_code
-- calls leave /workspace as they found it.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local srv

setup(function() srv = server.start{} end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
end)

local function listing(ci)
  return ci:execute_command({ "sh", "-c", "ls -A /workspace | sort" })
end

describe("run_code with explicit URLs", function()
  it("leaves /workspace as it found it", function()
    local ci <close> = agentcube.CodeInterpreterClient(help.opts(srv.url))
    ci:write_file("keep", "mine.txt")
    local before = listing(ci)
    assert.equal("mine.txt\n", before)     -- control: the listing sees files
    for i = 1, 3 do
      assert.equal(i .. "\n", ci:run_code("python", ("print(%d)"):format(i)))
      assert.equal(i .. "\n", ci:run_code("bash", ("echo %d"):format(i)))
      -- a failed run leaves nothing behind either
      assert.equal(3, ci:run_code_result("bash", "exit 3").exit_code)
    end
    assert.equal(before, listing(ci))
  end)

  it("the script is there while it runs", function()
    local ci <close> = agentcube.CodeInterpreterClient(help.opts(srv.url))
    local out = ci:run_code("python",
                            "import os, sys; print(os.path.basename(" ..
                            "sys.argv[0]) in os.listdir('/workspace'))")
    assert.equal("True\n", out)
    assert.equal("", listing(ci))
  end)
end)
