-- Run-time failures a workflow author causes, on workflows of lua steps
-- only: these run in the engine and need no session, so no server. The
-- client points at a closed port: a session created by mistake would fail
-- with a connection error, not with the failure asserted.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"

local dir
setup(function() dir = help.tmpdir() end)
teardown(function() help.rm(dir) end)

local NOWHERE = { workload_manager_url = "http://127.0.0.1:1",
                  router_url = "http://127.0.0.1:1", max_retries = 0,
                  connect_timeout = 1 }

local function run(text, opts)
  local o = { client_options = NOWHERE }
  for k, v in pairs(opts or {}) do o[k] = v end
  local path = help.file(dir, text)
  local code, rep, events = help.run(nil, path, o)
  return code, rep, path, events
end

describe("a lua-step workflow", function()
  it("runs without a session (the control of this file)", function()
    local code, rep = run("steps:\n  - { id: a, lua: return 6 * 7 }\n")
    assert.equal(0, code)
    assert.equal(42, help.step(rep, "a").result)
  end)

  it("fails a step whose 'if' raises, at the 'if', and goes on",
     function()
    local code, rep, path = run([[
steps:
  - id: a
    if: fromJSON('{') ~= nil
    lua: return 1
  - { id: b, lua: return 2, needs: a, if: always() }
]])
    assert.equal(1, code)
    local a = help.step(rep, "a")
    assert.equal("failure", a.outcome)
    assert.equal(path .. ":3:9: in 'if': '${{ fromJSON('{') ~= nil }}': "
                 .. "fromJSON: Expected object key string but found T_END "
                 .. "at character 2", a.error)
    assert.equal(2, help.step(rep, "b").result)
  end)

  it("fails a step whose timeout expression is no positive number",
     function()
    local code, rep = run([[
inputs: { t: { default: "-1" } }
steps:
  - id: a
    timeout: ${{ inputs.t }}
    lua: return 1
]])
    assert.equal(1, code)
    assert.matches("timeout must be a positive number of seconds$",
                   help.step(rep, "a").error)
    -- control: a positive one runs
    code = run([[
inputs: { t: { default: "5" } }
steps:
  - { id: a, timeout: "${{ inputs.t }}", lua: return 1 }
]])
    assert.equal(0, code)
  end)

  it("cannot change inputs or results, told at its own line", function()
    local code, rep, path = run([[
inputs: { n: 1 }
steps:
  - id: a
    lua: |
      local before = inputs.n
      inputs.n = 2
  - id: b
    if: always()
    lua: |
      steps.a = { outcome = "success" }
  - { id: c, if: always(), lua: "return inputs.n + #steps.a.id" }
]])
    assert.equal(1, code)
    assert.equal(path .. ":6: input values cannot be changed",
                 help.step(rep, "a").error)
    assert.equal(path .. ":10: step values cannot be changed",
                 help.step(rep, "b").error)
    -- control: reading them works
    assert.equal(2, help.step(rep, "c").result)
  end)

  it("fails a step that yields, not the run", function()
    local code, rep = run([[
steps:
  - { id: y, lua: "coroutine.yield(1) return 2" }
  - id: own
    if: always()
    lua: |
      local co = coroutine.wrap(function() coroutine.yield(5) end)
      return co()
]])
    assert.equal(1, code)
    assert.equal("a lua step cannot yield (coroutine.yield outside a "
                 .. "coroutine of its own)", help.step(rep, "y").error)
    -- control: a coroutine of the step's own yields as usual
    assert.equal(5, help.step(rep, "own").result)
  end)

  it("fails a step whose session's ttl expression is no positive integer",
     function()
    local code, rep = run([[
inputs: { t: { default: soon } }
sessions: { a: { ttl: "${{ inputs.t }}" } }
steps:
  - { id: s, lua: return session.id }
]])
    assert.equal(1, code)
    assert.equal("session 'a': ttl must be a positive integer",
                 help.step(rep, "s").error)
  end)

  it("reads the process environment in expressions", function()
    local code, rep = run([[
steps:
  - { id: has, if: "env.PATH ~= nil", lua: return 1 }
  - { id: hasnt, if: "env.AGENTCUBE_NO_SUCH_VARIABLE ~= nil", lua: return 1 }
]])
    assert.equal(0, code)
    assert.equal("success", help.step(rep, "has").outcome)
    assert.equal("skipped", help.step(rep, "hasnt").outcome)
  end)

  it("goes on when the reporter raises, and says so once", function()
    local calls = 0
    local reporter = { event = function()
      calls = calls + 1
      error("reporter is broken")
    end }
    local log = dir .. "/stderr.txt"
    local f = assert(io.open(log, "w"))
    local code, rep = run("steps:\n  - { id: a, lua: return 1 }\n"
                          .. "  - { id: b, lua: return 2 }\n",
                          { reporter = reporter, errors = f })
    f:close()
    assert.equal(0, code)
    assert.equal(2, help.step(rep, "b").result)
    assert.is_true(calls > 2)
    local said = help.read(log)
    local _, n = said:gsub("agentcube: reporter error: ", "")
    assert.equal(1, n, said)
    assert.matches("reporter is broken", said, 1, true)
  end)
end)

describe("inputs at run time", function()
  it("refuses a default whose expression fails, before anything runs",
     function()
    local code, rep, path = run([[
inputs:
  x: { default: "${{ fromJSON('[') }}" }
steps:
  - { id: a, lua: return 1 }
]])
    assert.equal(2, code)
    assert.equal("invalid", rep.status)
    assert.equal(path .. ":2:3: default of input 'x': '${{ fromJSON('[') "
                 .. "}}': fromJSON: Expected value but found T_END at "
                 .. "character 2", rep.error)
  end)

  it("refuses a --set value a boolean input cannot take", function()
    local text = "inputs:\n  b: { type: boolean }\nsteps:\n"
                 .. "  - { id: a, lua: return 1 }\n"
    local code, rep, path = run(text, { set = { b = "maybe" } })
    assert.equal(2, code)
    assert.equal(path .. ": input 'b' must be true or false, not 'maybe'",
                 rep.error)
    code = run(text, { set = { b = "off" } })
    assert.equal(0, code)
  end)

  it("gives a string input text, whatever its default", function()
    local workflow = require "agentcube.workflow"
    local wf = assert(workflow.load(help.file(dir, [[
inputs:
  s: { type: string, default: 5 }
  home: { default: "${{ env.HOME }}" }
steps:
  - { id: a, lua: return 1 }
]])))
    local v = assert(workflow.inputs(wf, {}))
    assert.equal("5", v.s)
    assert.equal(os.getenv("HOME"), v.home)
  end)
end)
