-- agentcube.workflow.sessions -- the sessions of one run.
--
-- A declared session is created on the first step that uses it (never
-- when no step does), or attached when its `id` expands to a non-empty
-- id. At the end of the run, sessions this run created are deleted unless
-- kept (`keep: true` or the run's keep option), and attached ones are
-- left alone unless `keep: false` is written out. An interrupted run
-- deletes every session it created, kept or not.
local expr = require "agentcube.workflow.expr"
local steps_mod = require "agentcube.workflow.steps"
local load_mod = require "agentcube.workflow.load"

local M = {}
M.__index = M

--- mgr for workflow wf. opts: client_options, keep, emit(event).
function M.new(wf, opts)
  local self = setmetatable({ wf = wf, opts = opts, list = {},
                              byname = {} }, M)
  -- what expressions see as sessions.<name>
  self.public = {}
  for _, d in ipairs(wf.sessions.list) do
    local s = { decl = d, name = d.name,
                info = { name = d.name, template = d.template } }
    self.list[#self.list + 1] = s
    self.byname[d.name] = s
    self.public[d.name] = s.info
  end
  return self
end

local function agentcube() return require "agentcube" end

--- The client of session name, created or attached on first use.
-- env: expression environment for the declaration's expressions.
-- Returns ci, or nil, message.
function M:get(name, env)
  local s = self.byname[name]
  if s.ci then return s.ci end
  if s.error then return nil, s.error end
  local d = s.decl
  local function fail(msg)
    s.error = ("session '%s': %s"):format(name, msg)
    return nil, s.error
  end
  local o = {}
  for k, v in pairs(self.opts.client_options or {}) do o[k] = v end
  local fields = { template = "name", namespace = "namespace", ttl = "ttl",
                   id = "session_id" }
  for field, opt in pairs(fields) do
    local v = d[field]
    if v ~= nil then
      local ok, x = expr.expand(v, env)
      if not ok then return fail(x) end
      if field == "ttl" then
        x = math.tointeger(tonumber(x))
        if not x or x <= 0 then return fail("ttl must be a positive "
                                            .. "integer") end
      elseif x ~= nil and x ~= expr.null then
        x = expr.text(x)
      end
      if x ~= nil and x ~= expr.null and x ~= "" then o[opt] = x end
    end
  end
  if d.keep ~= nil then
    local ok, x = expr.expand(d.keep, env)
    if not ok then return fail(x) end
    s.keep = expr.truthy(x)
  end
  local ok, ci = pcall(agentcube().CodeInterpreterClient, o)
  if not ok then return fail(steps_mod.message(ci)) end
  s.ci = ci
  s.attached = o.session_id ~= nil
  s.id = ci.session_id
  s.info.id = s.id
  s.info.attached = s.attached
  self.opts.emit{ type = s.attached and "session_attached" or
                  "session_created", session = name, session_id = s.id }
  return ci
end

function M:id(name)
  local s = self.byname[name]
  return s and s.id
end

-- What happens to s at the end: "keep", "delete" or "leave".
function M:fate(s, interrupted)
  if not s.ci then return "none" end
  if s.attached then
    return (s.keep == false and not self.opts.keep) and "delete" or "leave"
  end
  if interrupted then return "delete" end
  if s.keep or self.opts.keep then return "keep" end
  return "delete"
end

--- Ends every session: deletes, detaches (kept) or leaves them, as
-- fate says. busy[name] lists jobs still running on a session (their
-- step was abandoned): those sessions get a concurrent DELETE first, so
-- that the server ends the command, and their jobs are waited for up to
-- bound seconds. Fills the report fields of each session.
function M:finish(interrupted, busy, bound, now)
  local A = load_mod.cmodule("agentcube.async")
  local pending = {}
  for _, s in ipairs(self.list) do
    s.fate = self:fate(s, interrupted)
    local jobs = busy[s.name]
    if jobs and #jobs > 0 and s.fate == "delete" then
      local ok, j = pcall(A.submit, s.ci, "stop", { timeout = 5 })
      if ok then pending[#pending + 1] = j end
    end
    for _, j in ipairs(jobs or {}) do pending[#pending + 1] = j end
  end
  local deadline = now() + bound
  while #pending > 0 and now() < deadline do
    local j, i = A.wait_any(pending, 100)
    if j then
      pcall(j.result, j)         -- settles the session's busy mark
      table.remove(pending, i)
    end
  end
  for _, s in ipairs(self.list) do
    if s.fate == "delete" then
      local ok, err = pcall(s.ci.stop, s.ci)
      s.info.deleted = ok
      self.opts.emit{ type = "session_deleted", session = s.name,
                      session_id = s.id,
                      error = not ok and steps_mod.message(err) or nil }
    elseif s.fate == "keep" then
      pcall(s.ci.detach, s.ci)
      s.info.kept = true
      self.opts.emit{ type = "session_kept", session = s.name,
                      session_id = s.id }
    end
  end
end

--- The report's view of the sessions.
function M:report()
  local out = {}
  for _, s in ipairs(self.list) do
    out[s.name] = {
      id = s.id, template = s.decl.template, created = s.ci ~= nil and
      not s.attached, attached = s.attached or false,
      kept = s.fate == "keep" or s.fate == "leave",
      deleted = s.info.deleted or false, error = s.error,
    }
  end
  return out
end

return M
