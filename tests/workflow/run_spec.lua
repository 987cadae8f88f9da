-- The scheduler against a real `agentcube serve`: parallel steps overlap
-- (timestamps), one session runs one step at a time, retries with
-- backoff, timeouts, finally after a failure, if/continue_on_error,
-- outputs, keep and attach across two runs, interrupts, and every
-- session deleted at the end.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local server = require "server"
local agentcube = require "agentcube"
local report = require "agentcube.workflow.report"

local srv, dir

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
  local path = help.file(dir, text, name)
  return help.run(srv, path, opts)
end

local function events_of(events, type_)
  local out = {}
  for _, e in ipairs(events) do
    if e.type == type_ then out[#out + 1] = e end
  end
  return out
end

-- Every test ends with no session left on the server.
after_each(function()
  assert.same({}, help.sessions(srv))
end)

describe("parallelism", function()
  local fan = [[
max_parallel: %d
sessions: { a: {}, b: {}, c: {} }
steps:
  - { id: a, session: a, exec: "sleep 1" }
  - { id: b, session: b, exec: "sleep 1" }
  - { id: c, session: c, exec: "sleep 1" }
]]

  it("overlaps steps on different sessions", function()
    local code, rep = run(fan:format(3))
    assert.equal(0, code)
    local a, b, c = help.step(rep, "a"), help.step(rep, "b"),
                    help.step(rep, "c")
    local first_end = math.min(a.started + a.duration,
                               b.started + b.duration,
                               c.started + c.duration)
    for _, s in ipairs{ a, b, c } do
      assert.is_true(s.started < first_end, "no overlap")
      assert.is_true(s.duration >= 0.9)
    end
    assert.is_true(rep.duration < 2.8, "took " .. rep.duration)
  end)

  it("respects max_parallel", function()
    local code, rep = run(fan:format(1))
    assert.equal(0, code)
    assert.is_true(rep.duration >= 2.9, "took " .. rep.duration)
    local a, b = help.step(rep, "a"), help.step(rep, "b")
    assert.is_true(b.started >= a.started + a.duration - 0.05)
  end)

  it("runs the steps of one session one at a time, needs first",
     function()
    local code, rep = run([[
sessions: { one: {}, two: {} }
steps:
  - { id: x, session: one, needs: z, exec: "sleep 0.3" }
  - { id: y, session: one, exec: "sleep 0.3" }
  - { id: z, session: two, exec: "sleep 0.3" }
]])
    assert.equal(0, code)
    local x, y, z = help.step(rep, "x"), help.step(rep, "y"),
                    help.step(rep, "z")
    -- y has no needs: it runs at once with z; x waits for z, and then
    -- for y, which holds session one
    assert.is_true(y.started < z.started + z.duration)
    assert.is_true(x.started >= z.started + z.duration - 0.05)
    assert.is_true(x.started >= y.started + y.duration - 0.05)
  end)
end)

describe("failures", function()
  it("retries with backoff until a step succeeds", function()
    local code, rep, events = run([[
steps:
  - id: flaky
    retry: { limit: 3, backoff: 0.2, factor: 2 }
    exec:
      - sh
      - -c
      - n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n;
        echo try $n; [ $n -ge 3 ]
]])
    assert.equal(0, code)
    local s = help.step(rep, "flaky")
    assert.equal(3, s.attempts)
    assert.equal("try 3\n", s.stdout)
    local retries = events_of(events, "step_retry")
    assert.equal(2, #retries)
    assert.equal(0.2, retries[1].delay)
    assert.equal(0.4, retries[2].delay)
    assert.is_true(s.duration >= 0.6)
  end)

  it("fails after the last retry and skips what depends on it",
     function()
    local code, rep = run([[
steps:
  - { id: bad, retry: 1, exec: [sh, -c, "echo oops >&2; exit 2"] }
  - { id: after, exec: "echo never" }
  - { id: other, needs: bad, exec: "echo never" }
]])
    assert.equal(1, code)
    local bad = help.step(rep, "bad")
    assert.equal("failure", bad.outcome)
    assert.equal(2, bad.attempts)
    assert.equal(2, bad.exit_code)
    assert.equal("oops\n", bad.stderr)
    assert.equal("exit code 2: oops", bad.error)
    assert.equal("skipped", help.step(rep, "after").outcome)
    assert.equal("skipped", help.step(rep, "other").outcome)
  end)

  it("times out a command", function()
    local code, rep = run([[
steps:
  - { id: slow, timeout: 1, exec: "sleep 20" }
]])
    assert.equal(1, code)
    local s = help.step(rep, "slow")
    assert.is_true(s.timed_out)
    assert.matches("^timed out after 1s", s.error)
    assert.is_true(s.duration < 8, "took " .. s.duration)
  end)

  it("times out a lua step", function()
    local code, rep = run([[
steps:
  - id: spin
    timeout: 0.3
    lua: |
      while true do pcall(function() end) end
]])
    assert.equal(1, code)
    local s = help.step(rep, "spin")
    assert.is_true(s.timed_out)
    assert.is_true(s.duration < 2)
  end)

  it("runs finally after a failure, and it sees the failure", function()
    local code, rep = run([[
steps:
  - { id: boom, exec: "false" }
finally:
  - id: cleanup
    exec: [echo, "boom was ${{ steps.boom.outcome }}"]
  - id: only_on_failure
    if: failure()
    exec: "echo yes"
  - id: only_on_success
    if: success()
    exec: "echo no"
]])
    assert.equal(1, code)
    assert.equal("boom was failure\n", help.step(rep, "cleanup").stdout)
    assert.equal("success", help.step(rep, "only_on_failure").outcome)
    assert.equal("skipped", help.step(rep, "only_on_success").outcome)
  end)

  it("lets continue_on_error and allowed_exit_codes pass", function()
    local code, rep = run([[
steps:
  - { id: a, continue_on_error: true, exec: "false" }
  - { id: b, allowed_exit_codes: [0, 3], exec: [sh, -c, "exit 3"] }
  - { id: c, if: "steps.a.outcome == 'failure'", exec: "echo ran" }
  - { id: d, if: "${{ steps.b.exit_code == 0 }}", exec: "echo never" }
]])
    assert.equal(0, code)
    local a = help.step(rep, "a")
    assert.equal("failure", a.outcome)
    assert.equal("success", a.conclusion)
    assert.equal(3, help.step(rep, "b").exit_code)
    assert.equal("success", help.step(rep, "b").outcome)
    assert.equal("ran\n", help.step(rep, "c").stdout)
    assert.equal("skipped", help.step(rep, "d").outcome)
  end)

  it("fails a step whose session cannot be created", function()
    local code, rep = help.run(nil, help.file(dir, [[
steps:
  - { id: a, exec: ls }
finally:
  - { id: f, exec: ls }
]]), { client_options = { workload_manager_url = "http://127.0.0.1:1",
                          router_url = "http://127.0.0.1:1",
                          connect_timeout = 1, max_retries = 0 } })
    assert.equal(1, code)
    assert.matches("^session 'default': ECONNECT", help.step(rep, "a").error)
    assert.equal("failure", help.step(rep, "f").outcome)
  end)
end)

describe("data", function()
  it("passes values between steps and into outputs", function()
    local code, rep = run([[
inputs:
  n: { default: 3, type: number }
env: { GREETING: hello }
sessions: { py: { ttl: 120 } }
steps:
  - id: gen
    run:
      language: python
      code: |
        import json, os
        print(json.dumps({"n": ${{ inputs.n }}, "g": os.environ["GREETING"],
                          "x": os.environ["X"]}))
    env: { X: "${{ inputs.n * 2 }}" }
  - id: use
    exec:
      - echo
      - ${{ fromJSON(steps.gen.stdout).g }} ${{ fromJSON(steps.gen.stdout).x }}
  - id: where
    working_dir: /workspace/sub
    exec: pwd
  - id: files
    list: /workspace
  - id: glue
    lua: |
      session:write_file("from lua", "lua.txt")
      print("n is", inputs.n)
      return { twice = inputs.n * 2, env = env.GREETING }
  - id: check
    exec: [cat, lua.txt]
outputs:
  n: ${{ fromJSON(steps.gen.stdout).n }}
  message: ${{ trim(steps.use.stdout) }}
  twice: ${{ steps.glue.outputs.twice }}
  session: ${{ sessions.py.id }}
  text: "n=${{ inputs.n }}"
]], { set = { n = "4" } })
    assert.equal(0, code)
    assert.same({ n = 4, message = "hello 8", twice = 8, text = "n=4",
                  session = help.step(rep, "gen").session_id },
                rep.outputs)
    assert.equal("/workspace/sub\n", help.step(rep, "where").stdout)
    assert.equal("n is\t4\n", help.step(rep, "glue").stdout)
    assert.equal("from lua", help.step(rep, "check").stdout)
    local names = {}
    for _, f in ipairs(help.step(rep, "files").files) do
      names[f.name] = true
    end
    assert.is_true(names["sub"])        -- made by working_dir
    assert.equal(4, rep.inputs.n)
    assert.is_string(rep.sessions.py.id)
    assert.is_true(rep.sessions.py.deleted)
  end)

  it("never creates a session no step uses", function()
    local code, rep, events = run([[
sessions: { used: {}, idle: {} }
steps:
  - { session: used, exec: "true" }
]])
    assert.equal(0, code)
    assert.is_false(rep.sessions.idle.created)
    assert.is_nil(rep.sessions.idle.id)
    assert.equal(1, #events_of(events, "session_created"))
  end)

  it("runs a lua step that names no session among several", function()
    local code, rep, events = run([[
sessions: { a: {}, b: {} }
steps:
  - { id: a, session: a, exec: "echo 20" }
  - { id: sum, needs: a, lua: "return tonumber(steps.a.stdout) + 1" }
  - { id: b, session: b, needs: sum, exec: "echo ${{ steps.sum.result }}" }
  - { id: touch, needs: b, lua: "return session.session_id",
      continue_on_error: true }
]])
    assert.equal(0, code)
    assert.equal(21, help.step(rep, "sum").result)
    assert.equal("21\n", help.step(rep, "b").stdout)
    assert.equal("failure", help.step(rep, "touch").outcome)
    assert.matches("step 'touch' uses 'session' but names none",
                   help.step(rep, "touch").error, 1, true)
    assert.equal(2, #events_of(events, "session_created"))
  end)

  it("starts the step after a lua step at once, not after a poll",
     function()
    local run_mod = require "agentcube.workflow.run"
    local poll = run_mod.POLL_MS
    run_mod.POLL_MS = 3000     -- a sleep on the path would cost 3 s a pair
    local code, rep = run([[
steps:
  - { id: l1, lua: "return 1" }
  - { id: e1, exec: "true" }
  - { id: l2, lua: "return 2" }
  - { id: e2, exec: "true" }
  - { id: l3, lua: "return 3" }
  - { id: e3, exec: "true" }
]])
    run_mod.POLL_MS = poll
    assert.equal(0, code)
    for i = 1, 3 do
      local l, e = help.step(rep, "l" .. i), help.step(rep, "e" .. i)
      -- generous: the machine may be loaded, but never 3 s idle
      assert.is_true(e.started - (l.started + l.duration) < 1.5,
                     ("gap after l%d: %.3f s"):format(i, e.started -
                                                      (l.started + l.duration)))
    end
  end)

  it("reports a failed lua step by the user's position, frames apart",
     function()
    local code, rep, events = run([[
steps:
  - id: boom
    lua: |
      local function inner(t) return t.x end
      local v = inner(nil)
      return v
]], nil, "boom.yaml")
    assert.equal(1, code)
    local r = help.step(rep, "boom")
    assert.equal(dir .. "/boom.yaml:4: attempt to index a nil value "
                 .. "(local 't')", r.error)
    local ends = events_of(events, "step_end")
    assert.equal(r.error, ends[1].error)
    local tb = ends[1].step.traceback
    assert.matches("boom.yaml:4: in ", tb, 1, true)
    assert.matches("boom.yaml:5: in ", tb, 1, true)
    assert.is_nil(tb:find("agentcube/workflow", 1, true))
    -- the plain view shows the frames under -v only
    local plain = report.plain(io.tmpfile(), { verbose = false })
    local f = io.tmpfile()
    plain.out = f
    for _, ev in ipairs(events) do plain:event(ev) end
    f:seek("set")
    local text = f:read("a")
    assert.is_nil(text:find("boom.yaml:5", 1, true))
    assert.is_nil(text:find("traceback", 1, true))
    f = io.tmpfile()
    plain = report.plain(f, { verbose = true })
    for _, ev in ipairs(events) do plain:event(ev) end
    f:seek("set")
    assert.matches("at [^\n]*boom.yaml:5: in", f:read("a"))
  end)

  it("keeps a substituted value one argument of an exec line", function()
    local code, rep = run([[
inputs:
  x: { default: "--flag extra" }
  q: { default: "it's \"quoted\" $HOME" }
steps:
  - id: a
    exec: "printf '%s|' ${{ inputs.x }} \"pre ${{ inputs.q }}\" ${{ inputs.q }}x end"
]])
    assert.equal(0, code)
    assert.equal("--flag extra|pre it's \"quoted\" $HOME|it's \"quoted\" "
                 .. "$HOMEx|end|", help.step(rep, "a").stdout)
  end)

  it("counts the bytes of uploads and downloads", function()
    local big = dir .. "/big.bin"
    os.execute("head -c 3000000 /dev/urandom > " .. help.q(big))
    local code, rep = run(([[
steps:
  - { id: up, upload: { from: "%s", to: big.bin } }
  - { id: down, download: { from: big.bin, to: "%s/back.bin" } }
]]):format(big, dir))
    assert.equal(0, code)
    assert.equal(3000000, help.step(rep, "up").bytes)
    assert.equal(3000000, help.step(rep, "down").bytes)
    local json = require("cjson").decode(report.encode(report.build(
      select(2, require("agentcube.workflow.run").execute(
        require("agentcube.workflow").load(help.file(dir, ([[
steps:
  - { id: up, upload: { from: "%s", to: big.bin } }
]]):format(big), "one.yaml")), { inputs = {},
        client_options = help.client(srv) })))))
    assert.equal(3000000, json.steps[1].bytes)
  end)

  it("reports a failing expression at its own position", function()
    local code, rep = run([[
steps:
  - id: a
    exec: echo not json
  - id: b
    needs: a
    exec: [echo, "x", "${{ fromJSON(steps.a.stdout).x }}"]
]], nil, "pos.yaml")
    assert.equal(1, code)
    assert.matches("pos.yaml:6:28: '${{ fromJSON(steps.a.stdout).x }}': "
                   .. "fromJSON", help.step(rep, "b").error, 1, true)
  end)

  it("fails a step whose working_dir or ready expression fails, at its "
     .. "position, and stops a step that never started", function()
    local code, rep = run([[
steps:
  - id: a
    exec: echo not json
  - id: wd
    needs: a
    exec: pwd
    working_dir: "${{ fromJSON(steps.a.stdout).dir }}"
    continue_on_error: true
  - id: srv
    needs: a
    exec: sleep 30
    background: true
    ready: { output: "${{ fromJSON(steps.a.stdout).banner }}" }
    continue_on_error: true
  - id: never
    if: false
    exec: sleep 30
    background: true
  - { id: halt, stop: never, if: always() }
  - id: w
    write: { path: /workspace/t.txt, content: x }
    timeout: 30
]], nil, "late.yaml")
    assert.equal(0, code)
    local wd, bg = help.step(rep, "wd"), help.step(rep, "srv")
    assert.equal("failure", wd.outcome)
    assert.matches("late.yaml:7:23: '${{ fromJSON(steps.a.stdout).dir }}': "
                   .. "fromJSON", wd.error, 1, true)
    assert.equal("failure", bg.outcome)
    assert.matches("late.yaml:13:27: '${{ fromJSON(steps.a.stdout).banner "
                   .. "}}': fromJSON", bg.error, 1, true)
    assert.equal("skipped", help.step(rep, "never").outcome)
    assert.equal("success", help.step(rep, "halt").outcome)
    assert.equal("success", help.step(rep, "w").outcome)
  end)

  it("fails the run when an output cannot be computed", function()
    local code, rep = run([[
steps:
  - { id: a, exec: "echo not json" }
outputs:
  x: ${{ fromJSON(steps.a.stdout).x }}
]])
    assert.equal(1, code)
    assert.matches(":4:6: output 'x': .*fromJSON", rep.errors[1])
  end)
end)

describe("sessions across runs", function()
  it("keeps a session in one run and attaches to it in the next",
     function()
    local code, rep = run([[
sessions:
  s: { keep: true }
steps:
  - write: { path: /tmp/value.txt, content: "42" }
outputs:
  id: ${{ sessions.s.id }}
]], nil, "first.yaml")
    assert.equal(0, code)
    local id = rep.outputs.id
    assert.is_true(rep.sessions.s.kept)
    assert.same({ id }, help.sessions(srv))
    code, rep = run([[
inputs:
  id: { required: true }
sessions:
  s: { id: "${{ inputs.id }}", keep: false }
steps:
  - id: read
    run: { language: python, code: "print(open('/tmp/value.txt').read())" }
]], { set = { id = id } }, "second.yaml")
    assert.equal(0, code)
    assert.equal("42\n", help.step(rep, "read").stdout)
    assert.equal(id, help.step(rep, "read").session_id)
    assert.is_true(rep.sessions.s.attached)
  end)

  it("leaves an attached session alone unless keep: false", function()
    local ci = agentcube.CodeInterpreterClient(help.client(srv))
    local code = run(([[
sessions:
  s: { id: %s }
steps:
  - exec: "true"
]]):format(ci.session_id))
    assert.equal(0, code)
    assert.same({ ci.session_id }, help.sessions(srv))
    ci:stop()
  end)

  it("keeps every session with the keep option", function()
    local code, rep = run("steps:\n  - exec: 'true'\n", { keep = true })
    assert.equal(0, code)
    local id = rep.sessions.default.id
    assert.same({ id }, help.sessions(srv))
    srv:delete(id)
  end)
end)

describe("interrupts", function()
  it("stop the run, cancel running steps, still run finally, " ..
     "delete every session, exit 130", function()
    local A = help.cmodule("agentcube.async")
    local t0 = A.now()
    local code, rep, events = run([[
sessions: { a: {}, b: { keep: true } }
steps:
  - { id: long, session: a, exec: "sleep 60", timeout: 120 }
  - { id: other, session: b, exec: "sleep 60", timeout: 120 }
  - { id: later, session: b, exec: "echo never" }
finally:
  - { id: note, session: b, exec: "echo finally ran" }
]], { interrupted = function() return A.now() - t0 > 1 end, grace = 1 })
    assert.equal(130, code)
    assert.is_true(A.now() - t0 < 20, "took " .. (A.now() - t0))
    assert.equal("cancelled", help.step(rep, "long").outcome)
    assert.equal("cancelled", help.step(rep, "later").outcome)
    -- the interrupt cancelled b's running step at once (agentcube.async
    -- aborts a running job): finally can use b
    assert.equal("success", help.step(rep, "note").outcome)
    assert.equal("interrupted", rep.status)
    assert.equal(1, #events_of(events, "interrupt"))
    assert.is_true(rep.sessions.a.deleted)
    assert.is_true(rep.sessions.b.deleted)  -- kept, but interrupted
  end)

  it("still runs finally steps on free sessions", function()
    local A = help.cmodule("agentcube.async")
    local t0 = A.now()
    local code, rep = run([[
sessions: { a: {}, b: {} }
steps:
  - { id: long, session: a, exec: "sleep 60", timeout: 120 }
  - { id: quick, session: b, exec: "true" }
finally:
  - { id: note, session: b, exec: "echo finally ran" }
]], { interrupted = function() return A.now() - t0 > 1 end, grace = 1,
      finally_timeout = 10 })
    assert.equal(130, code)
    assert.equal("success", help.step(rep, "quick").outcome)
    assert.equal("finally ran\n", help.step(rep, "note").stdout)
  end)
end)

describe("the JSON report", function()
  it("holds steps, exit codes, durations, outputs and session ids",
     function()
    local code, rep = run([[
name: json
steps:
  - { id: a, exec: "echo hi" }
  - { id: b, exec: [sh, -c, "exit 5"], continue_on_error: true }
finally:
  - { id: c, exec: "true" }
outputs:
  out: ${{ steps.a.stdout }}
]])
    assert.equal(0, code)
    local decoded = require("cjson").decode(report.encode(rep))
    assert.equal("json", decoded.workflow)
    assert.equal(0, decoded.exit_code)
    assert.equal("success", decoded.status)
    assert.equal("hi\n", decoded.outputs.out)
    assert.equal(2, #decoded.steps)
    assert.equal(1, #decoded.finally)
    assert.equal(5, decoded.steps[2].exit_code)
    assert.equal("failure", decoded.steps[2].outcome)
    assert.equal("success", decoded.steps[2].conclusion)
    assert.is_number(decoded.steps[1].duration)
    assert.is_string(decoded.steps[1].session_id)
    assert.equal(decoded.steps[1].session_id,
                 decoded.sessions.default.id)
  end)

  it("is printed by run with json = true", function()
    local out = dir .. "/out.json"
    local f = io.open(out, "w")
    local code = help.run(srv, help.file(dir, "steps:\n  - exec: 'true'\n"),
                          { json = true, output = f, reporter = false })
    f:close()
    assert.equal(0, code)
    local decoded = require("cjson").decode(help.read(out))
    assert.equal(0, decoded.exit_code)
    assert.equal("success", decoded.steps[1].outcome)
  end)
end)
