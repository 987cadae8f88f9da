-- The C frame-loop example (examples/frameloop.c, built against the public
-- header only) against a real `agentcube serve`: it creates a session,
-- streams a command while uploading a file, deletes the session, and
-- reports its frames. Timing is reported, not asserted (make bench has
-- the numbers); what must hold is that it all worked from one event fd.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"

local srv

setup(function() srv = server.start{} end)
teardown(function() srv:destroy() end)

describe("the frame-loop example", function()
  it("creates, streams, uploads and deletes without blocking", function()
    local bin = help.build .. "/examples/frameloop"
    local out, status = help.run(("WORKLOAD_MANAGER_URL=%s ROUTER_URL=%s " ..
      "%s 4 1 2>&1"):format(help.q(srv.url),
      help.q(srv.url), help.q(bin)))
    assert.equal(0, status, out)
    assert.matches("ok 1", out)
    local frames = tonumber(out:match("frames (%d+)"))
    local chunks = tonumber(out:match("chunks (%d+)"))
    local up = tonumber(out:match("uploaded (%d+)"))
    assert.is_true(frames > 30, out)          -- the loop kept turning
    assert.is_true(chunks >= 1, out)
    assert.is_true(up >= 4 * 1024 * 1024, out)
    io.stderr:write("# " .. out)
    assert.equal(0, #help.session_ids(srv))
  end)
end)
