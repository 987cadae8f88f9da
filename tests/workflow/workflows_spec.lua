-- Every file under workflows/ checks and runs green against a real
-- `agentcube serve`, with the results the SDK README's scenarios promise.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local server = require "server"
local agentcube = require "agentcube"
local workflow = require "agentcube.workflow"

local root = help.root .. "/workflows"
local srv, out

local function path(name) return root .. "/" .. name end

setup(function()
  srv = server.start{}
  out = help.tmpdir()
end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
  help.rm(out)
end)

after_each(function()
  assert.same({}, help.sessions(srv))
end)

describe("workflows/", function()
  it("every file passes check", function()
    local p = io.popen("ls " .. help.q(root))
    local n = 0
    for name in p:lines() do
      if name:match("%.ya?ml$") or name:match("%.lua$") then
        n = n + 1
        local ok, err = workflow.check(path(name))
        assert.is_true(ok, err)
      end
    end
    p:close()
    assert.is_true(n >= 8)
  end)

  it("quickstart.yaml says hello", function()
    local code, rep = help.run(srv, path("quickstart.yaml"))
    assert.equal(0, code)
    assert.equal("Hello, AgentCube!\n", rep.outputs.greeting)
  end)

  it("lifecycle.yaml keeps /tmp/value.txt between steps", function()
    local code, rep = help.run(srv, path("lifecycle.yaml"))
    assert.equal(0, code)
    assert.equal("42\n", rep.outputs.value)
    assert.equal("42", help.step(rep, "show").stdout)
    assert.equal(3600, require("agentcube.workflow").load(
      path("lifecycle.yaml")).sessions.byname.main.ttl)
  end)

  it("csv-summary.yaml uploads, summarises and downloads", function()
    local code, rep = help.run(srv, path("csv-summary.yaml"),
                               { set = { out = out } })
    assert.equal(0, code)
    assert.equal(12, rep.outputs.rows)
    assert.equal(112.73, rep.outputs.mean)
    local csv = help.read(out .. "/summary.csv")
    assert.matches("^region,rows,total,mean\r?\n", csv)
    assert.matches("north,3,376.44,125.48", csv)
  end)

  it("reuse-first.yaml and reuse-second.yaml share a session", function()
    local code, rep = help.run(srv, path("reuse-first.yaml"))
    assert.equal(0, code)
    local id = rep.outputs.session
    assert.is_string(id)
    assert.same({ id }, help.sessions(srv))
    code, rep = help.run(srv, path("reuse-second.yaml"),
                         { set = { session = id } })
    assert.equal(0, code)
    assert.equal("42\n", rep.outputs.value)
    -- the second run deleted it (keep: false); without the id it refuses
    code = help.run(srv, path("reuse-second.yaml"))
    assert.equal(2, code)
  end)

  it("fan-out.yaml analyses three regions at once and gathers them",
     function()
    local code, rep = help.run(srv, path("fan-out.yaml"))
    assert.equal(0, code)
    assert.equal(1157.82, rep.outputs.total)
    assert.matches("north 3 rows, total 376.44", rep.outputs.report)
    local n, s, w = help.step(rep, "north"), help.step(rep, "south"),
                    help.step(rep, "west")
    local first_end = math.min(n.started + n.duration,
                               s.started + s.duration,
                               w.started + w.duration)
    for _, x in ipairs{ n, s, w } do
      assert.is_true(x.started < first_end, "the analyses did not overlap")
    end
    assert.equal(3, #rep.steps - 4)    -- 3 uploads, 3 analyses, gather
  end)

  it("csv-report.yaml brings a report and a chart back", function()
    local code, rep = help.run(srv, path("csv-report.yaml"),
                               { set = { out = out .. "/report" } })
    assert.equal(0, code)
    assert.equal(1352.78, rep.outputs.total)
    assert.equal("west", rep.outputs.top)
    local report = require("cjson").decode(help.read(out ..
                                                     "/report/report.json"))
    assert.equal(12, report.rows)
    assert.equal(440.91, report.regions.west)
    assert.same({ gadget = 22, gizmo = 30, widget = 39 }, report.units)
    local svg = help.read(out .. "/report/chart.svg")
    assert.matches("^<svg ", svg)
    assert.equal(4, select(2, svg:gsub("<rect ", "")))
    assert.matches(">west</text>", svg, 1, true)
    assert.equal("east     194.96\nnorth    376.44\nsouth    340.47\n"
                 .. "west     440.91\n", help.step(rep, "summary").stdout)
    assert.equal(4, help.step(rep, "summary").outputs.regions)
  end)

  it("shards.yaml fans out over three shards and joins them", function()
    local code, rep = help.run(srv, path("shards.yaml"),
                               { set = { out = out .. "/shards" } })
    assert.equal(0, code)
    assert.equal(12, rep.outputs.rows)
    assert.equal("product,rows,units,amount\ngadget,4,22,659.78\n"
                 .. "gizmo,4,30,225.00\nwidget,4,39,468.00\n",
                 help.read(out .. "/shards/products.csv"))
    local a, b, c = help.step(rep, "shard0"), help.step(rep, "shard1"),
                    help.step(rep, "shard2")
    local first_end = math.min(a.started + a.duration,
                               b.started + b.duration,
                               c.started + c.duration)
    for _, x in ipairs{ a, b, c } do
      assert.is_true(x.started < first_end, "the shards did not overlap")
    end
  end)

  it("notebook.lua runs its cells in one session", function()
    local cmd = ("cd %s && env WORKLOAD_MANAGER_URL=%s ROUTER_URL=%s "
                 .. "%s %s 2>&1"):format(help.q(out), help.q(srv.url),
      help.q(srv.url), help.q(os.getenv("AGENTCUBE_BIN") or
                              help.root .. "/build/agentcube"),
      help.q(path("notebook.lua")))
    local p = io.popen(cmd)
    local text = p:read("a")
    local _, _, code = p:close()
    assert.equal(0, code, text)
    assert.matches("Out%[1%]:\n    12 rows, columns: date, region", text)
    assert.matches("best day: 2024-01-06 269.91", text, 1, true)
    assert.matches("\nmean 112.73, stdev 69.02\n", text, 1, true)
  end)

  it("table.lua (returns a table) runs with its input", function()
    local code, rep = help.run(srv, path("table.lua"), { set = { n = "5" } })
    assert.equal(0, code)
    assert.equal(55, rep.outputs.sum)
    assert.equal("sum of squares: 55\n", help.step(rep, "sum").stdout)
  end)

  it("script.lua (a plain script) runs like a Lua script", function()
    local cmd = ("cd %s && env WORKLOAD_MANAGER_URL=%s ROUTER_URL=%s "
                 .. "WF=%s lua5.4 -e 'os.exit((require(\"agentcube."
                 .. "workflow\").run(os.getenv(\"WF\"))))' 2>&1"):format(
      help.q(out), help.q(srv.url), help.q(srv.url),
      help.q(path("script.lua")))
    local p = io.popen(cmd)
    local text = p:read("a")
    local _, _, code = p:close()
    assert.equal(0, code, text)
    assert.matches("value: 42", text)
    assert.matches("file: value.txt\t2", text)
  end)
end)
