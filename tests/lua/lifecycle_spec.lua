-- DESIGN section 5 against a real `agentcube serve`: owned sessions are
-- deleted by stop(), <close>, garbage collection and the end of the Lua
-- state; detached and attached ones survive; a stopped client raises
-- ECLOSED; a server killed mid-request gives a clear error.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local srv

local function opts(extra)
  return help.opts(srv.url, extra)
end

local function client(extra)
  return agentcube.CodeInterpreterClient(opts(extra))
end

local function count()
  return #help.session_ids(srv)
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(agentcube.is_error(err), tostring(err))
  return err
end

-- A thousand sessions at once is a test of the client, not of the host:
-- the server's admission control is told to let them all in.
setup(function()
  srv = server.start{ config = "maxSessions: 5000\nmaxLoopDevices: 5000\n" ..
                               "memoryOvercommit: 0\n" ..
                               "diskOvercommit: true\n" }
end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
end)

describe("garbage collection", function()
  it("1000 dropped clients leave no session after collect + flush",
     function()
    for i = 1, 1000 do
      local ci = client()
      if i % 100 == 0 then ci:execute_command("true") end
    end
    collectgarbage()
    collectgarbage()
    local deleted, failed = agentcube.flush()
    assert.equal(0, failed)
    assert.is_true(deleted > 0)
    assert.equal(0, agentcube.pending())
    assert.equal(0, count())
  end)

  it("1000 dropped clients leave no session after the script ends",
     function()
    local out, code = help.lua(([[
      local agentcube = require "agentcube"
      local o = { workload_manager_url = %q, router_url = %q }
      for i = 1, 1000 do agentcube.CodeInterpreterClient(o) end
      local held = agentcube.CodeInterpreterClient(o)  -- still referenced
      print("created")
    ]]):format(srv.url, srv.url))
    assert.equal(0, code, out)
    assert.matches("created", out)
    assert.equal(0, count())
  end)
end)

describe("scope", function()
  it("<close> deletes at scope exit, also when the block raises", function()
    local id
    local ok, err = pcall(function()
      local ci <close> = client()
      id = ci.session_id
      ci:execute_command("false")
    end)
    assert.is_false(ok)
    assert.equal("CommandExecutionError", err.kind)  -- the block's error
    assert.is_string(id)
    assert.equal(0, count())
  end)
end)

describe("ownership", function()
  it("keeps detached and attached sessions past GC and state end",
     function()
    local det, att
    do
      local ci <close> = client()
      ci:write_file("kept", "k.txt")
      det = ci:detach()
    end
    collectgarbage()
    agentcube.flush()
    assert.same({ det }, help.session_ids(srv))
    -- a child state attaches and ends: the session stays
    local out, code = help.lua(([[
      local agentcube = require "agentcube"
      local ci = agentcube.CodeInterpreterClient{ workload_manager_url = %q,
        router_url = %q, session_id = %q }
      io.write(ci:read_file("k.txt"))
      local mine = agentcube.CodeInterpreterClient{
        workload_manager_url = %q, router_url = %q }
      print(" " .. mine:detach())
    ]]):format(srv.url, srv.url, det, srv.url, srv.url))
    assert.equal(0, code, out)
    att = out:match("^kept (%S+)")
    assert.is_string(att)
    local ids = help.session_ids(srv)
    table.sort(ids)
    local want = { det, att }
    table.sort(want)
    assert.same(want, ids)
    -- explicit stop() deletes attached sessions
    client{ session_id = det }:stop()
    client{ session_id = att }:stop()
    assert.equal(0, count())
  end)

  it("stop() twice is fine; methods after it raise ECLOSED", function()
    local ci = client()
    assert.is_true(ci:stop())
    assert.is_true(ci:stop())
    local e = catch(ci.execute_command, ci, "true")
    assert.equal("ECLOSED", e.code)
    assert.equal("SessionError", e.kind)
    assert.matches("stopped", e.message)
    assert.equal("agentcube.Session (closed)", tostring(ci))
    assert.equal(0, count())
  end)
end)

describe("a server killed mid-request", function()
  it("gives a clear error, and the session is still deletable", function()
    local victim = server.start{}
    finally(function() victim:destroy() end)
    local ci = agentcube.CodeInterpreterClient(help.opts(victim.url,
                                               { max_retries = 0 }))
    local id = ci.session_id
    os.execute("(sleep 1; kill -9 " .. victim.pid .. ") &")
    local ok, e = pcall(ci.execute_command, ci, "sleep 20")
    assert.is_false(ok)
    assert.is_true(agentcube.is_error(e), tostring(e))
    assert.is_truthy(({ EIO = true, ECONNECT = true })[e.code], e.code)
    victim.proc:close()
    victim.proc = nil
    e = catch(ci.execute_command, ci, "true")
    assert.equal("ConnectionError", e.kind)
    -- sessions survive a crash of the server: after a restart the client
    -- (same URL) deletes its session
    victim.opts.listen = victim.url:match("^http://(.*)$")
    victim:launch()
    assert.same({ id }, help.session_ids(victim))
    assert.is_true(ci:stop())
    assert.same({}, help.session_ids(victim))
  end)
end)
