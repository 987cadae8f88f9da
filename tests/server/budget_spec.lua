-- The memory a request costs the server is bounded whatever it sends or
-- makes the sandbox print: JSON bodies by size per route, nesting depth
-- and number of values; command output by its encoded size; and all
-- requests together by one pool (maxRequestMemory), refused with 503.
local server = require "server"

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s+(%d+)"))
end

describe("request memory budgets", function()
  local srv, id

  setup(function()
    srv = server.start{ config = "maxJsonDepth: 32\nmaxJsonNodes: 1000\n" ..
                                 "maxExecuteBytes: 64Ki\n" ..
                                 "default:\n  maxOutputBytes: 1Mi\n" }
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  local function exec_raw(body)
    return srv:json("POST", server.DP .. "api/execute", body,
                    { session = id })
  end

  it("refuses a JSON body nested deeper than maxJsonDepth", function()
    local deep = ('{"command":["true"],"x":' .. ("["):rep(40) ..
                  ("]"):rep(40) .. "}")
    local status, j = exec_raw(deep)
    assert.are.equal(400, status)
    assert.matches("nested too deeply", j.error)
    -- positive control: within the depth it runs
    local ok = ('{"command":["true"],"x":' .. ("["):rep(20) ..
                ("]"):rep(20) .. "}")
    status = exec_raw(ok)
    assert.are.equal(200, status)
  end)

  it("refuses a JSON body with more values than maxJsonNodes", function()
    local many = '{"command":["true"],"x":[' .. ("{},"):rep(2000) .. "{}]}"
    local status, j = exec_raw(many)
    assert.are.equal(400, status)
    assert.matches("too many values", j.error)
    -- commas and brackets inside strings are not values
    local str = '{"command":["echo","' .. ("[{,:"):rep(2000) .. '"]}'
    local st2, j2 = exec_raw(str)
    assert.are.equal(200, st2)
    assert.are.equal(("[{,:"):rep(2000) .. "\n", j2.stdout)
  end)

  it("applies each route's body limit", function()
    local big = '{"command":["true"],"pad":"' .. ("x"):rep(70 * 1024) .. '"}'
    assert.are.equal(413, (exec_raw(big)))
    -- the file upload route keeps its own, larger limit (control)
    local status = srv:write(id, "pad.txt", ("x"):rep(70 * 1024))
    assert.are.equal(200, status)
    -- the control plane takes small bodies only
    status = srv:json("POST", "/v1/code-interpreter",
                      '{"name":"my-interpreter","namespace":"default",' ..
                      '"metadata":{"pad":"' .. ("x"):rep(70 * 1024) .. '"}}')
    assert.are.equal(413, status)
  end)

  it("bounds an answer of control bytes by its encoded size", function()
    local before = rss_kb(srv.pid)
    local status, j = exec_raw{ command = { "sh", "-c",
      "head -c 4000000 /dev/zero | tr '\\0' '\\1'" } }
    assert.are.equal(200, status)
    assert.is_true(j.stdout_truncated)
    -- 1 MiB of encoded JSON holds at most 1 MiB / 6 such bytes
    assert.is_true(#j.stdout <= math.floor(1048576 / 6), #j.stdout)
    assert.is_true(#j.stdout > 100000)
    assert.are.equal(("\1"):rep(#j.stdout), j.stdout)
    local grown = rss_kb(srv.pid) - before
    assert.is_true(grown < 64 * 1024, "server grew by " .. grown .. " KiB")
    -- control: plain output of the same length is not cut at 1/6
    status, j = exec_raw{ command = { "sh", "-c", "head -c 500000 " ..
                                      "/dev/zero | tr '\\0' a" } }
    assert.are.equal(200, status)
    assert.are.equal(500000, #j.stdout)
    assert.is_nil(j.stdout_truncated)
  end)

  it("never cuts a character in half", function()
    -- 3 raw bytes, 8 encoded: the cut falls inside the output captured
    for _, lead in ipairs{ "", "\\x01", "\\x01\\x01" } do
      local status, j = exec_raw{ command = { "python3", "-c",
        "import sys; sys.stdout.buffer.write(b'" .. lead ..
        "' + '\\x01\u{e9}'.encode() * 300000)" } }
      assert.are.equal(200, status)
      assert.is_true(j.stdout_truncated)
      assert.truthy(utf8.len(j.stdout), "invalid UTF-8 in the answer")
      assert.is_nil(j.stdout:find("\u{fffd}", 1, true))
    end
  end)
end)

describe("the server-wide request memory pool", function()
  it("refuses with 503 what it cannot hold, then recovers", function()
    local srv = server.start{ config = "maxRequestMemory: 256Ki\n" ..
                                       "default:\n  maxOutputBytes: 1Mi\n" }
    finally(function() srv:destroy() end)
    local id = srv:create()
    local status, j = srv:exec(id, { "sh", "-c", "head -c 300000 " ..
                                     "/dev/zero | tr '\\0' a" })
    assert.are.equal(503, status)
    assert.matches("maxRequestMemory", j.error)
    -- a request body the pool cannot hold while it arrives: the same 503
    status, j = srv:exec(id, { "sh", "-c", "true", ("x"):rep(300000) })
    assert.are.equal(503, status)
    assert.are.equal("SERVER_MEMORY_BUDGET", j.code)
    assert.matches("maxRequestMemory", j.error)
    -- control: an answer within the pool passes, and the pool was given
    -- back (the same small request works again and again)
    for _ = 1, 3 do
      status, j = srv:exec(id, { "sh", "-c", "head -c 50000 /dev/zero | " ..
                                 "tr '\\0' a" })
      assert.are.equal(200, status)
      assert.are.equal(50000, #j.stdout)
    end
  end)

  it("charges a context run's buffered output to the pool the same way",
     function()
    local srv = server.start{ config = "maxRequestMemory: 256Ki\n" }
    finally(function() srv:destroy() end)
    local id = srv:create()
    local DP = server.DP
    local status, c = srv:json("POST", DP .. "api/contexts",
                               { language = "python" }, { session = id })
    assert.are.equal(201, status)
    local function run(code)
      return srv:json("POST", DP .. "api/contexts/" .. c.id .. "/run",
                      { code = code }, { session = id })
    end
    local j
    status, j = run("print('a' * 300000)")
    assert.are.equal(503, status)
    assert.matches("maxRequestMemory", j.error)
    -- control: a run within the pool passes, again and again (the pool was
    -- given back), and the context still works after the refusal
    status = run("x = 41")
    assert.are.equal(200, status)
    for _ = 1, 3 do
      status, j = run("print('a' * 50000)\nx + 1")
      assert.are.equal(200, status)
      assert.are.equal(50001, #j.stdout)
      assert.are.equal("42", j.value)
    end
  end)
end)

-- Streamed transfers and the output a command buffers draw on the same
-- pool, by amounts that do not depend on what is sent: a download holds
-- 2 MiB + 64 KiB, an upload 1 MiB + 128 KiB, a stream of events 128 KiB,
-- a buffered command 64 KiB and then its output as it grows.
describe("the pool under concurrent transfers", function()
  local q = server.q

  it("refuses what a slow download leaves no room for, then recovers",
     function()
    local srv = server.start{ config = "maxRequestMemory: 3Mi\n" ..
                                       "default:\n  maxOutputBytes: 4Mi\n" }
    local dir = server.tmpdir("agentcube-pool")
    local pid
    finally(function()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
      srv:destroy()
      os.execute("rm -rf " .. q(dir))
    end)
    local id = srv:create()
    -- Larger than the socket buffers can swallow: a client that reads
    -- slowly keeps the download in flight.
    srv:sh(id, "head -c 16000000 /dev/urandom > big.bin")
    local url = srv.url .. server.DP .. "api/files/big.bin"
    local p = io.popen("curl -s --limit-rate 16K -o /dev/null -H " ..
                       q("x-agentcube-session-id: " .. id) .. " " .. q(url) ..
                       " & echo $!")
    pid = p:read("l")
    p:close()
    os.execute("sleep 1")

    local status, j = srv:request{ path = server.DP .. "api/files/big.bin",
                                   session = id }
    assert.are.equal(503, status)
    assert.matches("maxRequestMemory", j)
    assert.matches("another download", j)
    status, j = srv:request{ method = "POST", path = server.DP ..
      "api/files", session = id,
      form = { { name = "path", value = "up.bin" },
               { name = "file", file = "/etc/hostname" } } }
    assert.are.equal(503, status)
    assert.matches("another upload", j)
    -- A command whose output outgrows what is left: it runs, and the
    -- answer says so instead of growing the server.
    status, j = srv:exec(id, { "sh", "-c", "head -c 1500000 /dev/zero | " ..
                               "tr '\\0' a; exit 3" })
    assert.are.equal(503, status)
    assert.matches("could not hold the command's output", j.error)
    assert.are.equal(3, j.exit_code)
    -- control: what fits still runs, buffered and streamed
    status, j = srv:exec(id, { "echo", "small" })
    assert.are.equal(200, status)
    assert.are.equal("small\n", j.stdout)
    local body
    status, body = srv:request{ method = "POST", path = server.DP ..
      "api/execute", session = id,
      headers = { Accept = "application/x-ndjson",
                  ["Content-Type"] = "application/json" },
      body = '{"command":["echo","streamed"]}' }
    assert.are.equal(200, status)
    assert.matches('"exit_code": ?0', body)

    -- The slow client goes: its memory comes back.
    os.execute("kill " .. pid)
    pid = nil
    local ok
    for _ = 1, 50 do
      status, body = srv:request{ path = server.DP .. "api/files/big.bin",
                                  session = id }
      if status == 200 then ok = true break end
      os.execute("sleep 0.2")
    end
    assert.is_true(ok, "download after the slow client left: " ..
                   tostring(status))
    assert.are.equal(16000000, #body)
    status = srv:request{ method = "POST", path = server.DP .. "api/files",
      session = id, form = { { name = "path", value = "up.bin" },
                             { name = "file", file = "/etc/hostname" } } }
    assert.are.equal(200, status)
    -- (its answer costs the output three times: buffer, tree, text)
    status, j = srv:exec(id, { "sh", "-c", "head -c 700000 /dev/zero | " ..
                               "tr '\\0' a" })
    assert.are.equal(200, status)
    assert.are.equal(700000, #j.stdout)
  end)

  it("bounds a stream of events by the pool, dropping output it cannot hold",
     function()
    local srv = server.start{ config = "maxRequestMemory: 256Ki\n" }
    finally(function() srv:destroy() end)
    local id = srv:create()
    -- 16 MB of output, faster than the client reads (curl held to 2 MB/s,
    -- and more than the kernel's socket buffers hold): what the pool
    -- cannot hold is reported as dropped, the exit still comes.
    local req = server.tmpdir("agentcube-spec") .. "/req.json"
    local f = assert(io.open(req, "w"))
    f:write('{"command":["sh","-c","head -c 16000000 /dev/zero | ' ..
            "tr '\\\\0' a\"]}")
    f:close()
    local p = assert(io.popen("curl -sS --limit-rate 2M -X POST " ..
      "-H 'Accept: application/x-ndjson' " ..
      "-H 'Content-Type: application/json' " ..
      "-H " .. server.q("x-agentcube-session-id: " .. id) ..
      " --data-binary @" .. server.q(req) .. " " ..
      server.q(srv.url .. server.DP .. "api/execute")))
    local body = p:read("a")
    p:close()
    os.execute("rm -rf " .. server.q(req:match("^(.*)/")))
    local got, dropped = 0, 0
    for line in body:gmatch("[^\n]+") do
      local ev = require("cjson").decode(line)
      if ev.type == "stdout" then got = got + #ev.data end
      if ev.type == "dropped" then dropped = dropped + ev.bytes end
    end
    assert.matches('"type": ?"exit"', body)
    assert.are.equal(16000000, got + dropped)
    assert.is_true(dropped > 0, "nothing dropped")
  end)
end)
