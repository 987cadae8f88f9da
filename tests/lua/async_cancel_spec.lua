-- agentcube.async against a real `agentcube serve`: cancel and interrupt
-- at every stage (queued, before send, during an upload, while a command
-- runs, during a download, Ctrl-C), streaming callbacks that fire while a
-- command still runs, create and stop without blocking, and no session
-- left behind. Time bounds are generous (the machine is shared); the
-- strict numbers belong to `make bench`.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"
local async = require "agentcube.async"

local srv, dir, opts

local function client()
  return agentcube.CodeInterpreterClient(opts)
end

local function finish(job, limit)
  local deadline = async.now() + (limit or 60)
  while async.now() < deadline do
    if async.wait_any({ job }, 100) then return job:result() end
  end
  error("job did not finish")
end

-- Drives the jobs until pred() holds (or fails after limit seconds).
local function until_true(pred, limit, what)
  local deadline = async.now() + (limit or 30)
  while not pred() do
    assert(async.now() < deadline, "timed out waiting for " .. what)
    async.poll(20)
  end
end

-- The session still works, and its files are as expected.
local function usable(ci)
  assert.equal("ok\n", ci:execute_command("echo ok"))
end

setup(function()
  srv = server.start{}
  opts = help.opts(srv.url)
  dir = server.tmpdir("agentcube-async-cancel")
end)

teardown(function()
  collectgarbage()
  agentcube.flush()
  os.execute("rm -rf " .. help.q(dir))
  srv:destroy()
end)

describe("cancel", function()
  it("a queued job never starts", function()
    local prev = async.configure{ threads = 1 }
    finally(function() async.configure{ threads = prev } end)
    local a <close> = client()
    local b <close> = client()
    local ja = async.submit(a, "exec", { command = "sleep 30" })
    local jb = async.submit(b, "exec", { command = "touch queued" })
    assert.equal("queued", jb:state())
    async.poll(200)
    assert.equal("queued", jb:state())        -- the limit holds it back
    assert.is_true(jb:cancel())
    local ok, err = jb:result()
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.is_true(ja:cancel())
    usable(b)
    assert.is_false(b:exists("queued"))
    usable(a)
  end)

  it("before the request is sent, the command never runs", function()
    local ci <close> = client()
    -- positive control: the same job, driven, does run
    assert.is_true((finish(async.submit(ci, "exec",
                                        { command = "touch ran" }))))
    assert.is_true(ci:exists("ran"))
    local job = async.submit(ci, "exec", { command = "touch never" })
    assert.equal("running", job:state())
    assert.is_true(job:cancel())             -- nothing was polled yet
    assert.equal("cancelled", job:state())
    async.poll(300)
    assert.is_false(ci:exists("never"))
    usable(ci)
  end)

  it("while a command runs: the command is killed on the server",
     function()
    local ci <close> = client()
    local started = false
    -- writes a tick every 100 ms for 30 s: once cancelled, the ticks stop
    local job = async.submit(ci, "exec", {
      command = { "sh", "-c", "echo go; i=0; while [ $i -lt 300 ]; do " ..
                  "date +%s%N > tick.new; mv tick.new tick; " ..
                  "i=$((i+1)); sleep 0.1; done" },
      timeout = 60,
      on_stdout = function() started = true end })
    until_true(function() return started end, 30, "the command to start")
    async.poll(300)
    local t0 = async.now()
    assert.is_true(job:cancel())
    assert.is_true(async.now() - t0 < 1, "cancel took too long")
    local ok, err = job:result()
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    -- the ticks stop: the kill on the server may land a moment after
    -- the cancel returned (generous bound: the machine is shared), and
    -- then 0.5 s pass without a tick
    local first = ci:read_file("tick")
    assert.truthy(first:match("%d+"))           -- they were moving
    local deadline = async.now() + 15
    local still
    repeat
      local before = ci:read_file("tick")
      os.execute("sleep 0.5")
      still = before == ci:read_file("tick")
    until still or async.now() > deadline
    assert.is_true(still, "the command still runs")
    usable(ci)
  end)

  it("sleep 30 ends at once", function()
    local ci <close> = client()
    local job = async.submit(ci, "exec", { command = "sleep 30" })
    async.poll(500)
    assert.equal("running", job:state())
    local t0 = async.now()
    job:cancel()
    local ok, err = job:result()
    assert.is_true(async.now() - t0 < 2)
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    usable(ci)
  end)

  it("during an upload: progress was seen, nothing is left", function()
    local ci <close> = client()
    local big = dir .. "/big.bin"
    assert.is_true(os.execute("head -c 268435456 /dev/urandom > " ..
                              help.q(big)))
    local seen, job, t_cancel = 0, nil, nil
    job = async.submit(ci, "upload", { from = big, to = "big.bin",
      on_progress = function(done, total)
        seen = done
        if done > 0 and done < total and not t_cancel then
          t_cancel = async.now()
          job:cancel()
        end
      end })
    local ok, err = finish(job, 120)
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.is_true(seen > 0, "no progress seen")
    assert.is_truthy(t_cancel)
    assert.is_true(async.now() - t_cancel < 2)
    usable(ci)
    assert.is_false(ci:exists("big.bin"))
    -- positive control: a small upload goes through
    help.write_file(dir .. "/small", "small\n")
    assert.is_true((finish(async.submit(ci, "upload",
      { from = dir .. "/small", to = "small" }))))
    assert.equal("small\n", ci:read_file("small"))
  end)

  it("during a download: progress was seen, nothing is left", function()
    local ci <close> = client()
    ci:execute_command({ "sh", "-c",
                                   "head -c 268435456 /dev/urandom > big" },
                                 { timeout = 120 })
    local seen, job, t_cancel = 0, nil, nil
    local to = dir .. "/dl/big.bin"
    job = async.submit(ci, "download", { from = "big", to = to,
      on_progress = function(done)
        seen = done
        if done > 0 and not t_cancel then
          t_cancel = async.now()
          job:cancel()
        end
      end })
    local ok, err = finish(job, 120)
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.is_true(seen > 0, "no progress seen")
    assert.is_true(async.now() - t_cancel < 2)
    local left = help.run("ls -A " .. help.q(dir .. "/dl") .. " 2>/dev/null")
    assert.equal("", left)                   -- no partial file
    usable(ci)
  end)

  it("from a callback: the job ends with the callback's error", function()
    local ci <close> = client()
    local job = async.submit(ci, "exec", {
      command = { "sh", "-c", "echo a; sleep 30" }, timeout = 60,
      on_stdout = function() error({ mine = 1 }) end })
    local t0 = async.now()
    local ok, err = finish(job)
    assert.is_true(async.now() - t0 < 10)
    assert.is_nil(ok)
    assert.same({ mine = 1 }, err)
    usable(ci)
  end)
end)

describe("interrupt", function()
  it("async.interrupt() ends every job and raises from the wait",
     function()
    local a <close> = client()
    local b <close> = client()
    local ja = async.submit(a, "exec", { command = "sleep 30" })
    local jb = async.submit(b, "exec", {
      command = { "sh", "-c", "echo x; sleep 30" },
      on_stdout = function() async.interrupt() end })
    local t0 = async.now()
    local ok, err = pcall(async.wait_any, { ja }, 30000)
    assert.is_false(ok)
    assert.is_true(agentcube.is_error(err))
    assert.equal("EINTERRUPTED", err.code)
    assert.is_true(async.now() - t0 < 5)
    assert.equal("EINTERRUPTED", select(2, ja:result()).code)
    assert.equal("EINTERRUPTED", select(2, jb:result()).code)
    usable(a)
    usable(b)
    -- the next wait is not interrupted again
    assert.is_true((finish(async.submit(a, "exec", { command = "true" }))))
  end)

  it("Ctrl-C ends a blocked wait_any and job:result with EINTERRUPTED",
     function()
    for _, wait in ipairs{ "async.wait_any({ job }, 60000)",
                           "job:result()" } do
      local code = ([[
        local agentcube = require "agentcube"
        local async = require "agentcube.async"
        local ci = agentcube.CodeInterpreterClient{
          workload_manager_url = %q, router_url = %q }
        job = async.submit(ci, "exec", { command = "sleep 60" })
        local ok, err = pcall(function() return %s end)
        print("raised", ok, err and err.code)
        print("state", job:state())
        print("after", ci:execute_command("echo usable"))
      ]]):format(srv.url, srv.url, wait)
      local t0 = os.time()
      local out = help.lua(code, {}, { prefix = "timeout --foreground -s INT 3" })
      assert.is_true(os.time() - t0 <= 3 + 4, "took " .. os.time() - t0)
      assert.matches("raised\tfalse\tEINTERRUPTED", out)
      assert.matches("state\tcancelled", out)
      assert.matches("after\tusable", out)
    end
  end)
end)

describe("streaming", function()
  it("delivers the first chunk while the command still runs", function()
    local ci <close> = client()
    local chunks, first_at = {}, nil
    local job = async.submit(ci, "exec", {
      command = { "sh", "-c", "echo one; sleep 2; echo two >&2; echo three" },
      on_stdout = function(c)
        chunks[#chunks + 1] = c
        first_at = first_at or async.now()
      end,
      on_stderr = function(c) chunks[#chunks + 1] = "E:" .. c end })
    until_true(function() return first_at ~= nil end, 30, "a chunk")
    assert.equal("running", job:state())
    assert.equal("one\n", chunks[1])
    local ok, r = finish(job)
    assert.is_true(ok)
    assert.equal("one\nthree\n", r.stdout)
    assert.equal("two\n", r.stderr)
    assert.is_true(select(3, job:times()) - first_at > 1)
    assert.matches("E:two", table.concat(chunks, "|"))
  end)

  it("a context run streams too, with the same result", function()
    local ci <close> = client()
    local ctx = ci:create_context("python")
    local got = {}
    local ok, r = finish(async.submit(ctx, "run", {
      code = "print('a')\n6*7", on_stdout = function(c) got[#got + 1] = c end
    }))
    assert.is_true(ok)
    assert.equal("a\n", table.concat(got))
    assert.same(ctx:run("print('a')\n6*7").stdout, r.stdout)
    assert.equal("42", r.value)
    -- the blocking method takes the same callbacks
    local seen = {}
    local rb = ctx:run("print('a')\n6*7", {
      on_stdout = function(c) seen[#seen + 1] = c end })
    assert.equal("a\n", table.concat(seen))
    assert.equal(r.stdout, rb.stdout)
    assert.equal(r.value, rb.value)
  end)
end)

describe("create and stop", function()
  it("never block: poll returns while create is in flight", function()
    local t_submit = async.now()
    local job = async.submit(agentcube.CodeInterpreterClient, "create", opts)
    assert.is_true(async.now() - t_submit < 0.5)
    assert.equal("running", job:state())     -- submit did not wait for it
    local t0 = async.now()
    local n = async.poll(0)                   -- one look, never a wait
    assert.is_true(async.now() - t0 < 0.2)
    while job:state() == "running" do
      n = n + async.poll(5)
    end
    assert.equal(1, n)
    local ok, ci = job:result()
    assert.is_true(ok)
    assert.is_true(ci.owned)
    local stop = async.submit(ci, "stop", {})
    assert.is_true((finish(stop)))
    assert.is_true(ci.closed)
    -- sessions made by create are reaped like any: drop one
    local _, ci2 = finish(async.submit(agentcube.CodeInterpreterClient,
                                       "create", opts))
    local id = ci2.session_id
    ci2 = nil                                 -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    agentcube.flush()
    for _, s in ipairs(help.session_ids(srv)) do
      assert.not_equal(id, s)
    end
  end)
end)

describe("sessions made by create at exit", function()
  it("are deleted by os.exit(n) without close, like any client's",
     function()
    local before = #help.session_ids(srv)
    local out, code = help.lua(([[
      local agentcube = require "agentcube"
      local async = require "agentcube.async"
      local o = { workload_manager_url = %q, router_url = %q }
      local jobs = {}
      for i = 1, 3 do
        jobs[i] = async.submit(agentcube.CodeInterpreterClient, "create", o)
      end
      for _, j in ipairs(jobs) do assert(j:result()) end
      -- one more still in flight at exit
      async.submit(agentcube.CodeInterpreterClient, "create", o)
      print("made")
      os.exit(3)
    ]]):format(srv.url, srv.url))
    assert.equal(3, code, out)
    assert.matches("made", out)
    assert.equal(before, #help.session_ids(srv))
  end)
end)

describe("dropped sessions made by create", function()
  it("are collected under the same pressure as the clients'", function()
    collectgarbage()
    agentcube.flush()
    local before = #help.session_ids(srv)
    -- positive control: without the pressure, every one stays
    local every = agentcube.collect_every
    agentcube.collect_every = 0
    for _ = 1, 10 do
      assert.is_true((finish(async.submit(agentcube.CodeInterpreterClient,
                                          "create", opts))))
    end
    agentcube.collect_every = every
    assert.equal(before + 10, #help.session_ids(srv))
    collectgarbage()
    collectgarbage()
    agentcube.flush()
    for _ = 1, 20 do
      local ok = finish(async.submit(agentcube.CodeInterpreterClient,
                                     "create", opts))
      assert.is_true(ok)                     -- the session is dropped
    end
    local alive = #help.session_ids(srv) - before
    assert.is_true(alive > 0, "nothing left to collect: no control")
    assert.is_true(alive <= agentcube.collect_every + 2,
                   alive .. " sessions still alive")
    collectgarbage()
    collectgarbage()
    agentcube.flush()
    assert.equal(before, #help.session_ids(srv))
  end)
end)

describe("a host loop", function()
  it("waits on async.fd() and polls when it is readable", function()
    local httpc = require "httpc"
    local ci <close> = client()
    local fd = async.fd()
    assert.is_true(math.type(fd) == "integer" and fd >= 0)
    local job = async.submit(ci, "exec", {
      command = { "sh", "-c", "sleep 0.5; echo done" } })
    local wakeups, t0 = 0, async.now()
    while job:state() == "running" do
      assert(async.now() - t0 < 30, "the job did not finish")
      if httpc.readable(fd, 1000) then wakeups = wakeups + 1 end
      async.poll(0)                      -- never waits
    end
    local ok, r = job:result()
    assert.is_true(ok)
    assert.equal("done\n", r.stdout)
    assert.is_true(wakeups >= 1)
    -- nothing running: the descriptor stays quiet
    async.poll(0)
    assert.is_false(httpc.readable(fd, 100))
  end)
end)

describe("misuse", function()
  local function says(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, tostring(err))
  end

  it("submit names the bad operation, argument or option", function()
    local ci <close> = client()
    says("agentcube.async: unknown operation 'exe'", async.submit, ci, "exe",
         {})
    says("bad argument 'command' %(string or table expected, got nil%)",
         async.submit, ci, "exec")
    says("bad argument 'content' %(string expected, got table%)",
         async.submit, ci, "write", { content = {}, path = "a" })
    says("bad argument 'path' %(string without NUL expected%)",
         async.submit, ci, "write", { content = "x", path = "a\0b" })
    says("bad option 'on_progress' %(function expected, got number%)",
         async.submit, ci, "upload", { from = "a", to = "b",
                                       on_progress = 5 })
    says("bad option 'timeout' %(seconds expected%)", async.submit, ci,
         "stop", { timeout = -1 })
    -- the positive controls: list without a path lists "."; stop with a
    -- time limit stops
    ci:write_file("x", "listed.txt")
    local ok, files = finish(async.submit(ci, "list", {}))
    assert.is_true(ok)
    local names = {}
    for _, f in ipairs(files) do names[f.name] = true end
    assert.is_true(names["listed.txt"])
    assert.is_true((finish(async.submit(ci, "stop", { timeout = 30 }))))
    assert.is_true(ci.closed)
  end)

  it("supported() says why a session takes no job", function()
    local ci = client()
    assert.is_true(async.supported(ci))
    local inside, why
    ci:execute_command("echo x", { on_stdout = function()
      inside, why = async.supported(ci)
    end })
    assert.is_false(inside)
    assert.matches("a blocking call on the session has not returned", why)
    ci:stop()
    inside, why = async.supported(ci)
    assert.is_false(inside)
    assert.equal("the session was stopped", why)
  end)

  it("a job says what it is, and <close> cancels it at scope exit",
     function()
    local ci <close> = client()
    local outer
    do
      local job <close> = async.submit(ci, "exec", { command = "sleep 30" })
      outer = job
      assert.matches("^agentcube%.async%.Job %(exec, %a+, 0x%x+%)$",
                     tostring(job))
      local queued, _, finished = job:times()
      assert.is_number(queued)
      assert.is_nil(finished)
    end
    assert.equal("cancelled", outer:state())
    assert.matches("^agentcube%.async%.Job %(exec, cancelled,",
                   tostring(outer))
    local ok, err = outer:result()
    assert.is_nil(ok)
    assert.equal("ECANCELED", err.code)
    assert.matches("cancelled at scope exit", err.message)
    -- a finished job is not cancelled by its scope (the positive control)
    local done
    do
      local job <close> = async.submit(ci, "exec", { command = "echo hi" })
      done = job
      finish(job)
    end
    assert.equal("done", done:state())
    assert.equal("hi\n", select(2, done:result()).stdout)
    usable(ci)
  end)

  it("create with a session_id attaches at once, without a request",
     function()
    local ci <close> = client()
    local job = async.submit(agentcube.CodeInterpreterClient, "create",
                             help.opts(srv.url, { session_id =
                                                  ci.session_id }))
    assert.equal("done", job:state())
    local ok, other = job:result()
    assert.is_true(ok)
    assert.equal(ci.session_id, other.session_id)
    assert.equal("ok\n", other:execute_command("echo ok"))
    other:detach()
  end)

  it("a Lua auth provider runs for jobs; its error is the job's error",
     function()
    local fail, calls = false, 0
    local ci <close> = agentcube.CodeInterpreterClient(help.opts(srv.url, {
      auth = function()
        calls = calls + 1
        if fail then error("no token today", 0) end
        return "t"
      end }))
    local before = calls
    -- two jobs on the session at once share its provider
    local j1 = async.submit(ci, "exec", { command = "echo a" })
    local j2 = async.submit(ci, "exec", { command = "echo a2" })
    local ok, r = finish(j1)
    assert.is_true(ok)
    assert.equal("a\n", r.stdout)
    ok, r = finish(j2)
    assert.is_true(ok)
    assert.equal("a2\n", r.stdout)
    assert.is_true(calls >= before + 2)       -- asked during the jobs
    fail = true
    local ok2, err = finish(async.submit(ci, "exec", { command = "echo b" }))
    assert.is_falsy(ok2)
    assert.equal("no token today", err)
    fail = false                              -- the DELETE at close
    usable(ci)
  end)

  it("<close> with a job running waits for the job, then stops",
     function()
    local job, id
    do
      local ci <close> = client()
      id = ci.session_id
      job = async.submit(ci, "exec", { command = { "sh", "-c",
                                                  "sleep 0.5; echo late" } })
    end
    local ok, r = finish(job)
    assert.is_true(ok)
    assert.equal(0, r.exit_code)
    assert.equal("late\n", r.stdout)         -- the job was not cut short
    async.poll(0)
    for _, sid in ipairs(help.session_ids(srv)) do
      assert.not_equal(id, sid, "the session was not deleted")
    end
  end)

  it("a context run's stderr streams through on_stderr", function()
    local ci <close> = client()
    local ctx <close> = ci:create_context("python")
    local got = {}
    local ok, r = finish(async.submit(ctx, "run", {
      code = "import sys; sys.stderr.write('warn\\n')",
      on_stderr = function(chunk) got[#got + 1] = chunk end }))
    assert.is_true(ok)
    assert.equal("warn\n", r.stderr)
    assert.equal("warn\n", table.concat(got))
  end)
end)

describe("nothing leaks", function()
  it("leaves no session on the server", function()
    collectgarbage()
    collectgarbage()
    agentcube.flush()
    assert.same({}, help.session_ids(srv))
  end)
end)
