-- agentcube.workflow.graph -- the step graph: explicit `needs` edges,
-- the order steps start in, cycles, and the implicit one-at-a-time chain
-- of the steps that share a session.
--
-- A node is any table with `id`, `index` (its place in the file) and
-- `needs` (a list of ids); byid maps ids to nodes.
local M = {}

--- Finds a cycle among nodes; returns the ids along it, first id
-- repeated at the end ({ "a", "b", "a" }), or nil. Nodes are explored in
-- file order, so the cycle reported is the first one a reader meets.
function M.find_cycle(nodes, byid)
  local WHITE, GREY, BLACK = 0, 1, 2
  local color, stack = {}, {}
  local function visit(n)
    color[n] = GREY
    stack[#stack + 1] = n.id
    for _, d in ipairs(n.needs) do
      local m = byid[d]
      if m then
        if color[m] == GREY then
          local path, start = {}, nil
          for i, id in ipairs(stack) do
            if id == m.id then start = i end
          end
          for i = start, #stack do path[#path + 1] = stack[i] end
          path[#path + 1] = m.id
          return path
        end
        if (color[m] or WHITE) == WHITE then
          local p = visit(m)
          if p then return p end
        end
      end
    end
    stack[#stack] = nil
    color[n] = BLACK
    return nil
  end
  for _, n in ipairs(nodes) do
    if (color[n] or WHITE) == WHITE then
      local p = visit(n)
      if p then return p end
    end
  end
  return nil
end

--- Every cycle among nodes, each as find_cycle gives it, in file order:
-- once a cycle is found its steps leave the graph and the search goes
-- on, so independent cycles are all reported, each once.
function M.find_cycles(nodes, byid)
  local rest, left = {}, {}
  for id, n in pairs(byid) do rest[id] = n end
  for _, n in ipairs(nodes) do left[#left + 1] = n end
  local cycles = {}
  while true do
    local c = M.find_cycle(left, rest)
    if not c then return cycles end
    cycles[#cycles + 1] = c
    for _, id in ipairs(c) do rest[id] = nil end
    local keep = {}
    for _, n in ipairs(left) do
      if rest[n.id] == n then keep[#keep + 1] = n end
    end
    left = keep
  end
end

--- A topological order of nodes: needs first, ties broken by file order.
-- Returns the ordered list, or nil, cycles (a list of find_cycle's).
function M.order(nodes, byid)
  local indeg, users = {}, {}
  for _, n in ipairs(nodes) do
    indeg[n] = 0
    users[n] = {}
  end
  for _, n in ipairs(nodes) do
    for _, d in ipairs(n.needs) do
      local m = byid[d]
      if m and indeg[m] then
        indeg[n] = indeg[n] + 1
        table.insert(users[m], n)
      end
    end
  end
  local ready, out = {}, {}
  for _, n in ipairs(nodes) do
    if indeg[n] == 0 then ready[#ready + 1] = n end
  end
  while #ready > 0 do
    -- the ready node that comes first in the file
    local best = 1
    for i = 2, #ready do
      if ready[i].index < ready[best].index then best = i end
    end
    local n = table.remove(ready, best)
    out[#out + 1] = n
    for _, u in ipairs(users[n]) do
      indeg[u] = indeg[u] - 1
      if indeg[u] == 0 then ready[#ready + 1] = u end
    end
  end
  if #out < #nodes then
    return nil, M.find_cycles(nodes, byid)
  end
  return out
end

--- For an ordered list, each node's predecessor on the same session
-- (key(n) names it; nil keys are never chained): prev[n] = node.
function M.chains(ordered, key)
  local last, prev = {}, {}
  for _, n in ipairs(ordered) do
    local k = key(n)
    if k ~= nil then
      prev[n] = last[k]
      last[k] = n
    end
  end
  return prev
end

--- Whether `anc` comes before `n` through needs and chain edges.
function M.precedes(anc, n, byid, prev)
  local seen = {}
  local function up(x)
    if x == anc then return true end
    if seen[x] then return false end
    seen[x] = true
    for _, d in ipairs(x.needs) do
      local m = byid[d]
      if m and up(m) then return true end
    end
    local p = prev[x]
    return p ~= nil and up(p)
  end
  for _, d in ipairs(n.needs) do
    local m = byid[d]
    if m and up(m) then return true end
  end
  return prev[n] ~= nil and up(prev[n])
end

return M
