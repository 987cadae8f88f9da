-- agentcube.workflow.contexts -- the stateful interpreters of one run.
--
-- `run` steps with `context: NAME` run in the interpreter NAME of their
-- session, like the cells of a notebook: what one step defines, the next
-- sees. The interpreter is created on the first step that uses it (with
-- the workflow's env and that step's env: its environment is fixed from
-- then on) and closed when the run ends. A run that raises fails its step
-- with the error's name and message; the traceback is kept for -v.
-- Contexts are a local runtime extension: against a cluster without them
-- the step fails with the client's "code contexts: not supported" error.
local load_mod = require "agentcube.workflow.load"

local M = {}
M.__index = M

local function message(e)
  return require("agentcube.workflow.steps").message(e)
end

local function async() return load_mod.cmodule("agentcube.async") end

function M.new()
  return setmetatable({ bykey = {}, list = {} }, M)
end

--- The context of step s on session client ci, created on first use.
-- Returns ctx, or nil, message.
function M:get(s, ci, env)
  local key = s.session .. "\0" .. s.context
  local c = self.bykey[key]
  if c and c.ci == ci then return c.ctx end
  if c and c.error then return nil, c.error end
  local ok, ctx = pcall(ci.create_context, ci, s.context_language,
                        { env = env })
  if not ok then
    local err = ("context '%s': %s"):format(s.context, message(ctx))
    self.bykey[key] = { error = err }
    return nil, err
  end
  c = { ci = ci, ctx = ctx, name = s.context }
  self.bykey[key] = c
  self.list[#self.list + 1] = c
  return ctx
end

--- A context run's result as a step attempt's outcome.
function M.outcome(r, timeout)
  local result = { stdout = r.stdout or "", stderr = r.stderr or "",
                   value = r.value, duration = r.duration }
  local e = r.error
  if r.timed_out then
    return { ok = false, timed_out = true, result = result,
             err = ("timed out after %gs%s"):format(timeout or 0,
               r.state == "restarted" and " (the context was restarted "
               .. "empty)" or "") }
  end
  if type(e) == "table" then
    result.traceback = type(e.traceback) == "string" and e.traceback ~= ""
                       and e.traceback or nil
    return { ok = false, result = result,
             err = ("%s: %s"):format(tostring(e.name or "Error"),
                                     tostring(e.message or "")) }
  end
  return { ok = true, result = result }
end

--- Starts one cell as an agentcube.async job: a handle like
-- steps.start's. on_output(stream, chunk) gets its output as it comes.
function M.start(ctx, code, timeout, on_output)
  local ok, job = pcall(async().submit, ctx, "run", {
    code = code, timeout = timeout,
    on_stdout = function(c) on_output("stdout", c) end,
    on_stderr = function(c) on_output("stderr", c) end })
  if not ok then return { done = true, ok = false, err = message(job) } end
  return { job = job, context = true, timeout = timeout }
end

--- Closes every context this run created (never raises).
function M:close_all()
  for _, c in ipairs(self.list) do
    pcall(c.ctx.close, c.ctx)
  end
end

return M
