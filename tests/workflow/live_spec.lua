-- Live sessions in workflows, against a real `agentcube serve`: run
-- steps sharing a context like notebook cells, background exec steps with
-- readiness by output and by probe, stop steps, what the end of a run
-- does to background processes, -v output line by line, and Ctrl-C on
-- `agentcube run` (exit 130, finally steps, no session left).
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local server = require "server"
local agentcube = require "agentcube"
local cjson = require "cjson"

local srv, dir
local q = help.q
local A = help.cmodule("agentcube.async")

setup(function()
  srv = server.start{}
  dir = help.tmpdir()
end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
  help.rm(dir)
end)

local function run(text, opts, name)
  return help.run(srv, help.file(dir, text, name), opts)
end

local function events_of(events, type_, id)
  local out = {}
  for _, e in ipairs(events) do
    if e.type == type_ and (id == nil or e.id == id) then
      out[#out + 1] = e
    end
  end
  return out
end

-- A port for a server inside a sandbox, different in every test run.
local function port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local a, b = f:read(2):byte(1, 2)
  f:close()
  return 20000 + (a * 256 + b) % 20000
end

-- The processes of the host (sandboxes included) whose command line,
-- its arguments joined by spaces, is text.
local function host_procs(text)
  local p = io.popen("ls /proc")
  local pids = {}
  for pid in p:lines() do
    if pid:match("^%d+$") then
      local cmd = help.read("/proc/" .. pid .. "/cmdline")
      if cmd and cmd:gsub("%z$", ""):gsub("%z", " ") == text then
        pids[#pids + 1] = pid
      end
    end
  end
  p:close()
  return pids
end
-- what a lua step of a workflow below calls: how many run (waiting a
-- little for n: a process the sandbox reported may not have exec'd yet)
_G.count_host_procs = function(text, n)
  for _ = 1, 50 do
    if #host_procs(text) >= n then break end
    os.execute("sleep 0.1")
  end
  return #host_procs(text)
end

-- Waits (boundedly) until no such process is left; returns how many are.
local function gone(text)
  for _ = 1, 100 do
    if #host_procs(text) == 0 then return 0 end
    os.execute("sleep 0.1")
  end
  return #host_procs(text)
end

local function client_of(id)
  local o = help.client(srv)
  o.session_id = id
  return agentcube.CodeInterpreterClient(o)
end

describe("context steps", function()
  after_each(function() assert.same({}, help.sessions(srv)) end)

  it("share interpreter state like notebook cells, one per name",
     function()
    local code, rep = run([[
steps:
  - { id: define, context: nb, run: { code: "x = 41" } }
  - { id: use, context: nb, run: { code: "print(x + 1)\nx + 2" } }
  - id: other
    context: scratch
    run: { code: "print('x' in globals())" }
  - { id: shell, context: sh, run: "n=5" }
  - { id: shell2, context: sh, run: "echo $((n * 2))" }
outputs:
  value: ${{ steps.use.value }}
]])
    assert.equal(0, code)
    assert.equal("42\n", help.step(rep, "use").stdout)
    assert.equal("43", rep.outputs.value)
    -- another context does not see it (the control)
    assert.equal("False\n", help.step(rep, "other").stdout)
    assert.equal("10\n", help.step(rep, "shell2").stdout)
  end)

  it("fail the step with the error's name and message", function()
    local code, rep = run([[
steps:
  - { id: setup, context: nb, run: { code: "d = {}" } }
  - { id: bad, context: nb, run: { code: "d['missing']" } }
  - { id: after, context: nb, run: { code: "print('never')" } }
]])
    assert.equal(1, code)
    local bad = help.step(rep, "bad")
    assert.equal("failure", bad.outcome)
    assert.equal("KeyError: 'missing'", bad.error)
    assert.equal("skipped", help.step(rep, "after").outcome)
    assert.equal("success", help.step(rep, "setup").outcome)
  end)

  it("time out, and the context survives an interrupt it handles",
     function()
    local code, rep = run([[
steps:
  - { id: setup, context: nb, run: { code: "x = 1" } }
  - id: slow
    context: nb
    timeout: 0.5
    run: { code: "import time\ntime.sleep(30)" }
    continue_on_error: true
  - { id: kept, context: nb, run: { code: "print(x + 1)" } }
]])
    assert.equal(0, code)
    local slow = help.step(rep, "slow")
    assert.equal("failure", slow.outcome)
    assert.is_true(slow.timed_out)
    assert.equal("timed out after 0.5s", slow.error)
    -- what setup defined is still there
    assert.equal("2\n", help.step(rep, "kept").stdout)
  end)

  it("are closed when the run ends, also on a kept session", function()
    local code, rep = run([[
sessions: { main: { keep: true } }
steps:
  - { id: a, context: nb, run: { code: "x = 1" } }
  - { id: b, context: nb2, run: { code: "y = 2" } }
]])
    assert.equal(0, code)
    local id = rep.sessions.main.id
    local ci = client_of(id)
    local list = cjson.decode(ci:_ext("context_list", {})).contexts
    for _, c in ipairs(list) do
      assert.equal("deleted", c.state)
    end
    -- the control: a context made by hand is listed as alive
    ci:create_context("python")
    list = cjson.decode(ci:_ext("context_list", {})).contexts
    local alive = 0
    for _, c in ipairs(list) do
      if c.state ~= "deleted" then alive = alive + 1 end
    end
    assert.equal(1, alive)
    ci:stop()
  end)

  it("fail with a clear error naming the feature on a server without "
     .. "contexts (and so do background steps)", function()
    local fake = require("luahelp").fake()
    local path = help.file(dir, [[
steps:
  - { id: a, context: nb, run: { code: "x = 1" }, continue_on_error: true }
  - { id: b, exec: "sleep 10", background: true, continue_on_error: true }
  - { id: c, exec: "echo control" }
]])
    local code, rep = help.run({ url = fake.url }, path)
    fake:stop()
    assert.equal(0, code)
    assert.matches("context 'nb': .*code contexts are not supported by "
                   .. "this server", help.step(rep, "a").error)
    assert.matches("background processes are not supported by this "
                   .. "server", help.step(rep, "b").error)
    -- the control: the same server runs an ordinary step
    assert.equal("success", help.step(rep, "c").outcome)
  end)
end)

describe("background steps", function()
  after_each(function() assert.same({}, help.sessions(srv)) end)

  it("are ready when their output says so, run on, and are stopped by a "
     .. "stop step", function()
    local code, rep, events = run([[
steps:
  - id: srv
    exec: [sh, -c, "echo booting; sleep 1; echo listening now; exec sleep 300"]
    background: true
    ready: { output: "listening now" }
  - id: look
    exec: [sh, -c, "kill -0 ${{ steps.srv.pid }} && echo alive"]
  - id: halt
    stop: srv
]], { verbose = true })
    assert.equal(0, code)
    local s = help.step(rep, "srv")
    assert.equal("success", s.outcome)
    assert.is_true(s.duration >= 0.9, "ready after " .. s.duration)
    assert.equal("alive\n", help.step(rep, "look").stdout)
    local halt = help.step(rep, "halt")
    assert.equal("success", halt.outcome)
    assert.equal(143, halt.exit_code)          -- ended by TERM
    assert.equal("booting\nlistening now\n", halt.stdout)
    -- its output came line by line while it started
    local lines = events_of(events, "step_output", "srv")
    assert.equal("booting", lines[1].line)
    assert.equal("listening now", lines[2].line)
    local ends = events_of(events, "step_end", "srv")
    assert.is_true(lines[1].time < ends[1].time - 0.5,
                   "the first line came at the end")
  end)

  it("are killed by a stop step when they ignore TERM, while other "
     .. "sessions' steps go on", function()
    local code, rep = run([[
sessions: { a: {}, b: {} }
steps:
  - id: stubborn
    session: a
    exec: [sh, -c, "trap '' TERM; echo up; while :; do sleep 0.1; done"]
    background: true
    ready: { output: up }
  - { id: halt, session: a, stop: stubborn }
  - { id: ticks, session: b, needs: stubborn, exec: [sh, -c, "sleep 2; echo tick"] }
]])
    assert.equal(0, code)
    local halt = help.step(rep, "halt")
    assert.equal("success", halt.outcome)
    assert.equal(137, halt.exit_code)          -- KILL after the wait
    assert.is_true(halt.duration >= 4.5, "took " .. halt.duration)
    -- the scheduler was not held up meanwhile
    local ticks = help.step(rep, "ticks")
    assert.equal("tick\n", ticks.stdout)
    assert.is_true(ticks.started < halt.started + halt.duration - 2)
  end)

  it("are ready when a probe passes: an HTTP server queried by later "
     .. "steps", function()
    local p = port()
    local code, rep = help.run(srv, help.root ..
      "/workflows/background-service.yaml", { set = { port = p } })
    assert.equal(0, code, help.step(rep, "server").error)
    assert.equal("<h1>hello from the sandbox</h1>\n", rep.outputs.page)
    assert.equal("42\n", rep.outputs.answer)
    assert.matches("GET /data.json", rep.outputs.requests, 1, true)
    assert.equal(0, gone("python3 -u -m http.server " .. p ..
                         " --bind 127.0.0.1"))
  end)

  it("wait for the probe, not just for the process", function()
    local code, rep = run([[
steps:
  - id: srv
    exec: [sh, -c, "sleep 1.5; touch /tmp/up; exec sleep 300"]
    background: true
    ready: { probe: "test -e /tmp/up", interval: 0.1 }
  - { id: check, exec: "test -e /tmp/up" }
]])
    assert.equal(0, code)
    assert.is_true(help.step(rep, "srv").duration >= 1.4)
    assert.equal("success", help.step(rep, "check").outcome)
  end)

  it("fail with the output of a process that exits before it is ready",
     function()
    local code, rep = run([[
steps:
  - id: srv
    exec: [sh, -c, "echo starting; echo 'port already in use' >&2; exit 3"]
    background: true
    ready: { output: "listening", timeout: 60 }
  - { id: never, exec: "true" }
]])
    assert.equal(1, code)
    local s = help.step(rep, "srv")
    assert.equal("failure", s.outcome)
    assert.equal("the background process exited with code 3 before it was "
                 .. "ready: port already in use", s.error)
    assert.equal("starting\n", s.stdout)
    assert.equal(3, s.exit_code)
    assert.is_true(s.duration < 30, "took " .. s.duration)
    assert.equal("skipped", help.step(rep, "never").outcome)
  end)

  it("fail and are killed when not ready in time", function()
    local tag = "sleep " .. port()
    local code, rep = run(([[
steps:
  - id: srv
    exec: [sh, -c, "exec %s"]
    background: true
    ready: { output: "never printed", timeout: 1 }
]]):format(tag))
    assert.equal(1, code)
    assert.equal("not ready after 1s: 'never printed' not seen in its "
                 .. "output", help.step(rep, "srv").error)
    assert.equal(0, gone(tag))
  end)

  it("end with the run: a deleted session's, and an attached session's",
     function()
    local tag = "sleep " .. port()
    local id = srv:create()
    finally(function() srv:delete(id) end)
    local code, rep = run(([[
sessions:
  own: {}
  theirs: { id: "%s" }
steps:
  - { id: a, session: own, exec: "%s", background: true }
  - { id: b, session: theirs, exec: "%s", background: true }
  - id: seen
    lua: "return { n = count_host_procs('%s', 2) }"
    needs: [a, b]
]]):format(id, tag, tag, tag))
    assert.equal(0, code, help.step(rep, "seen").error)
    -- the control: both ran while the run lasted
    assert.equal(2, help.step(rep, "seen").outputs.n)
    assert.equal(0, gone(tag))
    -- the attached session is left alone, without the process
    local ci = client_of(id)
    for _, proc in ipairs(ci:processes()) do
      assert.are_not.equal("running", proc.state)
    end
    ci:stop()
  end)

  it("keep running on a kept session", function()
    local tag = "sleep " .. port()
    local code, rep = run(([[
sessions: { main: { keep: true } }
steps:
  - id: a
    exec: "%s"
    background: true
]]):format(tag))
    assert.equal(0, code)
    local ci = client_of(rep.sessions.main.id)
    local procs = ci:processes()
    assert.equal(1, #procs)
    assert.equal("running", procs[1].state)
    assert.equal(help.step(rep, "a").pid, procs[1].pid)
    ci:stop()
    assert.equal(0, gone(tag))
  end)
end)

describe("-v", function()
  after_each(function() assert.same({}, help.sessions(srv)) end)

  it("streams each step's output line by line while it runs",
     function()
    local code, _, events = run([[
steps:
  - { id: slow, exec: [sh, -c, "echo first; sleep 2; printf 'second\nno newline'; echo oops >&2"] }
]], { verbose = true })
    assert.equal(0, code)
    local lines = events_of(events, "step_output", "slow")
    local got = { stdout = {}, stderr = {} }
    for _, e in ipairs(lines) do table.insert(got[e.stream], e.line) end
    -- the last line, without its newline, is shown at the step's end
    assert.same({ stdout = { "first", "second", "no newline" },
                  stderr = { "oops" } }, got)
    local done = events_of(events, "step_end", "slow")[1]
    assert.is_true(lines[1].time < done.time - 1.5,
                   ("first line at %.2f, step end at %.2f"):format(
                     lines[1].time, done.time))
  end)

  it("interleaves concurrent steps by whole lines", function()
    local code, _, events = run([[
sessions: { a: {}, b: {} }
steps:
  - id: a
    session: a
    run: { code: "import sys, time\nfor i in range(40):\n    for c in 'A' * 50: sys.stdout.write(c); sys.stdout.flush()\n    sys.stdout.write('\\n'); time.sleep(0.01)" }
  - id: b
    session: b
    run: { code: "import sys, time\nfor i in range(40):\n    for c in 'B' * 50: sys.stdout.write(c); sys.stdout.flush()\n    sys.stdout.write('\\n'); time.sleep(0.01)" }
]], { verbose = true })
    assert.equal(0, code)
    for _, id in ipairs{ "a", "b" } do
      local lines = events_of(events, "step_output", id)
      assert.equal(40, #lines)
      for _, e in ipairs(lines) do
        assert.equal(id:upper():rep(50), e.line)
      end
    end
  end)

  it("shows lines with the step id through `agentcube run -v`, control "
     .. "characters neutralised", function()
    local path = help.file(dir, [[
steps:
  - { id: talk, exec: [sh, -c, "printf 'hi\\033]0;title\\007\\n'; echo err >&2"] }
]], "talk.yaml")
    local p = io.popen("WORKLOAD_MANAGER_URL=" .. q(srv.url) ..
                       " ROUTER_URL=" .. q(srv.url) .. " " ..
                       q(os.getenv("AGENTCUBE_BIN") or "build/agentcube") ..
                       " run -v " .. q(path) .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("%] talk | hi\\x1b]0;title\\x07\n", out)
    assert.matches("%] talk ! err\n", out)
  end)
end)

-- Ctrl-C on the host binary.
describe("Ctrl-C", function()
  it("cancels a running sleep 60, runs finally steps on its session, "
     .. "deletes the sessions and exits 130", function()
    local marker = dir .. "/finally-ran"
    -- sleep 60 and a bit, a command line no other test runs
    local long = ("60.%04d"):format(port() % 10000)
    local path = help.file(dir, ([[
sessions: { a: {}, b: {} }
steps:
  - { id: long, session: a, exec: "sleep %s" }
  - { id: other, session: b, exec: "sleep 60" }
finally:
  - id: note
    session: a
    exec:
      - sh
      - -c
      - |
        # the server ended the cancelled command: no `sleep 60.N` is left
        # (the control: one started here is seen)
        sleeps() {
          n=0
          for p in /proc/[0-9]*; do
            [ "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" = "sleep %s " ] && n=$((n + 1))
          done
          echo $n
        }
        sleep 0.5
        n=$(sleeps)
        sleep %s & c=$(sleeps); kill $!
        echo "finally on a, $n sleep left (control $c)"
  - id: mark
    needs: note
    lua: |
      local f = assert(io.open("%s", "w"))
      f:write(steps.note.stdout)
      f:close()
]]):format(long, long, long, marker), "long.yaml")
    local out = dir .. "/long.out"
    local rc = dir .. "/long.rc"
    local pidf = dir .. "/long.pid"
    os.execute("(WORKLOAD_MANAGER_URL=" .. q(srv.url) .. " ROUTER_URL=" ..
               q(srv.url) .. " sh -c 'echo $$ > " .. q(pidf) .. "; exec " ..
               q(os.getenv("AGENTCUBE_BIN") or "build/agentcube") ..
               " run " .. q(path) .. "' >" .. q(out) .. " 2>&1; echo $? >" ..
               q(rc) .. ") &")
    -- wait until both steps run
    for _ = 1, 300 do
      local text = help.read(out) or ""
      if select(2, text:gsub("start  ", "")) >= 2 then break end
      os.execute("sleep 0.1")
    end
    os.execute("sleep 0.5")
    assert.equal(2, #help.sessions(srv))
    local t0 = A.now()
    os.execute("kill -INT " .. help.read(pidf):match("%d+"))
    local code
    for _ = 1, 600 do
      code = tonumber(help.read(rc) or "")
      if code then break end
      os.execute("sleep 0.05")
    end
    local took = A.now() - t0
    assert.equal(130, code, help.read(out))
    assert.equal("finally on a, 0 sleep left (control 1)\n",
                 help.read(marker),
                 help.read(out))
    assert.same({}, help.sessions(srv))
    -- generous: the strict number is `make bench`'s
    assert.is_true(took < 15, ("took %.2fs"):format(took))
  end)
end)
