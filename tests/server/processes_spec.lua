-- Background processes (docs/extensions.md): they outlive the request,
-- keep their output in a ring, take stdin and signals, can be waited for,
-- and die with the session.
local server = require "server"
local cjson = require "cjson"

local RAW = "python3 tests/helpers/rawconn.py "
local DP = server.DP

local function count(pattern)
  local p = io.popen("pgrep -f " .. server.q(pattern) .. " | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

describe("background processes", function()
  local srv, id, host, port
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
    host, port = srv.url:match("^http://([^:]+):(%d+)$")
  end)
  teardown(function() srv:destroy() end)

  -- JSON numbers decode as floats: ids go into paths as integers
  local function call(method, path, body)
    local status, j = srv:json(method, DP .. "api/processes" .. path, body,
                               { session = id })
    if type(j) == "table" and j.id then j.id = math.tointeger(j.id) end
    return status, j
  end

  local function output(pid, query)
    local status, text = srv:request{
      path = DP .. "api/processes/" .. pid .. "/output" .. (query or ""),
      session = id }
    local ev = {}
    for line in (text or ""):gmatch("[^\n]+") do
      ev[#ev + 1] = cjson.decode(line) or line
    end
    return status, ev
  end

  it("delivers a signal sent before the sandbox reported the start",
     function()
    -- The start answer comes back before the agent reports the pid (pid
    -- 0): a signal sent at once must still reach the process.
    for _ = 1, 5 do
      local status, p = call("POST", "", { command = { "sleep", "502.5" } })
      assert.equal(201, status)
      status = call("POST", "/" .. p.id .. "/signal", { signal = "TERM" })
      assert.equal(200, status)
      local w
      status, w = call("POST", "/" .. p.id .. "/wait", { timeout = "5s" })
      assert.equal(200, status)
      assert.equal("exited", w.state)
      assert.equal(143, w.exit_code)
    end
  end)

  it("starts, lists and describes a process that outlives the request",
     function()
    local status, p = call("POST", "", { command = { "sleep", "500.25" } })
    assert.equal(201, status)
    assert.equal("running", p.state)
    assert.same({ "sleep", "500.25" }, p.command)
    assert.equal(cjson.null, p.exit_code)
    assert.is_true(p.id >= 1 and p.pid >= 0)
    -- other requests come and go; it keeps running
    assert.equal("x\n", (srv:sh(id, "echo x")))
    assert.equal(1, count("^sleep 500[.]25$"))
    local _, list = call("GET", "")
    assert.equal(p.id, list.processes[#list.processes].id)
    local _, again = call("GET", "/" .. p.id)
    assert.equal("running", again.state)
    -- SIGTERM ends it: killed, 128+15
    status = call("POST", "/" .. p.id .. "/signal", { signal = "TERM" })
    assert.equal(200, status)
    status, again = call("POST", "/" .. p.id .. "/wait", { timeout = "5s" })
    assert.equal(200, status)
    assert.are_not.equal("running", again.state)
    assert.equal(143, again.exit_code)
    assert.equal(0, count("^sleep 500[.]25$"))
  end)

  it("keeps output: read from an offset, follow live", function()
    local _, p = call("POST", "", { command = { "sh", "-c",
      "echo one; sleep 0.5; echo two" } })
    local status, ev = output(p.id, "?follow=1")
    assert.equal(200, status, cjson.encode(ev))
    assert.same({ "stdout", "one\n", 0 }, { ev[1].type, ev[1].data,
                                            ev[1].offset })
    assert.same({ "stdout", "two\n", 4 }, { ev[2].type, ev[2].data,
                                            ev[2].offset })
    assert.equal("exit", ev[3].type)
    assert.equal("exited", ev[3].state)
    _, ev = output(p.id, "?offset=4")
    assert.same({ "two\n", 4 }, { ev[1].data, ev[1].offset })
    local _, rec = call("GET", "/" .. p.id)
    assert.equal(8, rec.output_bytes)
    assert.equal(0, rec.exit_code)
  end)

  it("takes stdin and its end", function()
    local _, p = call("POST", "", { command = { "cat" }, stdin = true })
    local status, j = srv:request{ method = "POST",
      path = DP .. "api/processes/" .. p.id .. "/stdin?eof=1",
      session = id, body = "hello" }
    assert.equal(200, status)
    assert.equal(5, cjson.decode(j).written)
    local _, rec = call("POST", "/" .. p.id .. "/wait", { timeout = "5s" })
    assert.equal("exited", rec.state)
    local _, ev = output(p.id)
    assert.equal("hello", ev[1].data)
    -- its stdin is closed now: 409
    status = srv:request{ method = "POST",
      path = DP .. "api/processes/" .. p.id .. "/stdin", session = id,
      body = "more" }
    assert.equal(409, status)
  end)

  it("waits with a timeout; answers the errors of the contract", function()
    local _, p = call("POST", "", { command = { "sleep", "500.5" } })
    local status, rec = call("POST", "/" .. p.id .. "/wait",
                             { timeout = "300ms" })
    assert.equal(200, status)
    assert.equal("running", rec.state)
    assert.equal(404, (call("GET", "/999999")))
    assert.equal(404, (call("GET", "/abc")))
    assert.equal(404, (output(999999)))
    assert.equal(400, (call("POST", "", { command = {} })))
    assert.equal(400, (call("POST", "/" .. p.id .. "/signal",
                            { signal = "NOPE" })))
    assert.equal(400, (call("POST", "/" .. p.id .. "/wait",
                            { timeout = "soon" })))
    call("POST", "/" .. p.id .. "/signal", { signal = "SIGKILL" })
    _, rec = call("POST", "/" .. p.id .. "/wait", { timeout = "5s" })
    assert.equal(137, rec.exit_code)
    assert.equal("killed", rec.state)
  end)

  it("die with the session, whole trees included", function()
    local sid = srv:create()
    local status = srv:json("POST", DP .. "api/processes", { command = {
      "bash", "-c", "(setsid sleep 500.75 &); sleep 501.75" } },
      { session = sid })
    assert.equal(201, status)
    for _ = 1, 50 do
      if count("sleep 50[01][.]75") == 2 then break end
      os.execute("sleep 0.1")
    end
    assert.equal(2, count("sleep 50[01][.]75"))
    assert.equal(200, (srv:delete(sid)))
    for _ = 1, 50 do
      if count("sleep 50[01][.]75") == 0 then break end
      os.execute("sleep 0.1")
    end
    assert.equal(0, count("sleep 50[01][.]75"))
  end)

  it("a follow stream ends its watch, not the process, on disconnect",
     function()
    local _, p = call("POST", "", { command = { "sleep", "500.125" } })
    local pr = io.popen(RAW .. "request " .. host .. " " .. port .. " GET " ..
      server.q(DP .. "api/processes/" .. p.id .. "/output?follow=1") .. " " ..
      server.q("x-agentcube-session-id: " .. id) .. " '' & sleep 1; kill $!")
    pr:close()
    assert.equal(1, count("^sleep 500[.]125$"))
    call("POST", "/" .. p.id .. "/signal", { signal = "KILL" })
  end)
end)
