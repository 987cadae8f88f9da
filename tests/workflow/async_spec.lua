-- agentcube.async against a real `agentcube serve`: jobs on worker
-- threads overlap, results convert on the main thread, sessions are busy
-- while a job runs, cancel/gc/stop behave, and misuse is refused.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local server = require "server"
local agentcube = require "agentcube"
local async = help.cmodule("agentcube.async")

local srv

local function client(extra)
  local o = help.client(srv)
  for k, v in pairs(extra or {}) do o[k] = v end
  return agentcube.CodeInterpreterClient(o)
end

-- Waits for one job and returns its result.
local function finish(job, limit)
  local deadline = async.now() + (limit or 60)
  while async.now() < deadline do
    if async.wait_any({ job }, 100) then return job:result() end
  end
  error("job did not finish")
end

setup(function() srv = server.start{} end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
end)

describe("jobs", function()
  it("run commands, code and file operations", function()
    local ci <close> = client()
    local ok, r = finish(async.submit(ci, "exec",
                                      { command = { "echo", "a b" } }))
    assert.is_true(ok)
    assert.equal("a b\n", r.stdout)
    assert.equal(0, r.exit_code)
    ok, r = finish(async.submit(ci, "exec", { command = "sh -c 'exit 3'" }))
    assert.is_true(ok)                  -- a non-zero exit is data
    assert.equal(3, r.exit_code)
    local err
    ok, err = finish(async.submit(ci, "exec", { command = "false",
                                                check = true }))
    assert.is_nil(ok)
    assert.equal("CommandExecutionError", err.kind)
    assert.equal(1, err.exit_code)
    ok, r = finish(async.submit(ci, "run_code",
      { language = "python", code = "import os\nprint(os.environ['V'])",
        env = { V = "42" } }))
    assert.is_true(ok)
    assert.equal("42\n", r.stdout)
    ok, r = finish(async.submit(ci, "run_code",
      { language = "python", code = "raise SystemExit(4)" }))
    assert.is_true(ok)
    assert.equal(4, r.exit_code)
    assert.is_true(finish(async.submit(ci, "write",
      { content = "x\0y", path = "w.bin" })))
    ok, r = finish(async.submit(ci, "read", { path = "w.bin" }))
    assert.is_true(ok)
    assert.equal("x\0y", r.content)
    ok, r = finish(async.submit(ci, "list", { path = "." }))
    assert.is_true(ok)
    local names = {}
    for _, f in ipairs(r) do names[f.name] = f.size end
    assert.equal(3, names["w.bin"])
    local dir = help.tmpdir()
    help.write(dir .. "/up.txt", "uploaded\n")
    assert.is_true(finish(async.submit(ci, "upload",
      { from = dir .. "/up.txt", to = "sub/up.txt" })))
    assert.is_true(finish(async.submit(ci, "download",
      { from = "sub/up.txt", to = dir .. "/down/up.txt" })))
    assert.equal("uploaded\n", help.read(dir .. "/down/up.txt"))
    ok, err = finish(async.submit(ci, "upload",
      { from = dir .. "/missing", to = "x" }))
    assert.is_nil(ok)
    assert.equal("ENOTFOUND", err.code)
    help.rm(dir)
  end)

  it("overlap across sessions", function()
    local cis, jobs = {}, {}
    for i = 1, 3 do
      cis[i] = client()
      jobs[i] = async.submit(cis[i], "exec", { command = "sleep 1" })
    end
    local t0 = async.now()
    local pending = { table.unpack(jobs) }
    while #pending > 0 do
      local j, i = async.wait_any(pending, 1000)
      if j then
        assert.is_true((j:result()))
        table.remove(pending, i)
      end
    end
    local elapsed = async.now() - t0
    assert.is_true(elapsed < 2.5, "took " .. elapsed)
    -- every job started before any finished: they overlapped
    local first_end = math.huge
    for _, j in ipairs(jobs) do
      first_end = math.min(first_end, select(3, j:times()))
    end
    for _, j in ipairs(jobs) do
      assert.is_true(select(2, j:times()) < first_end)
    end
    for _, ci in ipairs(cis) do ci:stop() end
  end)

  it("keep blocking methods off their session, naming the job", function()
    local ci = client()
    local job = async.submit(ci, "exec", { command = "sleep 0.5" })
    local ok, err = pcall(ci.execute_command, ci, "true")
    assert.is_false(ok)
    assert.equal("EBUSY", err.code)
    assert.matches('1 agentcube.async job is running on it %(the latest: '
                   .. '"exec"%)', err.message)
    -- more jobs may run on the same session at once
    local other = async.submit(ci, "exec", { command = "echo more" })
    assert.is_true(async.supported(ci))
    -- stop() now is deferred until the jobs are over
    assert.is_true(ci:stop())
    assert.is_false(ci.closed)
    local _, r = finish(other)
    assert.equal("more\n", r.stdout)
    assert.is_false(ci.closed)
    assert.is_true(finish(job))
    assert.is_true(ci.closed)
    assert.equal(0, #help.sessions(srv))
  end)

  it("can be cancelled while queued and while running", function()
    local prev = async.configure{ threads = 1 }
    finally(function() async.configure{ threads = prev } end)
    local a, b = client(), client()
    local ja = async.submit(a, "exec", { command = "sleep 30" })
    local jb = async.submit(b, "exec", { command = "true" })
    assert.equal("running", ja:state())
    assert.equal("queued", jb:state())
    assert.is_true(jb:cancel())
    assert.equal("cancelled", jb:state())
    local ok, err = jb:result()
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.is_true(async.supported(b))   -- b is free again
    local t0 = async.now()
    assert.is_true(ja:cancel())           -- running: aborted at once
    assert.is_true(async.now() - t0 < 1)
    assert.equal("cancelled", ja:state())
    ok, err = ja:result()
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.is_false(ja:cancel())          -- over: nothing to do
    assert.equal("ok\n", a:execute_command("echo ok"))
    a:stop()
    b:stop()
  end)

  it("run to the end when dropped, and are collected once over", function()
    local ci <close> = client()
    local job = async.submit(ci, "exec", { command = "sleep 0.3" })
    assert.equal("agentcube.async.Job (exec", tostring(job):sub(1, 25))
    local weak = setmetatable({ job }, { __mode = "v" })
    job = nil                           -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(weak[1])          -- running: kept by the module
    assert.equal(1, async.poll(5000))   -- and driven by any wait
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    assert.equal("ok\n", ci:execute_command("echo ok"))
  end)

  it("stop a session while a command runs on it, even in a full pool",
     function()
    local prev = async.configure{ threads = 1 }
    finally(function() async.configure{ threads = prev } end)
    local ci = client()
    local t0 = async.now()
    local long = async.submit(ci, "exec", { command = "sleep 30",
                                            timeout = 60 })
    assert.is_true(async.wait_any({ long }, 300) == nil)
    local stop = async.submit(ci, "stop", { timeout = 5 })
    assert.is_true(finish(stop, 10))
    finish(long, 20)
    assert.is_true(async.now() - t0 < 15)
    ci:stop()                             -- already deleted: no HTTP
    assert.equal(0, #help.sessions(srv))
  end)
end)

describe("misuse", function()
  it("is refused with clear errors", function()
    local ci <close> = client()
    assert.has_error(function() async.submit(ci, "nope", {}) end)
    assert.has_error(function()
      async.submit(ci, "exec", { command = "x", bogus = 1 })
    end, "unknown option 'bogus'")
    assert.has_error(function()
      async.submit(ci, "exec", { command = { "a", {} } })
    end)
    assert.has_error(function() async.submit(ci, "read", {}) end)
    assert.has_error(function() async.submit({}, "exec", {}) end)
    ci:stop()
    local ok, err = pcall(async.submit, ci, "exec", { command = "true" })
    assert.is_false(ok)
    assert.equal("ECLOSED", err.code)
  end)

  it("run on a session with a Lua auth provider, on this thread", function()
    local calls = 0
    local ci <close> = client{ auth = function()
      calls = calls + 1
      return "token"
    end }
    assert.is_true(async.supported(ci))
    local before = calls
    local ok, r = finish(async.submit(ci, "exec", { command = "echo hi" }))
    assert.is_true(ok)
    assert.equal("hi\n", r.stdout)
    assert.is_true(calls > before)
    -- a provider that raises fails the job with its own error
    local ci2 <close> = client{ auth = function() return "token" end }
    local n = 0
    local bad <close> = agentcube.CodeInterpreterClient{
      session_id = ci2.session_id, workload_manager_url = srv.url,
      router_url = srv.url,
      auth = function()
        n = n + 1
        error({ mine = true })
      end }
    local ok2, err = finish(async.submit(bad, "exec", { command = "true" }))
    assert.is_nil(ok2)
    assert.same({ mine = true }, err)
    assert.is_true(n > 0)
  end)

  it("sleeps on an empty list", function()
    local t0 = async.now()
    assert.is_nil(async.wait_any({}, 150))
    assert.is_true(async.now() - t0 >= 0.14)
  end)
end)

describe("many jobs", function()
  it("run to the end without losing any", function()
    local cis = {}
    for i = 1, 4 do cis[i] = client() end
    local done = 0
    for _ = 1, 25 do
      local jobs = {}
      for i = 1, 4 do
        jobs[i] = async.submit(cis[i], "write",
                               { content = tostring(i), path = "n" })
      end
      while #jobs > 0 do
        local j, i = async.wait_any(jobs, 1000)
        if j then
          assert.is_true((j:result()))
          table.remove(jobs, i)
          done = done + 1
        end
      end
    end
    assert.equal(100, done)
    for _, ci in ipairs(cis) do ci:stop() end
    collectgarbage()
  end)
end)
