-- Faults, through a fake AgentCube that answers 500/502/503, answers too
-- late, sends malformed JSON or no sessionId, drops the connection, cuts a
-- download short, or dies mid-request. Each must give a clear
-- agentcube.Error and leave no session and no partial file behind.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local fake

local CREATE = "^/v1/code%-interpreter$"     -- Lua pattern (log counts)
local CREATE_RE = "^/v1/code-interpreter$"   -- Python regex (fake rules)
local EXEC = "api/execute$"                  -- both

local function client(extra)
  return agentcube.CodeInterpreterClient(help.opts(fake.url, extra))
end

-- The error fn raises, checked to be an agentcube.Error.
local function fails(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(agentcube.is_error(err), "not an agentcube.Error: " ..
                 tostring(err))
  assert.is_string(err.message)
  assert.matches("^agentcube: " .. err.code .. ": ", tostring(err))
  return err
end

local function elapsed(fn)
  local t0 = os.time()
  fn()
  return os.time() - t0
end

setup(function() fake = help.fake() end)
teardown(function() fake:stop() end)
before_each(function()
  fake:rules({})
  fake:reset()
end)
after_each(function()
  fake:rules({})
  collectgarbage()
  agentcube.flush()
  assert.same({}, fake:sessions())          -- nothing leaked, ever
end)

describe("the control plane", function()
  it("500 on create: HTTPError with the server's message", function()
    fake:rules{ { path = CREATE_RE, status = 500,
                  body = '{"message":"out of sandboxes"}' } }
    local e = fails(client)
    assert.equal("EHTTP", e.code)
    assert.equal("HTTPError", e.kind)
    assert.equal(500, e.http_status)
    assert.matches("out of sandboxes", e.message)
    assert.equal(1, fake:count("POST", CREATE))  -- a POST is never retried
  end)

  it("503 on create is not retried either", function()
    fake:rules{ { path = CREATE_RE, status = 503, body = "busy",
                  ctype = "text/plain" } }
    local e = fails(client)
    assert.equal(503, e.http_status)
    assert.matches("busy", e.message)
    assert.equal(1, fake:count("POST", CREATE))
  end)

  it("malformed JSON on create: ValueError", function()
    fake:rules{ { path = CREATE_RE, status = 200, body = "{not json" } }
    local e = fails(client)
    assert.equal("EPROTO", e.code)
    assert.equal("ValueError", e.kind)
    assert.matches("malformed JSON", e.message)
  end)

  it("no sessionId in the answer: ValueError, as the SDK", function()
    fake:rules{ { path = CREATE_RE, status = 200,
                  body = '{"kind":"Sandbox"}' } }
    local e = fails(client)
    assert.equal("ValueError", e.kind)
    assert.matches("'sessionId' missing from response", e.message)
  end)

  it("an answer later than request_timeout: TimeoutError", function()
    fake:rules{ { path = CREATE_RE, delay = 3 } }
    local e
    local secs = elapsed(function()
      e = fails(client, { request_timeout = 1 })
    end)
    assert.equal("ETIMEOUT", e.code)
    assert.equal("TimeoutError", e.kind)
    assert.is_true(secs <= 2)
    os.execute("sleep 2")   -- the fake still creates the session: reap it
    for _, s in ipairs(fake:sessions()) do
      client{ session_id = s.sessionId }:stop()
    end
  end)

  it("a failed DELETE on stop() raises, and the object is closed", function()
    local ci = client()
    fake:rules{ { method = "DELETE", status = 500, times = 1,
                  body = '{"message":"db down"}' } }
    local e = fails(ci.stop, ci)
    assert.equal(500, e.http_status)
    assert.is_true(ci.closed)
    assert.is_true(ci:stop())              -- stop() twice is fine
    client{ session_id = fake:sessions()[1].sessionId }:stop()
  end)

  it("404 on DELETE counts as deleted", function()
    local ci = client()
    client{ session_id = ci.session_id }:stop()
    assert.is_true(ci:stop())
  end)
end)

describe("the data plane", function()
  it("502/503 on a GET are retried, then succeed", function()
    local ci <close> = client()
    ci:write_file("x", "f.txt")
    fake:rules{ { method = "GET", path = "api/files", status = 502,
                  times = 1 },
                { method = "GET", path = "api/files", status = 503,
                  times = 1 } }
    assert.equal("x", ci:read_file("f.txt"))
    assert.equal(3, fake:count("GET", "api/files/f%.txt$"))
  end)

  it("persistent 503 on a GET: HTTPError after the retries", function()
    local ci <close> = client()
    fake:rules{ { method = "GET", path = "api/files", status = 503,
                  body = '{"error":"sandbox unreachable"}' } }
    local e = fails(ci.list_files, ci)
    assert.equal(503, e.http_status)
    assert.matches("sandbox unreachable", e.message)
    assert.equal(4, fake:count("GET", "api/files%?"))
  end)

  it("502 on execute: HTTPError, not retried (a POST)", function()
    local ci <close> = client()
    fake:rules{ { path = EXEC, status = 502,
                  body = '{"error":"sandbox unreachable"}' } }
    local e = fails(ci.execute_command, ci, "true")
    assert.equal("HTTPError", e.kind)
    assert.equal(502, e.http_status)
    assert.equal(1, fake:count("POST", EXEC))
  end)

  it("an execute slower than timeout + 2 s: TimeoutError", function()
    local ci <close> = client()
    fake:rules{ { path = EXEC, delay = 5 } }
    local e
    local secs = elapsed(function()
      e = fails(ci.execute_command, ci, "sleep 10", 1)
    end)
    assert.equal("ETIMEOUT", e.code)
    assert.equal("TimeoutError", e.kind)
    assert.is_true(secs >= 2 and secs <= 4, "took " .. secs .. " s")
    -- the session stays usable
    fake:rules{}
    assert.equal("echo ok\n", ci:execute_command("echo ok"))
  end)

  it("malformed JSON from execute: ValueError", function()
    local ci <close> = client()
    fake:rules{ { path = EXEC, status = 200, body = "{\"stdout\": " } }
    local e = fails(ci.execute_command_result, ci, "true")
    assert.equal("EPROTO", e.code)
    assert.equal("ValueError", e.kind)
  end)

  it("a connection dropped without an answer: a clear error", function()
    local ci <close> = client()
    fake:rules{ { path = EXEC, close = true } }
    local e = fails(ci.execute_command, ci, "true")
    assert.is_truthy(({ EIO = true, ECONNECT = true })[e.code], e.code)
    assert.matches("execute", e.message)
  end)

  it("a download cut short leaves no file behind", function()
    local ci <close> = client()
    local dir = server.tmpdir("agentcube-dl")
    finally(function() os.execute("rm -rf " .. help.q(dir)) end)
    fake:rules{ { method = "GET", path = "api/files/big", partial = 1000 } }
    local e = fails(ci.download_file, ci, "big", dir .. "/sub/big")
    assert.is_truthy(({ EIO = true, EPROTO = true })[e.code], e.code)
    assert.equal("", (help.run("find " .. help.q(dir) .. " -type f")))
  end)

  it("a 404 download raises before anything is created", function()
    local ci <close> = client()
    local dir = server.tmpdir("agentcube-dl")
    finally(function() os.execute("rm -rf " .. help.q(dir)) end)
    local e = fails(ci.download_file, ci, "missing.txt", dir .. "/a/b.txt")
    assert.equal(404, e.http_status)
    assert.equal("HTTPError", e.kind)
    assert.equal(dir .. "\n", (help.run("find " .. help.q(dir))))
  end)

  it("a missing local file: FileNotFoundError without HTTP", function()
    local ci <close> = client()
    local n = #fake:log()
    local e = fails(ci.upload_file, ci, "/nonexistent/data.csv", "d.csv")
    assert.equal("FileNotFoundError", e.kind)
    assert.equal("ENOTFOUND", e.code)
    assert.equal(n, #fake:log())
  end)
end)

describe("a server that goes away", function()
  it("killed mid-request: an error now, ConnectionError next", function()
    local other = help.fake()
    finally(function() other:stop() end)
    local ci = agentcube.CodeInterpreterClient(help.opts(other.url,
                                               { max_retries = 0 }))
    other:rules{ { path = EXEC, die = true } }
    local e = fails(ci.execute_command, ci, "true")
    assert.is_truthy(({ EIO = true, ECONNECT = true })[e.code], e.code)
    e = fails(ci.execute_command, ci, "true")
    assert.equal("ECONNECT", e.code)
    assert.equal("ConnectionError", e.kind)
    -- stop() reports the failed DELETE; the object is closed anyway
    e = fails(ci.stop, ci)
    assert.equal("ECONNECT", e.code)
    assert.is_true(ci.closed)
  end)

  it("gone before a collected session is flushed: counted, warned",
     function()
    local other = help.fake()
    local every = agentcube.collect_every
    agentcube.collect_every = 0             -- exactly 5 wait for flush
    finally(function()
      other:stop()
      agentcube.collect_every = every
    end)
    for _ = 1, 5 do
      agentcube.CodeInterpreterClient(help.opts(other.url))
    end
    collectgarbage()
    collectgarbage()
    other:stop()
    local t0 = os.time()
    local deleted, failed = agentcube.flush()
    assert.equal(0, deleted)
    assert.equal(5, failed)                 -- 3 tried, the rest abandoned
    assert.is_true(os.time() - t0 <= 2)
  end)
end)
