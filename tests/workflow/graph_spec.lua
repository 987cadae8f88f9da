-- The step graph: order (needs first, then file order), cycles with
-- their path, session chains and precedence.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
require "wfhelp"
local graph = require "agentcube.workflow.graph"

-- nodes{ {"a"}, {"b", "a"} } -> list, byid (ids with their needs)
local function nodes(spec)
  local list, byid = {}, {}
  for i, s in ipairs(spec) do
    local n = { id = s[1], index = i, needs = { table.unpack(s, 2) },
                session = s.session }
    list[i] = n
    byid[n.id] = n
  end
  return list, byid
end

local function ids(list)
  local out = {}
  for i, n in ipairs(list) do out[i] = n.id end
  return out
end

describe("order", function()
  it("keeps file order when nothing is needed", function()
    assert.same({ "a", "b", "c" }, ids(graph.order(nodes{ { "a" }, { "b" },
                                                          { "c" } })))
  end)

  it("puts needs first, then file order", function()
    local list, byid = nodes{ { "a", "c" }, { "b" }, { "c" } }
    assert.same({ "b", "c", "a" }, ids(graph.order(list, byid)))
  end)

  it("handles a diamond", function()
    local list, byid = nodes{ { "d", "b", "c" }, { "c", "a" }, { "b", "a" },
                              { "a" } }
    assert.same({ "a", "c", "b", "d" }, ids(graph.order(list, byid)))
  end)
end)

describe("cycles", function()
  it("reports the path of a two-step cycle", function()
    local list, byid = nodes{ { "a", "b" }, { "b", "a" } }
    local ordered, cycles = graph.order(list, byid)
    assert.is_nil(ordered)
    assert.same({ { "a", "b", "a" } }, cycles)
  end)

  it("reports only the cycle, not the path into it", function()
    local list, byid = nodes{ { "x", "a" }, { "a", "b" }, { "b", "c" },
                              { "c", "a" } }
    assert.same({ { "a", "b", "c", "a" } },
                select(2, graph.order(list, byid)))
  end)

  it("reports every independent cycle, in file order", function()
    local list, byid = nodes{ { "c", "c" }, { "d", "d" }, { "e", "f" },
                              { "f", "e" }, { "g" } }
    assert.same({ { "c", "c" }, { "d", "d" }, { "e", "f", "e" } },
                select(2, graph.order(list, byid)))
  end)

  it("finds a self-need", function()
    local list, byid = nodes{ { "a", "a" } }
    assert.same({ "a", "a" }, graph.find_cycle(list, byid))
  end)

  it("finds none in a DAG", function()
    local list, byid = nodes{ { "a" }, { "b", "a" }, { "c", "a", "b" } }
    assert.is_nil(graph.find_cycle(list, byid))
  end)
end)

describe("session chains and precedence", function()
  it("chains the steps of one session in order", function()
    local list, byid = nodes{ { "a", session = "x" }, { "b", session = "y" },
                              { "c", session = "x" } }
    local prev = graph.chains(graph.order(list, byid),
                              function(n) return n.session end)
    assert.equal(byid.a, prev[byid.c])
    assert.is_nil(prev[byid.b])
    assert.is_true(graph.precedes(byid.a, byid.c, byid, prev))
    assert.is_false(graph.precedes(byid.b, byid.c, byid, prev))
    assert.is_false(graph.precedes(byid.c, byid.a, byid, prev))
  end)

  it("follows needs transitively", function()
    local _, byid = nodes{ { "a" }, { "b", "a" }, { "c", "b" } }
    local prev = {}
    assert.is_true(graph.precedes(byid.a, byid.c, byid, prev))
  end)
end)
