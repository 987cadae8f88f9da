-- agentcube.workflow.run -- the scheduler.
--
-- Steps start as soon as what they need has finished: at most
-- max_parallel at a time, one at a time per session (in dependency order,
-- then file order), each as a job of agentcube.async so
-- that steps on different sessions overlap. Between events the scheduler
-- asks opts.interrupted(); once it says yes, nothing new starts, running
-- jobs are cancelled at once (the server ends their commands; a job that
-- cannot be cancelled gets `grace` seconds), the finally steps get
-- `finally_timeout` seconds, and every session this run created is
-- deleted.
--
-- Step results live in steps.<id> for expressions and the report:
--   status      "pending" | "running" | "done"
--   outcome     "success" | "failure" | "skipped" | "cancelled"
--   conclusion  the outcome after continue_on_error ("failure" becomes
--               "success")
--   exit_code, stdout, stderr, duration (exec, run); files (list);
--   result, outputs (lua); error, timed_out, attempts, started, elapsed,
--   session, session_id
local expr = require "agentcube.workflow.expr"
local words = require "agentcube.workflow.words"
local steps_mod = require "agentcube.workflow.steps"
local sessions_mod = require "agentcube.workflow.sessions"
local load_mod = require "agentcube.workflow.load"
local contexts_mod = require "agentcube.workflow.contexts"
local background = require "agentcube.workflow.background"
local lines_mod = require "agentcube.workflow.lines"

local M = {}

M.POLL_MS = 100          -- longest wait between two looks at the world
M.GRACE = 5              -- seconds running steps get after an interrupt
M.FINALLY_TIMEOUT = 30   -- seconds finally steps get after an interrupt
M.CLEANUP_BOUND = 10     -- seconds to wait for abandoned jobs at the end
M.EXEC_MARGIN = 15       -- engine deadline past an exec/run timeout
M.MAX_BACKOFF = 3600

local Run = {}
Run.__index = Run

local function never() return false end

-- env for expressions: overlay over the process environment.
local function env_view(overlay)
  return setmetatable({}, { __index = function(_, k)
    local v = overlay[k]
    if v ~= nil then return v end
    return type(k) == "string" and os.getenv(k) or nil
  end })
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

--- Runs a validated workflow. opts: inputs (resolved values by name),
-- reporter (with :event(ev)), client_options, keep, interrupted, grace,
-- finally_timeout, errors (where the engine's own complaints go, default
-- io.stderr). Returns exit code (0, 1, 130) and the run.
function M.execute(wf, opts)
  local A = load_mod.cmodule("agentcube.async")
  local self = setmetatable({
    wf = wf, opts = opts, A = A, now = A.now,
    interrupted = opts.interrupted or never,
    reporter = opts.reporter, results = {}, state = {}, attempts = {},
    owner = {}, zombies = {}, running = {}, cancelled = false,
    failed = false, output_errors = {}, outputs = {},
    contexts = contexts_mod.new(), procs = {}, streams = {},
  }, Run)
  -- a blocking call that Ctrl-C interrupted (it caught the signal
  -- itself) interrupts the run as well
  local asked = self.interrupted
  self.interrupted = function() return self.interrupt_seen or asked() end
  self.t0 = self.now()
  self.sessions = sessions_mod.new(wf, {
    client_options = opts.client_options, keep = opts.keep,
    emit = function(ev) self:emit(ev) end,
  })
  for _, phase in ipairs{ wf.steps, wf.finally } do
    for _, s in ipairs(phase) do
      self.results[s.id] = { id = s.id, name = s.name, kind = s.kind,
                             session = s.session, status = "pending",
                             phase = s.phase }
    end
  end
  -- the workflow env, expanded once, over the process environment
  local base_env = env_view({})
  local wenv = {}
  for k, v in pairs(wf.env) do
    local ok, x = expr.expand(v, expr.env{ env = base_env,
                                           inputs = opts.inputs })
    wenv[k] = ok and expr.text(x) or expr.text(v)
  end
  self.wenv = wenv
  self.ctx = {
    inputs = expr.strict(opts.inputs, "input"),
    steps = expr.strict(self.results, "step"),
    sessions = expr.strict(self.sessions.public, "session"),
    workflow = { name = wf.name, file = wf.file, dir = dirname(wf.file) },
  }
  self:emit{ type = "workflow_start", workflow = wf.name, file = wf.file,
             steps = #wf.steps + #wf.finally }
  -- An error escaping the scheduler (lua.c's "interrupted!" when run
  -- under plain lua5.4, or a bug) still ends every session first.
  local was_interrupted = expr.interrupted
  expr.interrupted = self.interrupted
  local ok, err = pcall(function()
    self:phase(wf.order.main, "main")
    self:phase(wf.order.finally, "finally")
    self:eval_outputs()
  end)
  expr.interrupted = was_interrupted
  if not ok then
    self.cancelled = true
    for _, h in ipairs(self.running) do self:abandon(h) end
    self.running = {}
  end
  self:end_live(ok)
  local busy = {}
  for _, z in ipairs(self.zombies) do
    if z.session then
      busy[z.session] = busy[z.session] or {}
      table.insert(busy[z.session], z.job)
    end
  end
  self.sessions:finish(self.cancelled, busy, M.CLEANUP_BOUND, self.now)
  if not ok and not tostring(err):find("interrupted!", 1, true) then
    error(err, 0)
  end
  self.code = self.cancelled and 130 or
              ((self.failed or #self.output_errors > 0) and 1 or 0)
  self.elapsed = self.now() - self.t0
  self:emit{ type = "workflow_end", workflow = wf.name,
             exit_code = self.code, elapsed = self.elapsed,
             outputs = self.outputs, errors = self.output_errors }
  return self.code, self
end

-- The run ends: its contexts are closed, and its background processes
-- stopped unless their session outlives the run (kept). Never raises.
function Run:end_live(ok)
  for _, h in ipairs(self.running) do
    if h.monitor then
      local j = h.monitor:abandon()
      if j then self.zombies[#self.zombies + 1] = { job = j,
                                                   session = h.step.session }
      end
    end
  end
  if not ok then return end
  self.contexts:close_all()
  for _, p in pairs(self.procs) do
    local entry = self.sessions.byname[p.session]
    local fate = entry and self.sessions:fate(entry, self.cancelled)
    local survives = fate == "keep" or (fate == "leave" and entry.keep)
    -- a session deleted now takes its processes with it
    if not p.stopped and not survives and fate ~= "delete" then
      -- ended before the run reports it ended
      if pcall(p.proc.kill, p.proc, "KILL") then
        pcall(p.proc.wait, p.proc, background.STOP_WAIT)
      end
    end
  end
end

--- Live output of step s (-v): each line as a step_output event, never
-- a partial one until the step ends.
function Run:step_chunk(s, stream, chunk)
  if not self.opts.verbose then return end
  local r = self.results[s.id]
  r.streamed = true
  local per = self.streams[s.id]
  if not per then
    per = {}
    self.streams[s.id] = per
  end
  local l = per[stream]
  if not l then
    l = lines_mod.new(function(line)
      self:emit{ type = "step_output", step = r, stream = stream,
                 line = line }
    end)
    per[stream] = l
  end
  l:feed(chunk)
end

-- The end of an attempt's output: partial lines flushed; output that was
-- not streamed (a step kind or a server without live output) shown now.
function Run:output_done(s)
  if not self.opts.verbose then return end
  local r = self.results[s.id]
  local streamed = r.streamed
  for _, name in ipairs{ "stdout", "stderr" } do
    if not streamed and r[name] then self:step_chunk(s, name, r[name]) end
    local l = self.streams[s.id] and self.streams[s.id][name]
    if l then l:flush() end
  end
  self.streams[s.id] = nil
  r.streamed = nil
end

function Run:emit(ev)
  ev.time = self.now() - self.t0
  if self.reporter then
    local ok, err = pcall(self.reporter.event, self.reporter, ev)
    if not ok and not self.reporter_failed then
      self.reporter_failed = true
      ;(self.opts.errors or io.stderr):write("agentcube: reporter error: ",
                                             tostring(err), "\n")
    end
  end
end


-- The variables a step's command gets, and the env of its expressions.
function Run:step_env(s)
  local merged = {}
  for k, v in pairs(self.wenv) do merged[k] = v end
  local view = env_view(merged)
  local env = self:expr_env(s, view)
  for k, v in pairs(s.env) do
    local ok, x = expr.expand(v, env)
    if not ok then return nil, nil, x end
    merged[k] = expr.text(x)
  end
  return merged, env
end

-- Whether a step upstream of s (transitively) ended with conclusion.
-- Computed from the direct predecessors and remembered once they are all
-- done (their conclusions are final then), so that a long chain of steps
-- costs linear time, not quadratic.
function Run:upstream(s, conclusion)
  self.up = self.up or {}
  local memo = self.up[conclusion]
  if not memo then
    memo = {}
    self.up[conclusion] = memo
  end
  if memo[s] ~= nil then return memo[s] end
  local found, final = false, true
  local function check(p)
    if not p or found then return end
    if self.state[p] ~= "done" then final = false end
    if self.results[p.id].conclusion == conclusion or
       self:upstream(p, conclusion) then
      found = true
    end
  end
  for _, d in ipairs(s.needs) do check(self.wf.byid[d]) end
  check(self.wf.prev[s])
  if found or final then memo[s] = found end
  return found
end

-- The expression environment of step s (with the status functions of
-- `if`).
function Run:expr_env(s, envview)
  local ctx = {}
  for k, v in pairs(self.ctx) do ctx[k] = v end
  ctx.env = envview or env_view(self.wenv)
  if s then
    local main_failed = s.phase == "finally" and self.main_failed
    ctx.failure = function()
      return main_failed or self:upstream(s, "failure")
    end
    ctx.success = function()
      return not self.cancelled and not main_failed and
             not self:upstream(s, "failure") and
             not self:upstream(s, "cancelled")
    end
    ctx.always = function() return true end
    ctx.cancelled = function() return self.cancelled end
  end
  return expr.env(ctx)
end

function Run:preds_done(s)
  for _, d in ipairs(s.needs) do
    if self.state[self.wf.byid[d]] ~= "done" then return false end
  end
  local p = self.wf.prev[s]
  return p == nil or self.state[p] == "done"
end

-- The steps that wait for s: those that need it, and the next step on its
-- session. Built once per run; the scheduler then looks again only at
-- steps whose predecessors changed, instead of at every step every turn.
function Run:successors(nodes)
  self.succ = self.succ or {}
  for _, s in ipairs(nodes) do
    local preds = {}
    for _, d in ipairs(s.needs) do preds[#preds + 1] = self.wf.byid[d] end
    preds[#preds + 1] = self.wf.prev[s]
    for _, p in ipairs(preds) do
      local list = self.succ[p] or {}
      list[#list + 1] = s
      self.succ[p] = list
    end
  end
end

function Run:wake_successors(s)
  local list = self.succ and self.succ[s]
  if list and self.cand then
    for _, n in ipairs(list) do self.cand[n] = true end
    self.woken = true
  end
end

function Run:zombie_on(name)
  for _, z in ipairs(self.zombies) do
    if z.session == name then return true end
  end
  return false
end

function Run:session_free(name)
  return not self.owner[name] and not self:zombie_on(name)
end

-- "FILE:LINE:COL: message" at a step's position.
function Run:at(s, msg, pos)
  -- an expression's error is reported where the expression is
  local src = not pos and type(msg) == "string" and
              msg:match("^'%${{ (.-) }}': ")
  pos = pos or (src and s.expr_pos and s.expr_pos[src]) or s.pos
  return ("%s:%d:%d: %s"):format(self.wf.file, pos.line, pos.col, msg)
end

function Run:finalize(s, outcome, why)
  local r = self.results[s.id]
  r.status = "done"
  r.outcome = outcome
  r.conclusion = outcome
  if outcome == "failure" and self.coe[s] then r.conclusion = "success" end
  r.error = why
  if r.t_start then
    r.elapsed = self.now() - r.t_start
  end
  r.attempts = self.attempts[s] or 0
  r.session_id = r.session_id or self.sessions:id(s.session)
  self.state[s] = "done"
  self:wake_successors(s)
  if self.owner[s.session] == s then self.owner[s.session] = nil end
  if r.conclusion == "failure" then
    self.failed = true
    if s.phase == "main" then self.main_failed = true end
  end
  self:emit{ type = "step_end", step = r, outcome = r.outcome,
             conclusion = r.conclusion, session = s.session,
             session_id = r.session_id, elapsed = r.elapsed,
             exit_code = r.exit_code, error = why }
end

-- Timeout and continue_on_error may be expressions: evaluated once.
function Run:step_settings(s, env)
  if self.coe[s] == nil then
    local v = s.continue_on_error
    if v ~= nil then
      local ok, x = expr.expand(v, env)
      if not ok then return nil, x end
      self.coe[s] = expr.truthy(x)
    else
      self.coe[s] = false
    end
  end
  if s.timeout ~= nil and self.timeouts[s] == nil then
    local ok, x = expr.expand(s.timeout, env)
    if not ok then return nil, x end
    x = tonumber(x)
    if not x or x <= 0 then return nil, "timeout must be a positive "
                                           .. "number of seconds" end
    self.timeouts[s] = x
  end
  return true
end

-- Starts one attempt of s. Returns nothing; s is running, waiting for a
-- retry, or done.
function Run:launch(s)
  local r = self.results[s.id]
  self.attempts[s] = (self.attempts[s] or 0) + 1
  local attempt = self.attempts[s]
  if s.session then self.owner[s.session] = s end
  self.state[s] = "running"
  r.status = "running"
  r.t_start = r.t_start or self.now()
  r.started = r.started or (r.t_start - self.t0)
  self:emit{ type = "step_start", step = r, session = s.session,
             attempt = attempt }
  local vars, env, err = self:step_env(s)
  if not vars then return self:attempt_done(s, { ok = false, err = err }) end
  local ok, serr = self:step_settings(s, env)
  if not ok then
    return self:attempt_done(s, { ok = false, err = self:at(s, serr) })
  end
  local timeout = self.timeouts[s]
  local deadline = self.phase_deadline
  if s.kind == "lua" then
    if timeout then
      deadline = math.min(deadline or math.huge, self.now() + timeout)
    end
    local out = steps_mod.run_lua(s, self:ctx_for_lua(s),
      function()
        if not s.session then
          return nil, ("step '%s' uses 'session' but names none, and the "
                       .. "workflow declares several: add 'session:' to "
                       .. "the step"):format(s.id)
        end
        local ci, e = self.sessions:get(s.session, env)
        if ci then r.session_id = self.sessions:id(s.session) end
        return ci, e
      end,
      { deadline = deadline, interrupted = self.interrupted,
        now = self.now })
    return self:attempt_done(s, out)
  end
  local ci, cerr = self.sessions:get(s.session, env)
  if not ci then return self:attempt_done(s, { ok = false, err = cerr }) end
  r.session_id = self.sessions:id(s.session)
  local eok, spec = expr.expand_deep(s.spec, env)
  if not eok then
    return self:attempt_done(s, { ok = false, err = self:at(s, spec) })
  end
  if s.kind == "exec" and type(s.spec.command) == "string" and
     expr.has(s.spec.command) then
    -- split first, substitute after: a value stays one argument
    local argv, werr = words.expand(s.spec.command, env)
    if not argv then
      return self:attempt_done(s, { ok = false, err = self:at(s, werr) })
    end
    spec.command = argv
  end
  spec.working_dir = nil
  if s.working_dir then
    local wok, wd = expr.expand(s.working_dir, env)
    if not wok then
      return self:attempt_done(s, { ok = false, err = self:at(s, wd) })
    end
    spec.working_dir = expr.text(wd)
  end
  if s.kind == "stop" then return self:stop(s) end
  if s.background then
    return self:start_background(s, ci, spec, vars, env)
  end
  if s.context then
    local ctx, xerr = self.contexts:get(s, ci, vars)
    if not ctx then return self:attempt_done(s, { ok = false, err = xerr }) end
    local h = contexts_mod.start(ctx, spec.code, timeout, function(st, c)
      self:step_chunk(s, st, c)
    end)
    if h.done then return self:attempt_done(s, h) end
    h.step = s
    h.deadline = timeout and math.min(deadline or math.huge,
                                      self.now() + timeout + M.EXEC_MARGIN)
                 or deadline
    h.timeout = timeout
    self.running[#self.running + 1] = h
    return
  end
  if s.kind == "exec" or s.kind == "run" then
    spec.timeout = timeout
    if timeout then
      deadline = math.min(deadline or math.huge,
                          self.now() + timeout + M.EXEC_MARGIN)
    end
  elseif timeout then
    deadline = math.min(deadline or math.huge, self.now() + timeout)
  end
  if type(spec.command) == "table" then
    for i, a in ipairs(spec.command) do spec.command[i] = expr.text(a) end
  end
  local h = steps_mod.start(s, ci,
                            spec, (s.kind == "exec" or s.kind == "run")
                            and vars or nil, function(st, c)
                              self:step_chunk(s, st, c)
                            end)
  if h.done then return self:attempt_done(s, h) end
  h.step = s
  h.deadline = deadline
  h.timeout = timeout
  self.running[#self.running + 1] = h
end

-- Starts background step s: its process spawned, its readiness watched
-- by a monitor the scheduler polls.
function Run:start_background(s, ci, spec, vars, env)
  local ready, rerr = background.expand_ready(s, env)
  if not ready then
    return self:attempt_done(s, { ok = false, err = self:at(s, rerr) })
  end
  local mon, err = background.start(s, ci, spec, vars, ready,
    function(st, c) self:step_chunk(s, st, c) end, self.now)
  if not mon then return self:attempt_done(s, { ok = false, err = err }) end
  self.procs[s.id] = { proc = mon.proc, session = s.session }
  self.running[#self.running + 1] = { step = s, monitor = mon }
end

-- A stop step: the process of its target ended (TERM, then KILL), by a
-- stopper the scheduler polls.
function Run:stop(s)
  local p = self.procs[s.spec.target]
  if not p then       -- its step never started one
    return self:attempt_done(s, { ok = true,
                                  result = { stdout = "", stderr = "" } })
  end
  local st, out = background.stop(p.proc)
  if not st then return self:attempt_done(s, out) end
  p.stopped = true
  self.running[#self.running + 1] = { step = s, monitor = st }
end

-- The context of a lua step: what expressions see, plus env.
function Run:ctx_for_lua(s)
  local c = {}
  for k, v in pairs(self.ctx) do c[k] = v end
  local vars = self:step_env(s)
  c.env = env_view(vars or self.wenv)
  c.step = self.results[s.id]
  return c
end

-- One attempt is over: success, a retry later, or the step's end.
function Run:attempt_done(s, out)
  local r = self.results[s.id]
  for _, k in ipairs{ "stdout", "stderr", "exit_code", "duration",
                      "files", "result", "outputs", "traceback", "value",
                      "pid", "process_id" } do
    r[k] = nil
  end
  for k, v in pairs(out.result or {}) do r[k] = v end
  r.timed_out = out.timed_out or nil
  r.transfer = nil
  if out.ok and (s.kind == "upload" or s.kind == "download") then
    local ci = self:client_of(s)
    if ci and ci.transfer then r.bytes = (ci:transfer()) end
  end
  self:output_done(s)
  local timeout = self.timeouts[s]
  local why = not out.ok and out.err or nil
  if out.ok and r.exit_code ~= nil and s.kind ~= "stop" then
    local allowed = s.allowed or { [0] = true }
    if r.exit_code == 124 and timeout and not allowed[124] then
      r.timed_out = true
      why = ("timed out after %gs (exit code 124)"):format(timeout)
    elseif not allowed[r.exit_code] then
      why = ("exit code %d"):format(r.exit_code)
      local line = (r.stderr or ""):match("([^\n]*%S[^\n]*)\n?%s*$")
      if line then why = why .. ": " .. line end
    end
  elseif out.timed_out then
    why = ("timed out after %gs"):format(timeout or 0)
  end
  if out.interrupted then self.interrupt_seen = true end
  if out.interrupted or (out.cancelled and self.cancelled) then
    return self:finalize(s, "cancelled", out.cancelled and
                         "stopped by the interrupt" or why)
  end
  if not why then return self:finalize(s, "success", nil) end
  local retry = s.retry
  local n = self.attempts[s]
  if retry and n <= retry.limit and not self.cancelled then
    local delay = math.min(retry.backoff * retry.factor ^ (n - 1),
                           M.MAX_BACKOFF)
    self.state[s] = "wait"
    self.retry_at[s] = self.now() + delay
    if self.cand then self.cand[s] = true end
    r.error = why
    self:emit{ type = "step_retry", step = r, session = s.session,
               attempt = n, delay = delay, error = why }
    return
  end
  return self:finalize(s, "failure", why)
end

-- Gives up on a running handle: the job is cancelled if queued, else
-- left to finish as a zombie that keeps its session busy.
function Run:abandon(h)
  if h.monitor then
    local j = h.monitor:abandon()
    if j then self.zombies[#self.zombies + 1] = { job = j,
                                                 session = h.step.session }
    end
    return
  end
  if not h.job:cancel() then
    self.zombies[#self.zombies + 1] = { job = h.job,
                                        session = h.step.session }
  else
    pcall(h.job.result, h.job)   -- settles the session
  end
end

function Run:remove_running(h)
  for i, x in ipairs(self.running) do
    if x == h then return table.remove(self.running, i) end
  end
end

-- Handles a finished job (a step's or a zombie's).
function Run:complete(job)
  for i, z in ipairs(self.zombies) do
    if z.job == job then
      pcall(job.result, job)
      table.remove(self.zombies, i)
      return
    end
  end
  for _, h in ipairs(self.running) do
    if h.job == job then
      self:remove_running(h)
      return self:attempt_done(h.step, steps_mod.collect(h.step, h))
    end
  end
end

-- Runs the steps of one phase ("main" or "finally") to the end.
function Run:phase(nodes, phase)
  self.coe = self.coe or {}
  self.timeouts = self.timeouts or {}
  self.retry_at = self.retry_at or {}
  local maxp = self.wf.max_parallel
  -- steps worth a look: at first all of them; then the successors of
  -- each step that finishes, and those that could not start for want of
  -- a slot or a free session
  self.cand = {}
  for _, s in ipairs(nodes) do self.cand[s] = true end
  self:successors(nodes)
  if phase == "finally" and self.cancelled then
    self.phase_deadline = self.cancel_time + (self.opts.finally_timeout or
                                              M.FINALLY_TIMEOUT)
  else
    self.phase_deadline = nil
  end
  local grace_until
  while true do
    if not self.cancelled and (self.interrupted() or
                               self.caught_interrupt) then
      self.cancelled = true
      self.cancel_time = self.now()
      self:emit{ type = "interrupt" }
      self:cancel_running()
      if phase == "finally" then
        self.phase_deadline = self.cancel_time +
          (self.opts.finally_timeout or M.FINALLY_TIMEOUT)
      end
    end
    local now = self.now()
    if self.cancelled and phase == "main" then
      grace_until = grace_until or self.cancel_time +
                    (self.opts.grace or M.GRACE)
    end
    local stop_all = (grace_until and now >= grace_until) or
                     (self.phase_deadline and now >= self.phase_deadline)
    -- start what can start: every step when stopping, otherwise only the
    -- candidates, in file order
    local look = nodes
    if not ((self.cancelled and phase == "main") or stop_all) then
      look = {}
      for s in pairs(self.cand) do look[#look + 1] = s end
      table.sort(look, function(a, b) return a.index < b.index end)
    end
    for _, s in ipairs(look) do
      local st = self.state[s]
      if st == "done" or st == "running" then self.cand[s] = nil end
      if st == nil then
        if (self.cancelled and phase == "main") or stop_all then
          self:cancel_pending(s)
        elseif self.cand[s] then
          if self:preds_done(s) then
            self:consider(s, maxp)
            if self.state[s] ~= nil then self.cand[s] = nil end
          else
            self.cand[s] = nil     -- a predecessor's end wakes it again
          end
        end
      elseif st == "wait" then
        if (self.cancelled and phase == "main") or stop_all then
          self.cand[s] = nil
          self:finalize(s, "cancelled", self.results[s.id].error)
        elseif self.now() >= self.retry_at[s] and
               #self.running < maxp then
          self.cand[s] = nil
          self:launch(s)
        end
      end
    end
    -- background steps waiting to be ready, deadlines of running steps
    self:poll_monitors()
    now = self.now()
    for i = #self.running, 1, -1 do
      local h = self.running[i]
      if h.monitor and not stop_all then
        h = nil                     -- the monitor keeps its own deadline
      end
      if h == nil then
        goto next_handle
      end
      if stop_all or (h.deadline and now >= h.deadline) then
        self:remove_running(h)
        self:abandon(h)
        if stop_all then
          self:finalize(h.step, "cancelled", "stopped by the interrupt")
        else
          self:attempt_done(h.step, { ok = false, timed_out = true,
            err = ("timed out after %gs"):format(h.timeout or 0) })
        end
      end
      ::next_handle::
    end
    -- a step still to finish is running, waiting for a retry, or a
    -- candidate (a step whose predecessors are not done has one of those
    -- upstream); the full count confirms the end
    if #self.running == 0 and next(self.cand) == nil then
      local waiting = 0
      for _, s in ipairs(nodes) do
        local st = self.state[s]
        if st == nil or st == "wait" or st == "running" then
          waiting = waiting + 1
        end
      end
      if waiting == 0 then break end
      for _, s in ipairs(nodes) do     -- never expected: look at all again
        if self.state[s] == nil then self.cand[s] = true end
      end
    end
    -- wait for a job, a retry time or a deadline
    local ms = M.POLL_MS
    local jobs = {}
    for _, h in ipairs(self.running) do
      if h.monitor then
        jobs[#jobs + 1] = h.monitor:job()
        ms = math.min(ms, h.monitor:wait_hint() * 1000)
      else
        jobs[#jobs + 1] = h.job
      end
    end
    for _, z in ipairs(self.zombies) do jobs[#jobs + 1] = z.job end
    for s in pairs(self.cand) do
      if self.state[s] == "wait" then
        ms = math.min(ms, math.max(0, (self.retry_at[s] - now) * 1000))
      end
    end
    -- a step that ended within this turn (a lua step, a skip) may have
    -- made others ready: look again at once, never after a poll interval
    if self.woken then ms = 0 end
    self.woken = false
    -- one event per turn: the next turn looks at the world again
    -- Ctrl-C during the wait: agentcube.async cancels every job and
    -- raises EINTERRUPTED; the run then takes its interrupt path
    local ok, job = pcall(self.A.wait_any, jobs, math.floor(ms))
    if not ok then
      if type(job) ~= "table" or rawget(job, "code") ~= "EINTERRUPTED" then
        error(job, 0)
      end
      self.caught_interrupt, job = true, nil
    end
    if job then self:complete(job) end
    if self.reporter and self.reporter.tick then
      self:measure_transfers()
      pcall(self.reporter.tick, self.reporter, self.now() - self.t0)
    end
  end
end

-- One look at each background step waiting to be ready.
function Run:poll_monitors()
  for i = #self.running, 1, -1 do
    local h = self.running[i]
    if h.monitor then
      local out = h.monitor:poll()
      if out then
        self:remove_running(h)
        self:attempt_done(h.step, out)
      end
    end
  end
end

-- An interrupt: every running command is cancelled at once (the server
-- ends it when its request is aborted), so that the finally steps find
-- their sessions free; background steps stop waiting to be ready.
function Run:cancel_running()
  for i = #self.running, 1, -1 do
    local h = self.running[i]
    if h.monitor then
      self:remove_running(h)
      self:abandon(h)
      self:finalize(h.step, "cancelled", "stopped by the interrupt")
    elseif h.job then
      h.job:cancel()
    end
  end
end

-- The client of a step's session, once it exists (nil before).
function Run:client_of(s)
  local entry = s.session and self.sessions.byname[s.session]
  return entry and entry.ci
end

-- How far the running upload and download steps are: step.transfer =
-- { done, total } for the reporters (ci:transfer() is cheap, never raises
-- and reads counters the worker thread updates).
function Run:measure_transfers()
  for _, h in ipairs(self.running) do
    local s = h.step
    if s.kind == "upload" or s.kind == "download" then
      local ci = self:client_of(s)
      if ci and ci.transfer then
        local done, total = ci:transfer()
        self.results[s.id].transfer = { done = done, total = total }
      end
    end
  end
end

function Run:cancel_pending(s)
  self.attempts[s] = self.attempts[s] or 0
  self:finalize(s, "cancelled", "not started: the run was interrupted")
end

-- A ready step: skip it, or start it when its session and a slot are
-- free.
function Run:consider(s, maxp)
  if self.cancelled and s.phase == "finally" and
     self:zombie_on(s.session) then
    -- the abandoned step holds the session until the session is deleted
    self.attempts[s] = 0
    return self:finalize(s, "cancelled", "session '" .. s.session ..
                         "' is still busy with a step the interrupt "
                         .. "stopped")
  end
  if not self:session_free(s.session) or #self.running >= maxp then
    return
  end
  local cond = s.cond
  if cond == nil then
    cond = s.phase == "finally" and "always()" or "success()"
  end
  local ok, v = expr.condition(cond, self:expr_env(s))
  if not ok then
    self.attempts[s] = 0
    return self:finalize(s, "failure",
                         self:at(s, "in 'if': " .. v, s.cond_pos))
  end
  if not v then
    self.attempts[s] = 0
    self.state[s] = "done"
    return self:finalize(s, "skipped", nil)
  end
  return self:launch(s)
end

-- Workflow outputs, after the finally steps.
function Run:eval_outputs()
  local env = self:expr_env(nil)
  for _, o in ipairs(self.wf.outputs) do
    local ok, v = expr.expand_deep(o.value, env)
    if ok then
      self.outputs[o.name] = v
    else
      local msg = ("%s:%d:%d: output '%s': %s"):format(self.wf.file,
        o.pos.line, o.pos.col, o.name, v)
      self.output_errors[#self.output_errors + 1] = msg
      self:emit{ type = "output_error", output = o.name, error = msg }
    end
  end
end

M.Run = Run

return M
