-- Validation: every file of tests/workflow/broken/ is refused with the
-- exact "FILE:LINE:COL: message" its first line announces, before any
-- session exists; valid workflows normalize as documented.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local workflow = require "agentcube.workflow"

local broken = help.here .. "/broken"

local function list(dir, pattern)
  local p = io.popen("ls " .. help.q(dir))
  local out = {}
  for name in p:lines() do
    if name:match(pattern) then out[#out + 1] = name end
  end
  p:close()
  return out
end

describe("the broken corpus", function()
  local files = list(broken, "%.yaml$")

  it("has files", function()
    assert.is_true(#files >= 30)
  end)

  for _, name in ipairs(files) do
    it(name, function()
      local path = broken .. "/" .. name
      local expect = help.read(path):match("^# expect: ([^\n]*)")
      assert.is_string(expect, "no '# expect:' line in " .. name)
      local ok, msg = workflow.check(path)
      assert.is_nil(ok)
      assert.equal(path .. ":" .. expect, msg)
    end)
  end

  it("run refuses them with exit code 2 and creates no session",
     function()
    -- no client options and no server: creating a session would fail
    -- with a connection error, not with exit code 2
    for _, name in ipairs(files) do
      local code, rep = help.run(nil, broken .. "/" .. name, {
        client_options = { workload_manager_url = "http://127.0.0.1:1",
                           router_url = "http://127.0.0.1:1" } })
      assert.equal(2, code, name)
      assert.equal("invalid", rep.status)
      assert.matches("^" .. (broken .. "/" .. name):gsub("%p", "%%%0") ..
                     ":%d+:%d+: ", rep.error)
    end
  end)
end)

describe("valid workflows", function()
  local dir
  setup(function() dir = help.tmpdir() end)
  teardown(function() help.rm(dir) end)

  local function load(text)
    local wf, err = workflow.load(help.file(dir, text))
    assert(wf, err)
    return wf
  end

  it("give a step without session the implicit default session",
     function()
    local wf = load("steps:\n  - exec: ls\n  - lua: return 1\n")
    assert.equal("default", wf.steps[1].session)
    assert.equal("default", wf.steps[2].session)
    assert.is_true(wf.sessions.byname.default.implicit)
    assert.equal("step-1", wf.steps[1].id)
  end)

  it("give it the only declared session", function()
    local wf = load("sessions:\n  py: {ttl: 60}\nsteps:\n  - exec: ls\n")
    assert.equal("py", wf.steps[1].session)
    assert.equal(60, wf.sessions.byname.py.ttl)
  end)

  it("chain the steps of a session and keep needs", function()
    local wf = load([[
sessions: { a: {}, b: {} }
steps:
  - { id: x, session: a, exec: ls }
  - { id: y, session: b, exec: ls }
  - { id: z, session: a, needs: y, exec: ls }
]])
    assert.equal(wf.byid.x, wf.prev[wf.byid.z])
    assert.same({ "y" }, wf.byid.z.needs)
    assert.equal(4, wf.max_parallel)
  end)

  it("normalize step kinds and common fields", function()
    local wf = load([[
max_parallel: 2
steps:
  - id: a
    exec: [echo, 1]
    retry: 2
    timeout: 1.5
    env: { A: 1 }
    allowed_exit_codes: [0, 3]
    continue_on_error: true
  - { id: b, run: "echo hi" }
  - { id: c, list: }
  - id: d
    retry: { limit: 3, backoff: 0.1, factor: 3 }
    write: { path: p, content: 42 }
]])
    local a, b, c, d = wf.byid.a, wf.byid.b, wf.byid.c, wf.byid.d
    assert.same({ "echo", "1" }, a.spec.command)
    assert.same({ limit = 2, backoff = 1, factor = 2 }, a.retry)
    assert.equal(1.5, a.timeout)
    assert.same({ A = 1 }, a.env)
    assert.is_true(a.allowed[3])
    assert.is_true(a.continue_on_error)
    assert.same({ language = "bash", code = "echo hi" }, b.spec)
    assert.same({ path = "." }, c.spec)
    assert.same({ limit = 3, backoff = 0.1, factor = 3 }, d.retry)
    assert.equal("42", d.spec.content)
    assert.equal(2, wf.max_parallel)
  end)

  it("accept a Lua table with a function step", function()
    local path = help.file(dir, [[
return {
  name = "t",
  steps = {
    { id = "a", lua = function(ctx) return 1 end },
    { id = "b", needs = "a", exec = { "echo", "x" } },
  },
}
]], "t.lua")
    local wf = assert(workflow.load(path))
    assert.equal("function", type(wf.byid.a.spec.fn))
    assert.equal("t", wf.name)
  end)

  it("locate Lua-table problems by the step's id", function()
    local path = help.file(dir, [[
return {
  steps = {
    { id = "a", exec = "ls" },
    { id = "b",
      exce = "ls" },
  },
}
]], "bad.lua")
    local ok, err = workflow.check(path)
    assert.is_nil(ok)
    assert.equal(path .. ":4:12: unknown step kind 'exce' in step 'b' "
                 .. "(did you mean 'exec'?)", err)
  end)

  it("check a plain Lua script for syntax only", function()
    local path = help.file(dir, "local agentcube = require 'agentcube'\n"
                           .. "print(agentcube.VERSION)\n", "s.lua")
    assert.same({ true, "plain Lua script: syntax ok" },
                { workflow.check(path) })
    local bad = help.file(dir, "local x = = 1\n", "bad2.lua")
    local ok, err = workflow.check(bad)
    assert.is_nil(ok)
    assert.matches("^" .. bad:gsub("%p", "%%%0") .. ":1:1: ", err)
  end)

  it("report several problems sorted by position", function()
    local path = help.file(dir, "steps:\n  - { id: a, exec: ls, bogus: 1 }\n"
                           .. "  - { id: a, exec: ls }\nnmae: x\n")
    local _, err = workflow.check(path)
    assert.equal(path .. ":2:24: unknown key 'bogus' in step 'a'\n" ..
                 path .. ":3:11: duplicate step id 'a' (first at 2:11)\n" ..
                 path .. ":4:1: unknown key 'nmae' in the workflow (did "
                 .. "you mean 'name'?)", err)
  end)
end)

describe("check of an untrusted Lua file", function()
  local dir
  local load_mod = require "agentcube.workflow.load"
  setup(function() dir = help.tmpdir() end)
  teardown(function() help.rm(dir) end)

  local function check(code)
    return workflow.check(help.file(dir, code, "w.lua"))
  end

  it("stops endless loops, also behind pcall and in coroutines", function()
    for _, code in ipairs{
      "while true do end",
      "while true do pcall(function() while true do end end) end",
      "coroutine.wrap(function() while true do end end)()",
      "local co = coroutine.create(function() while true do end end)\n"
        .. "while true do coroutine.resume(co) end",
    } do
      local t0 = os.clock()
      local ok, err = check(code)
      assert.is_nil(ok, code)
      assert.matches("w.lua:1:1: stopped: building the workflow took more",
                     err, 1, true)
      assert.is_true(os.clock() - t0 < 30, code)
    end
  end)

  it("bounds memory, also through the string metatable", function()
    for _, code in ipairs{
      "local s = string.rep('x', 2^30)",
      "local s = ('x'):rep(2^30)",
      "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end",
    } do
      local kb = collectgarbage("count")
      local ok, err = check(code)
      assert.is_nil(ok, code)
      assert.matches("limit", err:gsub("more memory than check allows",
                                        "limit"), 1, true)
      collectgarbage()
      assert.is_true(collectgarbage("count") - kb < 64 * 1024, code)
    end
  end)

  it("leaves the host's libraries and string metatable alone", function()
    local upper, insert, floor = string.upper, table.insert, math.floor
    local index = getmetatable("").__index
    local ok = check([[
string.upper = nil
table.insert = nil
math.floor = nil
utf8.char = nil
coroutine.wrap = nil
local mt = getmetatable("")
if mt then mt.__index = {} end
string.format = function() return "poisoned" end
return { steps = { { exec = ("ls"):rep(1) } } }
]])
    assert.is_true(ok)
    assert.equal(upper, string.upper)
    assert.equal(insert, table.insert)
    assert.equal(floor, math.floor)
    assert.is_function(utf8.char)
    assert.is_function(coroutine.wrap)
    assert.equal(index, getmetatable("").__index)
    assert.equal("A", ("a"):upper())
    assert.equal("1", string.format("%d", 1))
  end)

  it("still checks ordinary workflow tables (positive control)", function()
    local ok, err = check([[
local names = {}
for i = 1, 3 do names[i] = ("s%d"):format(i) .. string.rep("x", 2) end
local steps = {}
for _, n in ipairs(names) do steps[#steps + 1] = { id = n, exec = "ls" } end
local ok = pcall(error, "fine")
return { steps = steps }
]])
    assert.is_true(ok, err)
    assert.is_true(load_mod.CHECK_SECONDS > 0)
  end)
end)

describe("every problem at once", function()
  local dir
  setup(function() dir = help.tmpdir() end)
  teardown(function() help.rm(dir) end)

  it("reports duplicates, unknown needs and every cycle, in file order",
     function()
    local path = help.file(dir, [[
steps:
  - { id: c, needs: c, exec: ls }
  - { id: d, needs: d, exec: ls }
  - { id: a, exec: ls }
  - { id: a, needs: [zz], exec: ls }
  - { id: e, needs: f, exec: ls }
  - { id: f, needs: e, exec: ls }
]])
    local _, err = workflow.check(path)
    assert.equal(table.concat({
      path .. ":2:21: cyclic needs: c -> c",
      path .. ":3:21: cyclic needs: d -> d",
      path .. ":5:11: duplicate step id 'a' (first at 4:11)",
      path .. ":5:22: step 'a' needs unknown step 'zz' (did you mean 'a'?)",
      path .. ":6:21: cyclic needs: e -> f -> e",
    }, "\n"), err)
  end)
end)

describe("expressions at check time", function()
  local dir
  setup(function() dir = help.tmpdir() end)
  teardown(function() help.rm(dir) end)

  it("refuse unknown functions, names and fields at their own position",
     function()
    local path = help.file(dir, [[
steps:
  - id: a
    exec: echo a
  - id: b
    needs: a
    exec: "echo ${{ fromJson(steps.a.stdout) }} ${{ os.getenv('x') }}"
    if: steps.a.stdut == '' and success()
  - id: c
    needs: b
    run:
      code: |
        print("${{ string.rep('a', 2) }} ${{ workflow.dirr }}")
outputs:
  x: ${{ sessions.default.idd }}
  y: ${{ success() }}
]])
    local _, err = workflow.check(path)
    assert.equal(table.concat({
      path .. ":6:21: unknown name 'fromJson' (did you mean 'fromJSON'?) "
        .. "in '${{ fromJson(steps.a.stdout) }}'",
      path .. ":6:53: unknown name 'os' in '${{ os.getenv('x') }}'",
      path .. ":7:17: unknown field 'stdut' of steps.a (did you mean "
        .. "'stdout'?) in 'steps.a.stdut == '' and success()'",
      path .. ":12:27: unknown function 'string.rep' in "
        .. "'${{ string.rep('a', 2) }}'",
      path .. ":12:55: unknown field 'dirr' of workflow (did you mean "
        .. "'dir'?) in '${{ workflow.dirr }}'",
      path .. ":14:27: unknown field 'idd' of sessions.default (did you "
        .. "mean 'id'?) in '${{ sessions.default.idd }}'",
      path .. ":15:10: unknown name 'success' in '${{ success() }}'",
    }, "\n"), err)
  end)

  it("accept what the language offers", function()
    local path = help.file(dir, [[
inputs: { n: 2 }
steps:
  - id: a
    exec: "echo ${{ format('{0}', math.floor(inputs.n / 2)) }}"
  - id: b
    needs: a
    if: steps["a"].outcome == 'success' and always()
    exec: [echo, "${{ toJSON({ n = inputs.n, ok = true }) }}",
           "${{ ('x'):upper() .. string.format('%d', 1) }}"]
outputs:
  id: ${{ sessions.default.id }}
  dir: ${{ workflow.dir }}
]])
    assert.same({ true }, { workflow.check(path) })
  end)
end)

describe("inputs", function()
  local dir
  setup(function() dir = help.tmpdir() end)
  teardown(function() help.rm(dir) end)

  it("take defaults, --set values and convert by type", function()
    local wf = assert(workflow.load(help.file(dir, [[
inputs:
  n: { default: 2, type: number }
  flag: { type: boolean, default: false }
  s: hello
  dir: { default: "${{ workflow.dir }}/x" }
  opt: {}
steps:
  - exec: ls
]])))
    local v = assert(workflow.inputs(wf, { n = "5", flag = "yes" }))
    assert.equal(5, v.n)
    assert.is_true(v.flag)
    assert.equal("hello", v.s)
    assert.equal(dir .. "/x", v.dir)
    assert.equal(require("agentcube.workflow.expr").null, v.opt)
    local ok, err = workflow.inputs(wf, { nope = "1" })
    assert.is_nil(ok)
    assert.matches("unknown input 'nope'", err)
    ok, err = workflow.inputs(wf, { n = "x" })
    assert.is_nil(ok)
    assert.matches("input 'n' must be a number", err)
  end)

  it("check typed defaults before anything runs", function()
    local path = help.file(dir, [[
inputs:
  n: { default: "abc", type: number }
  b: { default: 3, type: boolean }
  ok: { default: "3", type: number }
  later: { default: "${{ env.HOME }}", type: number }
steps:
  - exec: ls
]])
    local _, err = workflow.check(path)
    assert.equal(path .. ":2:17: default of input 'n' must be a number, "
                 .. "not 'abc'\n" .. path .. ":3:17: default of input 'b' "
                 .. "must be a boolean (true/false/yes/no/1/0), not 3", err)
  end)

  it("refuse a missing required input", function()
    local path = help.file(dir, "inputs:\n  id: { required: true }\n"
                           .. "steps:\n  - exec: ls\n")
    local wf = assert(workflow.load(path))
    local ok, err = workflow.inputs(wf, {})
    assert.is_nil(ok)
    assert.equal(path .. ":2:3: input 'id' is required: give it with --set "
                 .. "id=VALUE", err)
  end)
end)
