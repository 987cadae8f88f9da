-- The Lua binding over the engine against a real `agentcube serve`:
-- streaming callbacks, run_code_result, close(), file operations and
-- their errors, Ctrl-C raising EINTERRUPTED (which try does not swallow),
-- os.exit and GC pressure leaving no session, and the same operation
-- giving the same results and errors through the blocking and streamed
-- paths.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local srv

local function client(extra)
  return agentcube.CodeInterpreterClient(help.opts(srv.url, extra))
end

local function count()
  return #help.session_ids(srv)
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

setup(function() srv = server.start{} end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
end)

describe("streaming callbacks", function()
  it("deliver stdout and stderr, and the result is the same as without",
     function()
    local ci <close> = client()
    local out, err = {}, {}
    local cmd = { "sh", "-c", "echo one; echo two >&2; echo three" }
    local got = ci:execute_command(cmd, {
      on_stdout = function(s) out[#out + 1] = s end,
      on_stderr = function(s) err[#err + 1] = s end })
    assert.equal("one\nthree\n", table.concat(out))
    assert.equal("two\n", table.concat(err))
    assert.equal(ci:execute_command(cmd), got)
    local r1 = ci:execute_command_result({ "sh", "-c", "echo x; exit 3" },
                                         { on_stdout = function() end })
    local r2 = ci:execute_command_result({ "sh", "-c", "echo x; exit 3" })
    -- the same fields; the durations are each run's own
    assert.is_number(r1.duration)
    assert.is_number(r2.duration)
    r1.duration, r2.duration = nil, nil
    assert.same(r2, r1)
    assert.equal(3, r1.exit_code)
  end)

  it("a failing command raises the same CommandExecutionError", function()
    local ci <close> = client()
    local cmd = { "sh", "-c", "echo bad >&2; exit 4" }
    local e1 = catch(ci.execute_command, ci, cmd,
                     { on_stderr = function() end })
    local e2 = catch(ci.execute_command, ci, cmd)
    assert.is_true(agentcube.is_error(e1))
    assert.equal(e2.code, e1.code)
    assert.equal(e2.exit_code, e1.exit_code)
    assert.equal(e2.stderr, e1.stderr)
  end)

  it("an error in a callback is raised as it is", function()
    local ci <close> = client()
    local err = catch(ci.execute_command, ci, "echo hi",
                      { on_stdout = function() error("boom", 0) end })
    assert.equal("boom", err)
    assert.equal("ok\n", ci:execute_command("echo ok"))
  end)

  it("bad callbacks are argument errors", function()
    local ci <close> = client()
    local err = catch(ci.execute_command, ci, "true", { on_stdout = 5 })
    assert.matches("on_stdout", tostring(err))
  end)
end)

describe("run_code_result", function()
  it("never raises for a failed program, run_code does", function()
    local ci <close> = client()
    local r = ci:run_code_result("python", "import sys; print('a'); "
                                 .. "sys.exit(2)")
    assert.equal(2, r.exit_code)
    assert.equal("a\n", r.stdout)
    local err = catch(ci.run_code, ci, "python", "import sys; sys.exit(2)")
    assert.equal("ECOMMAND", err.code)
    local ok = ci:run_code_result("bash", "echo fine")
    assert.equal(0, ok.exit_code)
    assert.equal("fine\n", ok.stdout)
  end)

  it("leaves no script files in the workspace on the local runtime",
     function()
    -- zero configuration: the library finds the server through
    -- $AGENTCUBE_HOME/serve.json (checked, listener proven), and knows it
    -- is the local runtime
    local out, status = help.lua([[
      local agentcube = require "agentcube"
      local ci <close> = agentcube.CodeInterpreterClient()
      for _ = 1, 3 do ci:run_code("python", "print(1)") end
      for _, f in ipairs(ci:list_files(".")) do print("file", f.name) end
      print("done")
    ]], { AGENTCUBE_HOME = srv.state_dir },
        { prefix = "env -u WORKLOAD_MANAGER_URL -u ROUTER_URL" })
    assert.equal(0, status, out)
    assert.matches("done", out)
    assert.is_nil(out:match("script_"), out)
  end)
end)

describe("on_progress", function()
  it("reports uploads and downloads; an error in it is raised", function()
    local ci <close> = client()
    local dir = server.tmpdir("agentcube-progress")
    local src, dst = dir .. "/src.bin", dir .. "/dst.bin"
    help.write_file(src, string.rep("x", 3 * 1024 * 1024))
    local up, down = {}, {}
    ci:upload_file(src, "big.bin", { on_progress = function(d, t)
      up[#up + 1] = { d, t } end })
    ci:download_file("big.bin", dst, { on_progress = function(d, t)
      down[#down + 1] = { d, t } end })
    assert.is_true(#up > 0 and #down > 0)
    assert.is_true(up[#up][1] >= 3 * 1024 * 1024)
    assert.equal(up[#up][1], up[#up][2])
    assert.equal(3 * 1024 * 1024, down[#down][1])
    assert.equal(3 * 1024 * 1024, #help.read_file(dst))
    local err = catch(ci.download_file, ci, "big.bin", dir .. "/x.bin",
                      { on_progress = function() error("stop", 0) end })
    assert.equal("stop", err)
    assert.is_false(help.exists(dir .. "/x.bin"))
    os.execute("rm -rf " .. help.q(dir))
  end)
end)

describe("close()", function()
  it("is stop(): the session is deleted", function()
    local before = count()
    local ci = client()
    ci:execute_command("true")
    assert.equal(before + 1, count())
    ci:close()
    assert.is_true(ci.closed)
    assert.equal(before, count())
  end)
end)

describe("file operations", function()
  it("mkdir, stat, exists, rename, remove", function()
    local ci <close> = client()
    ci:mkdir("a/b")
    assert.is_true(ci:stat("a/b").is_dir)
    ci:write_file("hello", "a/b/x.txt")
    local st = ci:stat("a/b/x.txt")
    assert.equal(5, st.size)
    assert.equal("file", st.type)
    assert.is_true(ci:exists("a/b/x.txt"))
    ci:rename("a/b/x.txt", "a/y.txt")
    assert.is_false(ci:exists("a/b/x.txt"))
    assert.equal("hello", ci:read_file("a/y.txt"))
    assert.is_true(ci:remove("a", { recursive = true }) >= 3)
    assert.is_false(ci:exists("a"))
  end)

  it("errors name the path and the session", function()
    local ci <close> = client()
    local err = catch(ci.read_file, ci, "/workspace/nope.txt")
    assert.matches("nope.txt", err.message, 1, true)
    assert.matches(ci.session_id, err.message, 1, true)
    err = catch(ci.stat, ci, "nope")
    assert.equal("ENOTFOUND", err.code)
  end)
end)

describe("background processes", function()
  it("spawn, processes, wait, output, kill, write", function()
    local ci <close> = client()
    local p = ci:spawn("echo hi; echo err >&2; sleep 0.3; exit 3")
    assert.equal("running", p.state)
    assert.is_true(math.type(p.id) == "integer")
    assert.equal(1, #ci:processes())
    local r = p:wait(10)
    assert.equal(3, r.exit_code)
    assert.equal("exited", r.state)
    assert.equal("hi\n", r.stdout)
    assert.equal("err\n", r.stderr)
    local out, err, next_offset = p:output(0)
    assert.equal("hi\n", out)
    assert.equal("err\n", err)
    assert.equal(7, next_offset)
    local q = ci:spawn({ "sleep", "30" })
    q:kill("KILL")
    assert.equal("killed", q:wait(10).state)
    local c = ci:spawn({ "cat" }, { stdin = true })
    assert.equal(4, c:write("abc\n", true))
    assert.equal("abc\n", c:wait(10).stdout)
  end)

  it("output with nothing new is empty and starts where it was asked",
     function()
    local ci <close> = client()
    local p = ci:spawn("sleep 30")
    local out, err, next_offset = p:output(0)
    assert.equal("", out)
    assert.equal("", err)
    assert.equal(0, next_offset)
    local w = ci:spawn("echo abc; sleep 30")
    for _ = 1, 100 do
      if select(3, w:output(0)) == 4 then break end
      os.execute("sleep 0.05")
    end
    assert.equal("abc\n", (w:output(0)))   -- the control: output is read
    out, err, next_offset = w:output(4)
    assert.equal("", out)
    assert.equal("", err)
    assert.equal(4, next_offset)
    p:kill("KILL")
    w:kill("KILL")
  end)

  it("contexts work, or say which feature and server lack them",
     function()
    local ci <close> = client()
    local ok, ctx = pcall(ci.create_context, ci, "python")
    if not ok then
      assert.equal("EUNSUPPORTED", ctx.code)
      assert.matches("code contexts", ctx.message, 1, true)
      assert.matches(srv.url, ctx.message, 1, true)
      return
    end
    ctx:run("x = 20")
    local r = ctx:run("x * 2 + 2")
    assert.equal("42", r.value)
    ctx:close()
  end)

  it("an interrupt that reaches a python context between runs is " ..
     "dropped: the interpreter and its state live on", function()
    local ci <close> = client()
    local ctx = ci:create_context("python")
    -- the interpreter interrupts itself 0.2 s after the cell has ended,
    -- as a server's interrupt does that comes just too late
    ctx:run("import os, signal, threading\nx = 41\n" ..
            "threading.Timer(0.2, os.kill, (os.getpid(), " ..
            "signal.SIGINT)).start()")
    os.execute("sleep 0.5")
    local r = ctx:run("x + 1")
    assert.is_nil(r.error, r.error and r.error.message)
    assert.equal("42", r.value)
    assert.not_equal("restarted", r.state)
    -- control: during a run the same signal still interrupts it
    local t = ctx:run("import time\ntime.sleep(0.5)\nx = 0",
                      { timeout = 0.1 })
    assert.is_true(t.timed_out)
    assert.equal("42", ctx:run("x + 1").value)
    ctx:close()
  end)

  it("a context run that ignores the interrupt times out with the " ..
     "server's answer (the interpreter killed 2 s later), not the " ..
     "client's own timeout; the next run starts a new interpreter",
     function()
    local ci <close> = client()
    local ctx = ci:create_context("python")
    ctx:run("import signal, time\nsignal.signal(signal.SIGINT, " ..
            "signal.SIG_IGN)\nx = 1")
    local r = ctx:run("time.sleep(30)", { timeout = 0.5 })
    assert.is_true(r.timed_out)
    assert.equal("TimeoutError", r.error.name)
    assert.matches("did not stop when interrupted", r.error.message, 1, true)
    assert.is_true(r.duration >= 2, r.duration)
    local again = ctx:run("'x' in dir()")
    assert.equal("restarted", again.state)
    assert.equal("False", again.value)
    ctx:close()
  end)
end)

describe("Ctrl-C", function()
  local script = [[
    local agentcube = require "agentcube"
    local ci = agentcube.CodeInterpreterClient{
      workload_manager_url = %q, router_url = %q }
    io.stdout:write("ready\n") io.stdout:flush()
    %s
  ]]

  local function interrupted(body)
    local code = script:format(srv.url, srv.url, body)
    -- SIGINT once the command runs; measure how long the script lives on
    local t0 = os.time()
    local out, status = help.lua(code, {}, {
      prefix = "timeout --foreground -s INT 3" })
    return out, status, os.time() - t0
  end

  it("ends a blocked execute_command with EINTERRUPTED within a second",
     function()
    local out, status, secs = interrupted(
      'ci:execute_command("sleep 30")')
    assert.is_true(secs <= 3 + 2, "took " .. secs .. " s")
    assert.matches("EINTERRUPTED", out)
    assert.not_equal(0, status)
  end)

  it("is not swallowed by try", function()
    local out, status = interrupted([[
      local r, e = agentcube.try(ci.execute_command, ci, "sleep 30")
      print("swallowed", r, e)]])
    assert.is_nil(out:match("swallowed"), out)
    assert.matches("EINTERRUPTED", out)
    assert.not_equal(0, status)
  end)
end)

describe("sessions do not outlive the script", function()
  it("os.exit(n) without close deletes them", function()
    local before = count()
    local out, status = help.lua(([[
      local agentcube = require "agentcube"
      local o = { workload_manager_url = %q, router_url = %q }
      local a = agentcube.CodeInterpreterClient(o)
      local b = agentcube.CodeInterpreterClient(o)
      a:execute_command("true") b:execute_command("true")
      os.exit(3)
    ]]):format(srv.url, srv.url))
    assert.equal(3, status, out)
    assert.equal(before, count())
  end)

  it("30 dropped clients do not pile up while the script runs", function()
    local before = count()
    local most = 0
    for _ = 1, 30 do
      local ci = client()
      ci:execute_command("true")
      local n = count() - before
      if n > most then most = n end
    end
    assert.is_true(most <= agentcube.collect_every + 1,
                   "up to " .. most .. " sessions alive")
    collectgarbage()
    agentcube.flush()
    assert.equal(before, count())
  end)
end)
