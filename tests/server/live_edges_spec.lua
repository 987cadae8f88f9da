-- The live sandbox's routes at their edges (docs/extensions.md): what a
-- client gets wrong about background processes, contexts and execute is
-- refused with the contract's status and a message naming the field;
-- processes end in each of their states; streamed output keeps odd bytes
-- exact (UTF-8 cut at a chunk's end, invalid sequences as b64) and says
-- what the output ring dropped.
local server = require "server"
local cjson = require "cjson"

local DP = server.DP

describe("live routes at their edges", function()
  local srv, id
  setup(function()
    srv = server.start{ config = "default:\n  warmPoolSize: 0\n" ..
                                 "  processOutputBytes: 4Ki\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  -- JSON request on the session; ids of processes come back as integers
  local function call(method, path, body)
    local status, j = srv:json(method, DP .. path, body, { session = id })
    if type(j) == "table" and math.type(j.id) == "float" then
      j.id = math.tointeger(j.id)
    end
    return status, j
  end

  local function decode_lines(text)
    local ev = {}
    for line in (text or ""):gmatch("[^\n]+") do
      ev[#ev + 1] = assert(cjson.decode(line), line)
    end
    return ev
  end

  -- POST body as an event stream: status, content type, events
  local function stream(path, body)
    local status, text, h = srv:request{ method = "POST", path = DP .. path,
      session = id, body = type(body) == "string" and body
                                                  or cjson.encode(body),
      headers = { Accept = "application/x-ndjson",
                  ["Content-Type"] = "application/json" } }
    return status, h["content-type"], decode_lines(text), text
  end

  -- refused(want_status, want_msg, status, answer)
  local function refused(want_status, want_msg, status, j)
    assert.equal(want_status, status, cjson.encode(j))
    assert.matches(want_msg, j.error, 1, true)
  end

  describe("background processes", function()
    it("refuses a malformed start with the field at fault", function()
      local cases = {
        { "not json", "request body must be a JSON object" },
        { "[1]", "request body must be a JSON object" },
        { { command = { "true" }, stdin = "yes" },
          "stdin must be a boolean" },
        { { command = "true" }, "command must be an array of strings" },
        { { command = { "true" }, working_dir = "/etc" },
          "Invalid working directory: " },
        -- the sandbox refuses it: nothing to run
        { { command = { "" } },
          "Failed to start process: exec: empty command" },
      }
      for _, c in ipairs(cases) do
        local status, j = call("POST", "api/processes", c[1])
        refused(400, c[2], status, j)
      end
      -- control: the same request, well formed, starts
      local status, p = call("POST", "api/processes",
                             { command = { "true" }, stdin = false })
      assert.equal(201, status)
      assert.equal(200, (call("POST", "api/processes/" .. p.id .. "/wait")))
    end)

    it("answers 404 for a process it does not have, on every route",
       function()
      local gone = "api/processes/424242"
      refused(404, "process 424242 not found",
              call("POST", gone .. "/signal", { signal = "TERM" }))
      refused(404, "process 424242 not found",
              call("POST", gone .. "/wait", { timeout = "1s" }))
      local status, text = srv:request{ method = "POST",
        path = DP .. gone .. "/stdin", session = id, body = "x" }
      refused(404, "process 424242 not found", status, cjson.decode(text))
      refused(404, "process 0 not found",
              call("GET", "api/processes/0"))
      refused(404, "process 12x not found",
              call("GET", "api/processes/12x"))
    end)

    it("refuses malformed signals, waits and output offsets", function()
      local _, p = call("POST", "api/processes",
                        { command = { "sleep", "600.5" } })
      local base = "api/processes/" .. p.id
      for _, sig in ipairs{ 0, 65, -9, "0", "99", "9x", "NOPE", true } do
        refused(400, "signal must be a signal name",
                call("POST", base .. "/signal", { signal = sig }))
      end
      refused(400, "request body must be a JSON object",
              call("POST", base .. "/signal", "TERM"))
      refused(400, "request body must be a JSON object",
              call("POST", base .. "/wait", "[]"))
      refused(400, "timeout must be a duration string",
              call("POST", base .. "/wait", { timeout = 5 }))
      for _, off in ipairs{ "abc", "-1", "5x" } do
        local status, text = srv:request{
          path = DP .. base .. "/output?offset=" .. off, session = id }
        refused(400, "offset must be a whole number of bytes", status,
                cjson.decode(text))
      end
      -- control: it still runs, and a kill by number ends it
      local _, rec = call("GET", base)
      assert.equal("running", rec.state)
      assert.equal(200, (call("POST", base .. "/signal", { signal = 9 })))
      _, rec = call("POST", base .. "/wait", { timeout = "10s" })
      assert.same({ "killed", 137 }, { rec.state, rec.exit_code })
    end)

    it("takes signals by number, numeric string and SIG name", function()
      -- each ends a sleep with 128 + its number
      for _, c in ipairs{ { 15, 143 }, { "10", 138 }, { "sigusr2", 140 },
                          { "SIGHUP", 129 } } do
        local _, p = call("POST", "api/processes",
                          { command = { "sleep", "600.25" } })
        local status = call("POST", "api/processes/" .. p.id .. "/signal",
                            { signal = c[1] })
        assert.equal(200, status)
        local _, rec = call("POST", "api/processes/" .. p.id .. "/wait",
                            { timeout = "10s" })
        assert.same({ "exited", c[2] }, { rec.state, rec.exit_code },
                    tostring(c[1]))
      end
    end)

    it("ends at its own timeout as timed_out; a wait without a limit " ..
       "waits for the end", function()
      local t0 = server.monotonic()
      local _, p = call("POST", "api/processes",
                        { command = { "sleep", "600.75" }, timeout = "300ms" })
      -- no body: no limit of its own
      local status, rec = call("POST", "api/processes/" .. p.id .. "/wait")
      assert.equal(200, status)
      assert.same({ "timed_out", 124 }, { rec.state, rec.exit_code })
      assert.is_true(server.monotonic() - t0 >= 0.3)
      assert.is_string(rec.end_time)
    end)

    it("answers a wait when the process ends, before the wait's limit",
       function()
      local _, p = call("POST", "api/processes",
                        { command = { "sleep", "0.2" } })
      local t0 = server.monotonic()
      local status, rec = call("POST", "api/processes/" .. p.id .. "/wait",
                               { timeout = "999ms" })
      assert.equal(200, status)
      assert.same({ "exited", 0 }, { rec.state, rec.exit_code })
      assert.is_true(server.monotonic() - t0 < 0.9)
    end)

    it("forgets the oldest ended processes past 256, never a running one",
       function()
      local _, keep = call("POST", "api/processes",
                           { command = { "sleep", "600.625" } })
      local _, first = call("POST", "api/processes", { command = { "true" } })
      call("POST", "api/processes/" .. first.id .. "/wait")
      local last
      for i = 1, 260 do
        local status, p = call("POST", "api/processes",
                               { command = { "true" } })
        assert.equal(201, status)
        last = p
        -- now and then one is waited for: ended ones to forget
        if i % 64 == 0 then
          call("POST", "api/processes/" .. p.id .. "/wait")
        end
      end
      local _, list = call("GET", "api/processes")
      assert.equal(256, #list.processes)
      local ids = {}
      for i, p in ipairs(list.processes) do
        ids[math.tointeger(p.id)] = true
        if i > 1 then
          assert.is_true(p.id > list.processes[i - 1].id, "oldest first")
        end
      end
      assert.is_true(ids[keep.id], "the running one is kept")
      assert.is_true(ids[last.id], "the newest is there")
      assert.equal(404, (call("GET", "api/processes/" .. first.id)))
      call("POST", "api/processes/" .. keep.id .. "/signal",
           { signal = "KILL" })
    end)

    it("reports output its ring dropped before the kept bytes", function()
      -- 10000 bytes into a 4 KiB ring: the first 5904 are gone
      local _, p = call("POST", "api/processes", { command = { "sh", "-c",
        "head -c 10000 /dev/zero | tr '\\0' a" } })
      call("POST", "api/processes/" .. p.id .. "/wait", { timeout = "10s" })
      local status, text = srv:request{
        path = DP .. "api/processes/" .. p.id .. "/output", session = id }
      assert.equal(200, status)
      local ev = decode_lines(text)
      assert.same({ "dropped", 5904, 0 }, { ev[1].type, ev[1].bytes,
                                            ev[1].offset })
      local kept, off = {}, 5904
      for i = 2, #ev - 1 do
        assert.equal("stdout", ev[i].type)
        assert.equal(off, ev[i].offset)
        off = off + #ev[i].data
        kept[#kept + 1] = ev[i].data
      end
      assert.equal(("a"):rep(4096), table.concat(kept))
      assert.same({ "exit", 0, "exited" }, { ev[#ev].type,
        ev[#ev].exit_code, ev[#ev].state })
      -- from a kept offset nothing is dropped
      _, text = srv:request{ session = id,
        path = DP .. "api/processes/" .. p.id .. "/output?offset=9990" }
      ev = decode_lines(text)
      assert.same({ "stdout", ("a"):rep(10), 9990 }, { ev[1].type,
        ev[1].data, ev[1].offset })
    end)
  end)

  describe("contexts", function()
    it("refuses a working_dir it cannot create", function()
      assert.equal(200, (srv:write(id, "plain.txt", "a file")))
      refused(400, "Failed to create working directory: ",
              call("POST", "api/contexts", { language = "bash",
              working_dir = "plain.txt/sub" }))
    end)

    it("refuses malformed runs before running anything", function()
      local status, c = call("POST", "api/contexts", { language = "bash" })
      assert.equal(201, status)
      local run = "api/contexts/" .. c.id .. "/run"
      refused(400, "request body must be a JSON object",
              call("POST", run, "echo"))
      refused(400, "code is required and must be a string",
              call("POST", run, { code = 1 }))
      for _, t in ipairs{ "0s", "-1s", "soon", 5 } do
        refused(400, "timeout must be a positive duration string",
                call("POST", run, { code = "echo x", timeout = t }))
      end
      -- control
      local _, r = call("POST", run, { code = "echo ran", timeout = "20s" })
      assert.equal("ran\n", r.stdout)
      call("POST", "api/contexts/" .. c.id .. "/delete", {})
    end)

    it("answers a streamed run on an unknown or busy context before " ..
       "any stream", function()
      local status, ctype, _, text = stream("api/contexts/c9999/run",
                                            { code = "1" })
      assert.equal(404, status)
      assert.matches("^application/json", ctype)
      assert.matches("context c9999 not found", text, 1, true)
      local _, c = call("POST", "api/contexts", { language = "python" })
      local run = DP .. "api/contexts/" .. c.id .. "/run"
      -- a buffered run in the background makes it busy
      local bg = io.popen(("curl -s -H %s -H %s -d %s %s"):format(
        server.q("x-agentcube-session-id: " .. id),
        server.q("Content-Type: application/json"),
        server.q('{"code":"import time; time.sleep(60)"}'),
        server.q(srv.url .. run)))
      local busy = false
      for _ = 1, 200 do
        local _, list = call("GET", "api/contexts")
        for _, x in ipairs(list.contexts) do
          if x.id == c.id and x.state == "busy" then busy = true end
        end
        if busy then break end
        os.execute("sleep 0.05")
      end
      assert.is_true(busy, "the context became busy")
      status, ctype, _, text = stream("api/contexts/" .. c.id .. "/run",
                                      { code = "1" })
      assert.equal(409, status)
      assert.matches("^application/json", ctype)
      assert.matches("one run at a time", text, 1, true)
      -- deleting it ends the run in flight with that reason
      assert.equal(200, (call("POST", "api/contexts/" .. c.id .. "/delete",
                              {})))
      local r = cjson.decode(bg:read("a"))
      bg:close()
      assert.equal("ContextDeleted", r.error.name)
    end)

    it("replaces bytes that are not UTF-8 in a buffered run's output",
       function()
      local _, c = call("POST", "api/contexts", { language = "python" })
      local _, r = call("POST", "api/contexts/" .. c.id .. "/run", { code =
        "import sys\nsys.stdout.buffer.write(b'a\\xffb\\n')\n" ..
        "sys.stdout.flush()\nsys.stderr.buffer.write(b'\\xc3(')\n" ..
        "sys.stderr.flush()" })
      assert.equal("a\239\191\189b\n", r.stdout)
      assert.equal("\239\191\189(", r.stderr)
      call("POST", "api/contexts/" .. c.id .. "/delete", {})
    end)
  end)

  describe("execute", function()
    it("says why a command cannot start: 400, or the stream's error " ..
       "event", function()
      local status, j = call("POST", "api/execute", { command = { "" } })
      refused(400, "Failed to run command: exec: empty command", status, j)
      local ctype, ev
      status, ctype, ev = stream("api/execute", { command = { "" } })
      assert.equal(200, status)
      assert.equal("application/x-ndjson", ctype)
      assert.equal(1, #ev)
      assert.same({ "error", 400, "exec: empty command" },
                  { ev[1].type, ev[1].code, ev[1].error })
    end)

    it("ends commands at their timeout when the sandbox stops answering; " ..
       "one it starts only later is killed", function()
      local q = server.q
      local function pids_of(pattern)
        local p = io.popen("pgrep -f " .. q(pattern))
        local v = {}
        for l in p:lines() do v[#v + 1] = l end
        p:close()
        return v
      end
      local function wait_pid(pattern)
        for _ = 1, 250 do
          local pid = pids_of(pattern)[1]
          if pid then return pid end
          os.execute("sleep 0.02")
        end
      end
      local mark, late = server.marker(), server.marker()
      local t0 = server.monotonic()
      local first = io.popen(("curl -s -H %s -H %s -d %s %s"):format(
        q("x-agentcube-session-id: " .. id),
        q("Content-Type: application/json"),
        q(cjson.encode{ command = { "sh", "-c", "exec " .. mark },
                        timeout = "1500ms" }),
        q(srv.url .. DP .. "api/execute")))
      local pid = wait_pid("^" .. mark .. "$")
      assert.truthy(pid, "the first command runs")
      -- its parent is the sandbox's agent: stopped, it answers nothing
      local p = io.popen("ps -o ppid= -p " .. pid)
      local agent = math.tointeger(p:read("n"))
      p:close()
      assert.is_true(os.execute("kill -STOP " .. agent))
      local stopped_after = server.monotonic() - t0
      local ok, status, j = pcall(call, "POST", "api/execute", {
        command = { "sh", "-c", late .. "; echo late > late.txt" },
        timeout = "1s" })
      local r1 = cjson.decode(first:read("a"))
      first:close()
      os.execute("kill -CONT " .. agent)
      assert.is_true(ok, status)
      -- each ended at its timeout, once the grace for an answer was over
      assert.same({ 200, 124, true }, { status, j.exit_code, j.timed_out })
      assert.is_true(j.duration >= 2.5, tostring(j.duration))
      assert.is_true(stopped_after < 1.2, "stopped only after " ..
                     stopped_after .. " s")
      assert.same({ 124, true }, { r1.exit_code, r1.timed_out })
      assert.is_true(r1.duration >= 3, tostring(r1.duration))
      -- the server killed the running one itself
      assert.equal(0, #pids_of("^" .. mark .. "$"))
      -- the same sandbox goes on; the one it was given while stopped
      -- starts now, after its answer, and is killed at once
      assert.equal("on\n", (srv:sh(id, "echo on")))
      local left
      for _ = 1, 100 do
        left = #pids_of("^" .. late .. "$")
        if left == 0 then break end
        os.execute("sleep 0.02")
      end
      assert.equal(0, left, "the late start still runs")
      local status2, j2 = call("POST", "api/execute", { command = { "sh",
        "-c", "cat late.txt 2>/dev/null || echo absent" } })
      assert.same({ 200, "absent\n" }, { status2, j2.stdout })
    end)

    it("refuses a command line the sandbox cannot take with 413",
       function()
      local many = { "true" }
      for i = 2, 4100 do many[i] = "a" end
      refused(413, "too many arguments and environment entries",
              call("POST", "api/execute", { command = many }))
      refused(413, "command line and environment too large",
              call("POST", "api/processes",
                   { command = { "echo", ("x"):rep(70000) } }))
      refused(413, "too large", call("POST", "api/contexts",
        { language = "bash", env = { BIG = ("x"):rep(70000) } }))
      -- control: at the limit it runs (4092 arguments and the four
      -- entries of the default environment)
      for i = 4093, 4100 do many[i] = nil end
      many[1] = "sh"
      many[2] = "-c"
      many[3] = "echo $#"
      local status, j = call("POST", "api/execute", { command = many })
      assert.equal(200, status)
      assert.equal("4088\n", j.stdout)
    end)

    it("replaces bytes that are not UTF-8 in a buffered answer", function()
      local status, j = call("POST", "api/execute", { command = { "sh", "-c",
        "printf 'o\\377k'; printf 'e\\300r' >&2" } })
      assert.equal(200, status)
      assert.same({ "o\239\191\189k", "e\239\191\189r" },
                  { j.stdout, j.stderr })
    end)

    it("streams bytes that are not UTF-8 as b64, exactly", function()
      -- each printf is one chunk: not valid UTF-8 as a whole, so b64
      local b64 = require "b64"
      for _, bytes in ipairs{ "\237\160\128", "\244\144\128\128",
                              "\195(", "\192\128", "x\255" } do
        local esc = bytes:gsub(".", function(ch)
          return ("\\%03o"):format(ch:byte())
        end)
        local status, _, ev = stream("api/execute", { command = {
          "printf", esc } })
        assert.equal(200, status)
        assert.equal(2, #ev, cjson.encode(ev))
        assert.same({ "stdout", b64.encode(bytes), 0 },
                    { ev[1].type, ev[1].b64, ev[1].offset })
        assert.is_nil(ev[1].data)
        assert.equal("exit", ev[2].type)
      end
    end)

    it("sends a UTF-8 sequence cut by the end of the output as b64 " ..
       "after the text before it", function()
      local _, _, ev = stream("api/execute", { command = {
        "printf", "ok\\303" } })
      assert.equal(3, #ev, cjson.encode(ev))
      assert.same({ "stdout", "ok", 0 }, { ev[1].type, ev[1].data,
                                           ev[1].offset })
      assert.same({ "stdout", "ww==", 2 }, { ev[2].type, ev[2].b64,
                                             ev[2].offset })
      assert.equal("exit", ev[3].type)
    end)
  end)
end)

-- A stream of events takes 128 KiB of the request memory pool when it
-- opens, a buffered execute or context run 64 KiB before it starts
-- (docs/extensions.md): a pool smaller than both refuses each with 503
-- before anything runs.
describe("live routes with a request memory pool below their shares",
         function()
  local srv, id
  setup(function()
    srv = server.start{ config = "maxRequestMemory: 60Ki\n" ..
                                 "default:\n  warmPoolSize: 0\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  local function post(path, body, headers)
    local h = { ["Content-Type"] = "application/json" }
    for k, v in pairs(headers or {}) do h[k] = v end
    local status, text = srv:request{ method = "POST", path = DP .. path,
      session = id, headers = h, body = cjson.encode(body) }
    return status, cjson.decode(text) or text
  end
  local ndjson = { Accept = "application/x-ndjson" }
  local function busy(what, status, j)
    assert.equal(503, status)
    assert.matches("cannot hold " .. what, j.error, 1, true)
  end

  it("refuses streams and buffered answers with 503, before anything runs",
     function()
    busy("another stream of events", post("api/execute", { command = {
      "sh", "-c", "echo ran > streamed.txt" } }, ndjson))
    busy("another command's output", post("api/execute", { command = {
      "sh", "-c", "echo ran > buffered.txt" } }))
    local status, p = post("api/processes", { command = { "sh", "-c",
      "echo out; exec sleep 600.875" } })
    assert.equal(201, status)
    local pid = math.tointeger(p.id)
    local text
    status, text = srv:request{ session = id, path = DP ..
      "api/processes/" .. pid .. "/output?follow=1" }
    busy("another stream of events", status, cjson.decode(text))
    local c
    status, c = post("api/contexts", { language = "bash" })
    assert.equal(201, status)
    busy("another stream of events", post("api/contexts/" .. c.id .. "/run",
      { code = "echo ran > ctx.txt" }, ndjson))
    busy("another run's output", post("api/contexts/" .. c.id .. "/run",
      { code = "echo ran > ctx.txt" }))
    -- nothing ran (a background process, which needs none of the pool,
    -- looks)
    post("api/processes/" .. pid .. "/signal", { signal = "KILL" })
    status, p = post("api/processes", { command = { "sh", "-c",
      "! ls streamed.txt buffered.txt ctx.txt 2>/dev/null" } })
    assert.equal(201, status)
    local rec
    status, rec = post("api/processes/" .. math.tointeger(p.id) .. "/wait",
                       { timeout = "10s" })
    assert.same({ 200, "exited", 0 }, { status, rec.state, rec.exit_code })
  end)
end)
