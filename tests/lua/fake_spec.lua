-- The client against a scriptable fake AgentCube (fake_server.py): what
-- goes on the wire, auth providers, re-entrancy, verbose logging, and the
-- lifecycle rules, quickly and without sandboxes. The same behaviour
-- against a real `agentcube serve` is in client_spec and lifecycle_spec.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local agentcube = require "agentcube"

local fake

local function client(extra)
  return agentcube.CodeInterpreterClient(help.opts(fake.url, extra))
end

local function last(method, pattern)
  local log = fake:log()
  for i = #log, 1, -1 do
    if log[i].method == method and log[i].path:match(pattern) then
      return log[i]
    end
  end
end

local function pat(s)
  return (s:gsub("%p", "%%%0"))
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

setup(function() fake = help.fake() end)
teardown(function() fake:stop() end)
before_each(function()
  fake:rules({})
  fake:reset()
end)
after_each(function()
  collectgarbage()
  agentcube.flush()
end)

describe("the wire", function()
  it("creates one session with the SDK's body, and deletes it", function()
    local ci = client{ name = "tpl", namespace = "ns", ttl = 600 }
    local create = last("POST", "^/v1/code%-interpreter$")
    assert.same({ name = "tpl", namespace = "ns", ttl = 600, metadata = {} },
                create.json)
    assert.equal("tpl", ci.name)
    assert.equal("ns", ci.namespace)
    assert.equal(600, ci.ttl)
    assert.is_true(ci.owned)
    local id = ci.session_id
    assert.matches("^%x+%-", id)
    ci:execute_command("true")
    assert.matches("/v1/namespaces/ns/code%-interpreters/tpl/invocations/",
                   last("POST", "api/execute$").path)
    assert.equal(id, last("POST", "api/execute$").session)
    assert.is_true(ci:stop())
    assert.equal(1, fake:count("DELETE", "/sessions/" .. pat(id) .. "$"))
    assert.same({}, fake:sessions())
  end)

  it("splits command strings like shlex and sends tables verbatim",
     function()
    local ci <close> = client()
    ci:execute_command("ls -la 'a b' \"c d\"")
    assert.same({ "ls", "-la", "a b", "c d" },
                last("POST", "api/execute$").json.command)
    ci:execute_command({ "echo", "$HOME", "a|b" })
    assert.same({ "echo", "$HOME", "a|b" },
                last("POST", "api/execute$").json.command)
    local e = catch(ci.execute_command, ci, "echo 'open")
    assert.equal("ValueError", e.kind)
  end)

  it("formats timeouts as the SDK does and sends env and working_dir",
     function()
    local ci <close> = client()
    local sent = function() return last("POST", "api/execute$").json end
    ci:execute_command("true")
    assert.equal("120s", sent().timeout)
    ci:execute_command("true", 30)
    assert.equal("30s", sent().timeout)
    ci:execute_command("true", 30.0)
    assert.equal("30.0s", sent().timeout)
    ci:execute_command("true", 2.5)
    assert.equal("2.5s", sent().timeout)
    ci:execute_command("env", { env = { A = "1", B = 2 }, working_dir = "w",
                                timeout = 5 })
    assert.same({ A = "1", B = "2" }, sent().env)
    assert.equal("w", sent().working_dir)
    assert.equal("5s", sent().timeout)
    ci:execute_command("true", 7, { env = { X = "y" } })
    assert.equal("7s", sent().timeout)
    assert.matches("unknown option 'cwd'",
                   catch(ci.execute_command, ci, "true", { cwd = "/" }))
  end)

  it("returns stdout, or a result table, and raises for exit != 0",
     function()
    local ci <close> = client()
    assert.equal("echo hi\n", ci:execute_command("echo hi"))
    local r = ci:execute_command_result("false")
    assert.same({ stdout = "", stderr = "failed\n", exit_code = 1 }, r)
    local cmd = { "false", "x" }
    local e = catch(ci.execute_command, ci, cmd)
    assert.equal("CommandExecutionError", e.kind)
    assert.equal("ECOMMAND", e.code)
    assert.equal(1, e.exit_code)
    assert.equal("failed\n", e.stderr)
    assert.equal(cmd, e.command)            -- the caller's own argument
    assert.equal("Command failed (exit 1): failed\n", e.message)
  end)

  it("runs code through write_file and execute", function()
    local ci <close> = client()
    assert.matches("^python3 script_%d+%.py", ci:run_code("python",
                                                          "print(1)"))
    local up = last("POST", "api/files$").json
    assert.matches("^script_%d+%.py$", up.path)
    assert.equal("cHJpbnQoMSk=", up.content)
    assert.equal("0644", up.mode)
    assert.matches("^bash script_%d+%.sh", ci:run_code("SH", "echo"))
    local n = #fake:log()
    local e = catch(ci.run_code, ci, "ruby", "puts 1")
    assert.equal("ValueError", e.kind)
    assert.equal("EUNSUPPORTED", e.code)
    assert.equal(n, #fake:log())            -- no HTTP
  end)

  it("writes, reads and lists files", function()
    local ci <close> = client()
    assert.is_nil(ci:write_file("42", "/tmp/value.txt"))
    assert.equal("NDI=", last("POST", "api/files$").json.content)
    assert.equal("42", ci:read_file("/tmp/value.txt"))
    local files = ci:list_files()
    assert.matches("path=%.$", last("GET", "api/files%?").path)
    assert.equal(1, #files)
    assert.same({ name = "tmp/value.txt", size = 2, is_dir = false,
                  mode = "-rw-r--r--", modified = "2025-01-01T00:00:00Z" },
                files[1])
    assert.same({}, ci:list_files("empty dir"))
    assert.matches("path=empty%+dir$", last("GET", "api/files%?").path)
  end)
end)

describe("answers the client refuses", function()
  it("a file list nested deeper than 1000 levels is EPROTO", function()
    local ci <close> = client()
    local deep = ("["):rep(1001) .. ("]"):rep(1001)
    fake:rules{ { method = "GET", path = "api/files", status = 200,
                  body = '{"files": [{"name": "a", "x": ' .. deep .. '}]}' } }
    local e = catch(ci.list_files, ci)
    assert.equal("EPROTO", e.code)
    assert.matches("JSON nested deeper than 1000 levels", e.message)
    -- the positive control: 999 levels are fine
    local ok = ("["):rep(997) .. ("]"):rep(997)
    fake:rules{ { method = "GET", path = "api/files", status = 200,
                  body = '{"files": [{"name": "a", "x": ' .. ok .. '}]}' } }
    assert.equal("a", ci:list_files()[1].name)
  end)

  it("an async stop past its time limit is ETIMEOUT", function()
    local async = require "agentcube.async"
    local ci = client()
    local id = ci.session_id
    fake:rules{ { method = "DELETE", delay = 3 } }
    local job = async.submit(ci, "stop", { timeout = 0.3 })
    local t0 = async.now()
    while not async.wait_any({ job }, 100) do
      assert(async.now() - t0 < 10, "the stop job did not end")
    end
    local ok, e = job:result()
    assert.is_nil(ok)
    assert.equal("ETIMEOUT", e.code)
    assert.matches("stop: no answer within 0.3 s", e.message)
    assert.is_true(async.now() - t0 < 2.5)     -- not the DELETE's 3 s
    fake:rules{}
    client{ session_id = id }:stop()
  end)
end)

describe("misuse", function()
  local async = require "agentcube.async"

  it("a blocking call while a job runs on the session is EBUSY", function()
    local ci <close> = client()
    local job = async.submit(ci, "exec", { command = "echo hi" })
    local e = catch(ci.execute_command, ci, "true")
    assert.equal("EBUSY", e.code)
    assert.matches("1 agentcube.async job is running on it %(the latest: " ..
                   "\"exec\"%); wait for it", e.message)
    -- the positive control: once the job is done, calls work again
    while not async.wait_any({ job }, 100) do end
    assert.matches("hi\n$", select(2, job:result()).stdout)
    -- from inside a blocking call's callback, a job is refused
    local inner
    assert.matches("x\n$", ci:execute_command("echo x", { on_stdout =
      function()
        inner = select(2, pcall(async.submit, ci, "exec",
                                { command = "true" }))
      end }))
    assert.equal("EBUSY", inner.code)
    assert.matches("its execute_command%(%) call has not returned yet",
                   inner.message)
  end)

  it("a callback may make blocking calls on another session", function()
    local a <close> = client()
    local b <close> = client()
    local inner
    a:execute_command("echo a", { on_stdout = function()
      inner = b:execute_command("echo b")
    end })
    assert.matches("b\n$", inner)
  end)

  it("waiting from inside a job's callback fails that job", function()
    local ci <close> = client()
    local job = async.submit(ci, "exec", { command = "echo hi",
      on_stdout = function() async.wait_any({}, 0) end })
    while not async.wait_any({ job }, 100) do end
    local ok, e = job:result()
    assert.is_nil(ok)
    assert.matches("waiting from inside a job callback is not allowed",
                   tostring(e))
  end)

  it("transfer options are checked; an empty table is no option", function()
    local ci <close> = client()
    local dst = os.tmpname()
    ci:write_file("data", "f")
    assert.matches("bad option 'on_progress' %(function expected, got " ..
                   "number%)", catch(ci.download_file, ci, "f", dst,
                                     { on_progress = 5 }))
    assert.matches("unknown option 'number'",
                   catch(ci.download_file, ci, "f", dst, { print }))
    ci:download_file("f", dst, {})
    assert.equal("data", help.read_file(dst))
    os.remove(dst)
  end)
end)

describe("auth", function()
  it("sends a TokenAuth or auth_token as Bearer on both planes", function()
    local ci = client{ auth_token = "t0k" }
    assert.equal("Bearer t0k", last("POST", "^/v1/code%-interpreter$").auth)
    ci:execute_command("true")
    assert.equal("Bearer t0k", last("POST", "api/execute$").auth)
    ci:stop()
    assert.equal("Bearer t0k", last("DELETE", "/sessions/").auth)
    ci = client{ auth = agentcube.TokenAuth("a1"), auth_token = "ignored" }
    assert.equal("Bearer a1", last("POST", "^/v1/code%-interpreter$").auth)
    ci:stop()
  end)

  it("asks a Lua function for a token before every request", function()
    local n = 0
    local ci = client{ auth = function() n = n + 1; return "f" .. n end }
    assert.equal("Bearer f1", last("POST", "^/v1/code%-interpreter$").auth)
    ci:execute_command("true")
    assert.equal("Bearer f2", last("POST", "api/execute$").auth)
    ci:stop()
    assert.equal("Bearer f3", last("DELETE", "/sessions/").auth)
  end)

  it("fetches and caches a ServiceAccountAuth token", function()
    local sa = agentcube.ServiceAccountAuth{
      token_url = fake.url .. "/oauth/token", client_id = "me",
      client_secret = "s3", scope = "sandbox" }
    local ci = client{ auth = sa }
    ci:execute_command("true")
    ci:stop()
    assert.equal(1, fake:count("POST", "^/oauth/token$"))
    assert.equal("Bearer tok-1", last("POST", "api/execute$").auth)
    assert.equal("Bearer tok-1", last("DELETE", "/sessions/").auth)
    assert.equal("tok-1", sa:get_token())
  end)

  it("takes an object with get_token", function()
    local provider = { calls = 0 }
    function provider:get_token()
      self.calls = self.calls + 1
      return "obj"
    end
    local ci = client{ auth = provider }
    ci:execute_command("true")
    assert.equal("Bearer obj", last("POST", "api/execute$").auth)
    ci:stop()
    assert.equal(3, provider.calls)
  end)

  it("raises the provider's own error, unchanged", function()
    local mine = { reason = "vault sealed" }
    local fail = false
    local ci = client{ auth = function()
      if fail then error(mine) end
      return "ok"
    end }
    fail = true
    local n = #fake:log()
    assert.equal(mine, catch(ci.execute_command, ci, "true"))
    assert.equal(n, #fake:log())            -- the request was never sent
    local e = catch(agentcube.CodeInterpreterClient,
                    help.opts(fake.url, { auth = function() error("no") end }))
    assert.matches("no$", e)
    fail = false
    ci:stop()
  end)

  it("reports a provider that returns no string as an AuthError", function()
    local e = catch(agentcube.CodeInterpreterClient,
                    help.opts(fake.url, { auth = function() return 42 end }))
    assert.equal("AuthError", e.kind)
    assert.equal("EAUTH", e.code)
    assert.matches("number", e.message)
  end)

  it("refuses re-entry from a provider with EBUSY", function()
    local ci, inner
    ci = client{ auth = function()
      if ci ~= nil and inner == nil then
        local ok, e = pcall(ci.execute_command, ci, "true")
        inner = ok and "no error" or e
      end
      return "tok"
    end }
    ci:execute_command("true")
    assert.is_true(agentcube.is_error(inner))
    assert.equal("EBUSY", inner.code)
    assert.equal("SessionError", inner.kind)
    ci:stop()
  end)

  it("defers a stop() called from a provider until the call ends",
     function()
    local ci, stopped
    ci = client{ auth = function()
      if ci ~= nil and stopped == nil then stopped = ci:stop() end
      return "tok"
    end }
    local id = ci.session_id
    assert.equal("echo deferred\n", ci:execute_command("echo deferred"))
    assert.is_true(stopped)
    assert.is_true(ci.closed)
    assert.equal(1, fake:count("DELETE", "/sessions/" .. pat(id) .. "$"))
    assert.equal("ECLOSED", catch(ci.execute_command, ci, "true").code)
  end)
end)

describe("coroutines", function()
  it("work, and a provider runs on the calling coroutine", function()
    local seen
    local ci = client{ auth = function()
      seen = coroutine.running()
      return "co"
    end }
    local co = coroutine.create(function()
      return ci:execute_command("echo co")
    end)
    local ok, out = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal("echo co\n", out)
    assert.equal(co, seen)
    -- a provider cannot yield through the C call: its error comes back
    local yield = false
    local y = client{ auth = function()
      if yield then coroutine.yield() end
      return "x"
    end }
    yield = true
    ok, out = coroutine.resume(coroutine.create(function()
      return y:execute_command("true")
    end))
    assert.is_false(ok)
    assert.matches("yield", out)
    yield = false
    ci:stop()
    y:stop()
  end)
end)

describe("verbose", function()
  it("logs each request line and status to stderr", function()
    local out = help.lua(([[
      local agentcube = require "agentcube"
      local ci = agentcube.CodeInterpreterClient{ verbose = true,
        workload_manager_url = %q, router_url = %q }
      ci:execute_command("true")
      ci:stop()
    ]]):format(fake.url, fake.url))
    assert.matches("> POST " .. fake.url:gsub("%p", "%%%0") ..
                   "/v1/code%-interpreter\n", out)
    assert.matches("< 200 POST [^\n]*/api/execute", out)
    assert.matches("< 200 DELETE [^\n]*/sessions/", out)
  end)
end)

describe("lifecycle", function()
  it("deletes collected clients at flush and at the next call", function()
    local every = agentcube.collect_every
    agentcube.collect_every = 0             -- count the collections here
    finally(function() agentcube.collect_every = every end)
    for _ = 1, 20 do client() end
    collectgarbage()
    collectgarbage()
    assert.equal(20, agentcube.pending())
    assert.same({ 20, 0 }, { agentcube.flush() })
    assert.same({}, fake:sessions())
    for _ = 1, 5 do client() end
    collectgarbage()
    local keep <close> = client()           -- a module call: the safe point
    assert.equal(0, agentcube.pending())
    assert.equal(1, #fake:sessions())
  end)

  it("collects dropped clients once collect_every hold a session",
     function()
    collectgarbage()
    agentcube.flush()
    local most = 0
    for _ = 1, 30 do
      client()
      if #fake:sessions() > most then most = #fake:sessions() end
    end
    assert.is_true(most <= agentcube.collect_every + 1, tostring(most))
    -- positive control: with the pressure off they pile up
    local every = agentcube.collect_every
    agentcube.collect_every = 0
    finally(function() agentcube.collect_every = every end)
    collectgarbage()
    agentcube.flush()
    for _ = 1, 12 do client() end
    assert.equal(12, #fake:sessions())
    collectgarbage()
    agentcube.flush()
  end)

  it("deletes at scope exit, also when the block raises", function()
    local id
    local ok, err = pcall(function()
      local ci <close> = client()
      id = ci.session_id
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.equal(1, fake:count("DELETE", "/sessions/" .. pat(id) .. "$"))
    assert.same({}, fake:sessions())
  end)

  it("keeps detached and attached sessions", function()
    local id
    do
      local ci <close> = client()
      id = ci:detach()
      assert.is_false(ci.owned)
      assert.equal(id, ci.session_id)
    end
    collectgarbage()
    agentcube.flush()
    assert.equal(0, fake:count("DELETE", "/sessions/" .. pat(id) .. "$"))
    do
      local again <close> = client{ session_id = id }
      assert.is_false(again.owned)
      assert.equal("echo x\n", again:execute_command("echo x"))
    end
    client{ session_id = id }
    collectgarbage()
    agentcube.flush()
    assert.same({ { sessionId = id } }, fake:sessions())
    -- only an explicit stop() deletes an attached session
    client{ session_id = id }:stop()
    assert.same({}, fake:sessions())
  end)

  it("is fine with stop() twice and raises ECLOSED after it", function()
    local ci = client()
    local id = ci.session_id
    assert.is_true(ci:stop())
    assert.is_true(ci:stop())
    assert.equal("agentcube.Session (closed)", tostring(ci))
    assert.is_nil(ci.session_id)
    assert.is_true(ci.closed)
    for m, args in pairs{ execute_command = { "true" },
                          execute_command_result = { { "true" }, 1 },
                          run_code = { "python", "print(1)" },
                          write_file = { "x", "f" },
                          upload_file = { "/etc/hostname", "f" },
                          download_file = { "f", "/tmp/f" },
                          list_files = {}, read_file = { "f" },
                          detach = {} } do
      local e = catch(ci[m], ci, table.unpack(args))
      assert.is_true(agentcube.is_error(e), m)
      assert.equal("ECLOSED", e.code, m)
      assert.equal("SessionError", e.kind, m)
    end
    do local _ <close> = ci end             -- __close after stop: nothing
    assert.equal(1, fake:count("DELETE", "/sessions/" .. pat(id) .. "$"))
  end)

  it("warns and keeps close_error when the DELETE at scope exit fails",
     function()
    fake:rules{ { method = "DELETE", status = 500,
                  body = '{"message":"nope"}' } }
    local ci = client()
    do local c <close> = ci end
    assert.is_true(ci.closed)
    local e = ci.close_error
    assert.is_true(agentcube.is_error(e))
    assert.equal(500, e.http_status)
    assert.matches("nope", e.message)
    fake:rules{}
    -- the session is still there: delete it through a fresh attachment
    client{ session_id = fake:sessions()[1].sessionId }:stop()
  end)

  it("deletes owned sessions when the Lua state closes", function()
    local out, code = help.lua(([[
      local agentcube = require "agentcube"
      local o = { workload_manager_url = %q, router_url = %q }
      local kept = agentcube.CodeInterpreterClient(o)
      local gone = agentcube.CodeInterpreterClient(o)
      local det = agentcube.CodeInterpreterClient(o)
      print("detached " .. det:detach())
      for _ = 1, 10 do agentcube.CodeInterpreterClient(o) end
      error("the script fails; the sessions go anyway")
    ]]):format(fake.url, fake.url))
    assert.equal(1, code)
    assert.matches("the script fails", out)
    local det = out:match("detached (%S+)")
    assert.same({ { sessionId = det } }, fake:sessions())
    client{ session_id = det }:stop()
  end)

  it("closes the state with os.exit(code, true) too", function()
    local _, code = help.lua(([[
      local agentcube = require "agentcube"
      local ci = agentcube.CodeInterpreterClient{
        workload_manager_url = %q, router_url = %q }
      os.exit(3, true)
    ]]):format(fake.url, fake.url))
    assert.equal(3, code)
    assert.same({}, fake:sessions())
  end)
end)
