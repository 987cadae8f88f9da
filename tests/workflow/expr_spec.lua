-- The ${{ }} language: typed whole-string values, interpolation, the
-- sandbox (unknown names, no assignment, no escape to os/io/require, an
-- instruction limit) and the GitHub-style helpers.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
require "wfhelp"
local expr = require "agentcube.workflow.expr"

local function env(extra)
  local ctx = {
    inputs = expr.strict({ n = 3, name = "world", list = { "a", "b" } },
                         "input"),
    steps = expr.strict({ a = { stdout = '{"x": 5, "y": [1, 2]}\n',
                                exit_code = 0 } }, "step"),
    env = { HOME = "/home/u" },
  }
  for k, v in pairs(extra or {}) do ctx[k] = v end
  return expr.env(ctx)
end

local function expand(s, e)
  local ok, v = expr.expand(s, e or env())
  assert(ok, v)
  return v
end

local function fails(s)
  local ok, v = expr.expand(s, env())
  assert.is_false(ok)
  return v
end

describe("expansion", function()
  it("keeps the type of a whole-string expression", function()
    assert.equal(3, expand("${{ inputs.n }}"))
    assert.equal(4, expand("  ${{ inputs.n + 1 }}  "))
    assert.is_true(expand("${{ inputs.n > 2 }}"))
    assert.same({ "a", "b" }, expand("${{ inputs.list }}"))
  end)

  -- found by fuzz_expr: blank text and then two expressions raised
  -- "attempt to index a nil value" past expand
  it("interpolates two adjacent expressions after blank text", function()
    assert.equal("  33", expand("  ${{ inputs.n }}${{ inputs.n }}"))
    assert.equal("33  ", expand("${{ inputs.n }}${{ inputs.n }}  "))
  end)

  -- found by fuzz_expr: a table holding functions raised "Cannot
  -- serialise function" past expand
  it("fails with a message for a value that has no text", function()
    local ok, msg = expr.expand("x ${{ string }} y", env())
    assert.is_false(ok)
    assert.matches("'string' has no text form", msg, 1, true)
    -- control: a plain table is JSON
    assert.equal('x [1,2] y', expand("x ${{ fromJSON('[1,2]') }} y"))
  end)

  it("keeps the type with blanks on one side only", function()
    assert.equal(3, expand("${{ inputs.n }}  "))
    assert.equal(3, expand("  ${{ inputs.n }}"))
    -- control: other text around it makes it text
    assert.equal("3.", expand("${{ inputs.n }}."))
  end)

  it("interpolates embedded expressions as text", function()
    assert.equal("hello world!", expand("hello ${{ inputs.name }}!"))
    assert.equal("3 and 3.5", expand("${{ inputs.n }} and ${{ 3.5 }}"))
    assert.equal("n=", expand("n=${{ nil }}"))
    assert.equal("v=4", expand("v=${{ 2.0 * 2 }}"))
    assert.equal('t=["a","b"]', expand("t=${{ inputs.list }}"))
  end)

  it("leaves strings without ${{ alone", function()
    assert.equal("a } b {{ c $", expand("a } b {{ c $"))
  end)

  it("reads step results through fromJSON", function()
    assert.equal(5, expand("${{ fromJSON(steps.a.stdout).x }}"))
    assert.equal(2, expand("${{ fromJSON(steps.a.stdout).y[2] }}"))
  end)

  it("expands deep tables and keeps keys", function()
    local ok, v = expr.expand_deep({ cmd = { "echo", "${{ inputs.n }}" },
                                     k = "${{ inputs.name }}" }, env())
    assert.is_true(ok)
    assert.same({ cmd = { "echo", 3 }, k = "world" }, v)
  end)
end)

describe("the sandbox", function()
  it("raises for unknown names, steps and inputs", function()
    assert.matches("unknown name 'os'", fails("${{ os.exit() }}"))
    assert.matches("unknown name 'require'", fails("${{ require('io') }}"))
    assert.matches("unknown name 'io'", fails("${{ io }}"))
    assert.matches("no step 'b'", fails("${{ steps.b.stdout }}"))
    assert.matches("no input 'zz'", fails("${{ inputs.zz }}"))
  end)

  it("cannot assign globals or change results", function()
    assert.matches("cannot assign 'x'",
                   fails("${{ (function() x = 1 end)() }}"))
    assert.matches("cannot be changed",
                   fails("${{ (function() steps.a = 1 end)() }}"))
  end)

  it("stops a runaway expression", function()
    assert.matches("stopped after",
                   fails("${{ (function() while true do end end)() }}"))
  end)

  it("reports syntax errors without the chunk name", function()
    local srcs, err = expr.check("${{ 1 + }}")
    assert.is_nil(srcs)
    assert.equal("bad expression '${{ 1 + }}': unexpected symbol near "
                 .. "<eof>", err)
    assert.equal("unterminated '${{' (no closing '}}')",
                 select(2, expr.check("${{ x")))
    assert.equal("empty expression '${{ }}'", select(2, expr.check("${{ }}")))
  end)
end)

describe("helpers", function()
  it("contains, startsWith, endsWith ignore case like GitHub's", function()
    assert.is_true(expand("${{ contains('Hello', 'ELL') }}"))
    assert.is_true(expand("${{ contains(inputs.list, 'B') }}"))
    assert.is_false(expand("${{ contains(inputs.list, 'c') }}"))
    assert.is_true(expand("${{ startsWith('Hello', 'he') }}"))
    assert.is_true(expand("${{ endsWith('Hello', 'LO') }}"))
  end)

  it("format, join, toJSON, trim", function()
    assert.equal("a-3-{x}", expand("${{ format('{0}-{1}-{{x}}', 'a', 3) }}"))
    assert.equal("a|b", expand("${{ join(inputs.list, '|') }}"))
    assert.equal('["a","b"]', expand("${{ toJSON(inputs.list) }}"))
    assert.equal("x y", expand("${{ trim('  x y \\n') }}"))
  end)

  it("fromJSON takes text only", function()
    assert.equal("fromJSON: a string expected, got number",
                 fails("${{ fromJSON(1) }}"):match("fromJSON: .*$"))
    assert.equal(1, expand("${{ fromJSON('1') }}"))
  end)

  it("next walks results and tables of its own, read-only", function()
    assert.equal("a", expand("${{ select(2, next(inputs.list)) }}"))
    assert.equal("b", expand("${{ select(2, next(inputs.list, 1)) }}"))
    assert.equal(5, expand("${{ select(2, next({ 5 })) }}"))
    assert.matches("cannot be changed", fails(
      "${{ (function() local _, v = next({ inputs.list }) v[1] = 'x' end)() }}"))
  end)

  it("gives the string library without rep", function()
    assert.equal("WORLD", expand("${{ string.upper(inputs.name) }}"))
    assert.is_nil(expand("${{ string.rep }}"))
  end)
end)

describe("conditions", function()
  it("accept bare expressions, ${{ }} and booleans", function()
    local e = env()
    assert.same({ true, true }, { expr.condition("inputs.n == 3", e) })
    assert.same({ true, false }, { expr.condition("${{ inputs.n == 4 }}",
                                                  e) })
    assert.same({ true, false }, { expr.condition(false, e) })
  end)

  it("use GitHub's falsy values", function()
    for _, v in ipairs{ false, 0, "" } do assert.is_false(expr.truthy(v)) end
    assert.is_false(expr.truthy(nil))
    assert.is_false(expr.truthy(expr.null))
    assert.is_true(expr.truthy("0"))
  end)
end)

describe("references", function()
  it("finds steps, inputs and sessions in both notations", function()
    local r = expr.references("steps.a.stdout .. steps['b-c'].x .. " ..
                              "inputs.n .. sessions[\"py\"].id")
    assert.same({ "a", "b-c" }, r.steps)
    assert.same({ "n" }, r.inputs)
    assert.same({ "py" }, r.sessions)
  end)

  it("are not text in strings or comments, nor fields of other values",
     function()
    local r = expr.references("contains(steps.a.stdout, 'steps.b') -- steps.c"
                              .. "\n .. [==[ inputs.m ]==] --[[ inputs.p ]] "
                              .. "inputs.n .. x.sessions.q .. \"sessions.r\"")
    assert.same({ "a" }, r.steps)
    assert.same({ "n" }, r.inputs)
    assert.same({}, r.sessions)
  end)
end)

describe("the sandbox keeps README's promises", function()
  it("gives strings only the listed methods, also through ':'", function()
    assert.matches("rep", fails("${{ ('ab'):rep(3) }}"))
    assert.matches("rep", fails("${{ string.rep('ab', 3) }}"))
    -- positive control: the listed methods work both ways
    assert.equal("AB", expand("${{ ('ab'):upper() }}"))
    assert.equal("ab", expand("${{ string.lower('AB') }}"))
    -- and the host's strings are whole again afterwards
    assert.equal("abab", ("ab"):rep(2))
  end)

  it("never hands out the engine's own tables", function()
    local raw = { n = 3, list = { "a", "b" } }
    local e = expr.env{ inputs = expr.strict(raw, "input"),
                        workflow = { name = "w" } }
    -- pairs and next give views; nothing reached through them changes
    local ok = expr.expand("${{ select(2, pairs(inputs)) }}", e)
    assert.is_true(ok)
    local _, v = expr.expand("${{ (function() local t = select(2, " ..
                             "pairs(inputs)); t.n = 99 end)() }}", e)
    assert.matches("cannot be changed", v)
    _, v = expr.expand("${{ (function() for k, l in pairs(inputs) do " ..
                       "if k == 'list' then l[1] = 'x' end end end)() }}", e)
    assert.matches("cannot be changed", v)
    _, v = expr.expand("${{ (function() workflow.name = 'x' end)() }}", e)
    assert.matches("cannot be changed", v)
    assert.equal(3, raw.n)
    assert.equal("a", raw.list[1])
    -- positive control: reading through views works, values come out whole
    assert.equal("a,b", expand("${{ join(inputs.list, ',') }}", e))
    assert.same({ "a", "b" }, expand("${{ inputs.list }}", e))
    assert.equal('["a","b"]', expand("${{ toJSON(inputs.list) }}", e))
    assert.equal(2, expand("${{ #inputs.list }}", e))
  end)

  it("has its own utf8 table", function()
    assert.is_false(expand("${{ utf8 == nil }}"))
    assert.matches("cannot be changed",
                   fails("${{ (function() utf8.char = nil end)() }}"))
    assert.is_function(utf8.char)
    assert.equal("é", expand("${{ utf8.char(233) }}"))
  end)

  it("stops on an interrupt and after its CPU time", function()
    local was = expr.interrupted
    expr.interrupted = function() return true end
    local ok, v = expr.expand("${{ (function() local i = 0 " ..
                              "while true do i = i + 1 end end)() }}", env())
    expr.interrupted = was
    assert.is_false(ok)
    assert.matches("interrupted", v)
    local max = expr.MAX_SECONDS
    expr.MAX_SECONDS = 0.05
    -- positive control of the clock: calls into C (gsub over a long text)
    -- take time without many VM instructions
    ok, v = expr.expand("${{ (function() local t = {} for i = 1, 1000 " ..
                        "do t[i] = 'xxxxxxxxxx' end local s = " ..
                        "table.concat(t) for i = 1, 5000 do " ..
                        "s:gsub('.', '') end end)() }}", env())
    expr.MAX_SECONDS = max
    assert.is_false(ok)
    assert.matches("stopped after 0.05 s", v, 1, true)
  end)
end)

-- A host may run the engine under a C hook of its own (a profiler, a
-- coverage counter): Lua sees it only as "external hook" and cannot put
-- it back once replaced, so the engine's budgets must leave it alone.
describe("under a C hook the host installed", function()
  local chook = require "chook"
  local help = require "wfhelp"

  before_each(function() chook.set() end)
  after_each(function() chook.clear() end)

  it("evaluates, stops a runaway expression, and keeps the hook", function()
    assert.is_true(chook.active())                 -- the control
    assert.equal(3, expand("${{ 1 + 2 }}"))
    assert.matches("stopped after",
                   fails("${{ (function() while true do end end)() }}"))
    assert.is_true(chook.active())
    local before = chook.count()
    for _ = 1, 1000 do end                         -- still fires here
    assert.is_true(chook.count() > before)
  end)

  it("runs lua steps, their failures at the user's line, and keeps the hook",
     function()
    local dir = help.tmpdir()
    local path = help.file(dir, [[
steps:
  - { id: ok, lua: "return 6 * 7" }
  - id: bad
    needs: ok
    lua: |
      local x = steps.ok.result + 1
      error("no good " .. x)
]])
    local code, rep = help.run(nil, path)
    help.rm(dir)
    assert.equal(1, code)
    assert.equal("success", help.step(rep, "ok").outcome)
    assert.equal(42, help.step(rep, "ok").result)
    assert.equal("failure", help.step(rep, "bad").outcome)
    assert.matches("no good 43", help.step(rep, "bad").error, 1, true)
    assert.is_true(chook.active())
  end)
end)
