-- agentcube.workflow.background -- `exec` steps with `background: true`,
-- and `stop` steps.
--
-- A background step spawns its command as a process of its session
-- (ci:spawn, the local runtime's background processes) and succeeds once
-- the process is ready:
--   ready.output  a text (plain, not a pattern) seen in its stdout or
--                 stderr
--   ready.probe   a command run on the session every ready.interval
--                 seconds until it exits 0 (after ready.output, when
--                 both are given)
--   neither       ready as soon as it started
-- within ready.timeout seconds. A process that exits first fails the
-- step with its exit code and output; one not ready in time is killed
-- and fails the step. The process then runs on: steps.ID.pid (inside
-- the sandbox) and steps.ID.process_id name it, a `stop: ID` step ends
-- it, and the run's end ends it unless its session outlives the run
-- (kept).
--
-- The monitor is polled by the scheduler between events, never blocks
-- for long: one output request per look, the probe as an agentcube.async
-- job when the session can run jobs.
local words = require "agentcube.workflow.words"
local expr = require "agentcube.workflow.expr"
local load_mod = require "agentcube.workflow.load"

local M = {}

M.STOP_WAIT = 5          -- seconds a stopped process gets after TERM
M.PROBE_TIMEOUT = 10     -- seconds one probe may run
M.TAIL = 4096            -- output kept to find ready.output across chunks

local function async() return load_mod.cmodule("agentcube.async") end

local function message(e)
  return require("agentcube.workflow.steps").message(e)
end

local Monitor = {}
Monitor.__index = Monitor

--- Spawns the process of background step s. spec: the expanded step
-- (command, working_dir); env: its variables; ready: the expanded ready
-- settings; on_output(stream, chunk): live output; now: the clock.
-- Returns a monitor, or nil, message.
function M.start(s, ci, spec, env, ready, on_output, now)
  local cmd = spec.command
  if type(cmd) == "string" then
    -- split like an exec step's line (its expressions are expanded)
    local argv, err = words.expand(cmd, expr.env{})
    if not argv then return nil, err end
    for i, a in ipairs(argv) do argv[i] = expr.text(a) end
    cmd = argv
  end
  local ok, proc = pcall(ci.spawn, ci, cmd, { env = env,
                                              working_dir = spec.working_dir })
  if not ok then return nil, message(proc) end
  local t = now()
  return setmetatable({
    step = s, ci = ci, proc = proc, ready = ready, on_output = on_output,
    env = env,
    now = now, offset = 0, out = { stdout = {}, stderr = {} },
    tail = { stdout = "", stderr = "" }, seen = ready.output == nil,
    deadline = t + ready.timeout, next_probe = t,
  }, Monitor)
end

-- Whether ready.output has been seen (in either stream).
function Monitor:take(stdout, stderr)
  for name, chunk in pairs{ stdout = stdout, stderr = stderr } do
    if chunk and chunk ~= "" then
      local list = self.out[name]
      list[#list + 1] = chunk
      if self.on_output then self.on_output(name, chunk) end
      if not self.seen then
        local t = self.tail[name] .. chunk
        if t:find(self.ready.output, 1, true) then self.seen = true end
        self.tail[name] = t:sub(-(M.TAIL + #self.ready.output))
      end
    end
  end
end

-- The step result so far.
function Monitor:result()
  return { pid = self.proc.pid, process_id = self.proc.id,
           stdout = table.concat(self.out.stdout),
           stderr = table.concat(self.out.stderr) }
end

function Monitor:fail(why, kill)
  if kill then pcall(self.proc.kill, self.proc, "KILL") end
  return { ok = false, err = why, result = self:result() }
end

--- The job this monitor waits for (a probe), or nil.
function Monitor:job()
  return self.probe_job
end

-- What the last failed probe said, for the message of a timeout.
function Monitor:probe_failed(ok, r)
  if not ok then
    self.last_probe = message(r)
  else
    local line = (r.stderr or ""):match("([^\n]*%S[^\n]*)\n?%s*$")
    self.last_probe = ("exit code %s%s"):format(tostring(r.exit_code),
                                                line and ": " .. line or "")
  end
end

-- The outcome of a probe: true when it exited 0.
local function probe_passed(ok, r)
  return ok and type(r) == "table" and r.exit_code == 0
end

--- One look: nil while waiting, or the attempt's outcome
-- ({ ok =, result =, err = }).
function Monitor:poll()
  local j = self.probe_job
  if j then
    local st = j:state()
    if st ~= "done" and st ~= "cancelled" then return nil end
    self.probe_job = nil
    local ok, r = j:result()
    if probe_passed(ok, r) then return self:ready_now() end
    self:probe_failed(ok, r)
  end
  -- new output (and whether the process ended)
  local ok, o = pcall(self.ci._ext, self.ci, "process_output",
                      { id = self.proc.id, offset = self.offset })
  if not ok then return self:fail(message(o), true) end
  o = require("cjson").decode(o)
  self:take(o.stdout, o.stderr)
  self.offset = math.tointeger(o.next_offset) or self.offset
  if self.ready.output and self.seen and not self.ready.probe then
    return self:ready_now()
  end
  if type(o.exit) == "table" then
    local code = math.tointeger(o.exit.exit_code)
    local why = ("the background process %s before it was ready"):format(
      code and ("exited with code %d"):format(code) or "ended")
    local line = table.concat(self.out.stderr):match(
      "([^\n]*%S[^\n]*)\n?%s*$")
    if line then why = why .. ": " .. line end
    local out = self:fail(why)
    out.result.exit_code = code
    return out
  end
  if not self.ready.output and not self.ready.probe and self:started() then
    return self:ready_now()
  end
  local now = self.now()
  if now >= self.deadline then
    local why = not self.seen and
                (": '" .. self.ready.output .. "' not seen in its output")
                or self.last_probe and (": the probe failed, last with "
                                        .. self.last_probe) or ""
    return self:fail(("not ready after %gs%s"):format(self.ready.timeout,
                                                      why), true)
  end
  if self.seen and self.ready.probe and now >= self.next_probe then
    self.next_probe = now + self.ready.interval
    return self:probe()
  end
  return nil
end

-- Starts one probe, a job the next looks collect.
function Monitor:probe()
  local ok, j = pcall(async().submit, self.ci, "exec", {
    command = self.ready.probe_argv, env = self.env,
    timeout = math.min(M.PROBE_TIMEOUT, self.ready.timeout) })
  if not ok then return self:fail("probe: " .. message(j), true) end
  self.probe_job = j
  return nil
end

-- Whether the sandbox has started the process (its pid is known: the
-- spawn's answer may come before the sandbox reported it).
function Monitor:started()
  local p = math.tointeger(self.proc.pid)
  if p and p > 0 then return true end
  local ok, rec = pcall(self.ci._ext, self.ci, "process_get",
                        { id = self.proc.id })
  if ok then
    p = math.tointeger(require("cjson").decode(rec).pid)
    if p and p > 0 then
      self.proc.pid = p
      return true
    end
  end
  return false
end

function Monitor:ready_now()
  self:started()
  return { ok = true, result = self:result(), ready = true }
end

--- Gives up waiting (an interrupt): a running probe is left to finish.
function Monitor:abandon()
  local j = self.probe_job
  self.probe_job = nil
  if j and not j:cancel() then return j end
  return nil
end

--- When the monitor next needs a look, in seconds from now.
function Monitor:wait_hint()
  if self.probe_job then return 0.1 end
  return math.min(self.ready.interval, math.max(0, self.deadline -
                                                   self.now()))
end

--- Expands the ready settings of s in env: { output, probe_argv,
-- interval, timeout } or nil, message.
function M.expand_ready(s, env)
  local r = s.ready
  local out = { interval = r.interval, timeout = r.timeout,
                probe = r.probe }
  if r.output then
    local ok, x = expr.expand(r.output, env)
    if not ok then return nil, x end
    out.output = expr.text(x)
    if out.output == "" then return nil, "ready.output expands to ''" end
  end
  if r.probe then
    local argv, err = words.expand(r.probe, env)
    if not argv then return nil, err end
    for i, a in ipairs(argv) do argv[i] = expr.text(a) end
    out.probe_argv = argv
  end
  return out
end

-- ---------------------------------------------------------------------
-- stop steps

local Stopper = {}
Stopper.__index = Stopper

-- Sends sig and waits (a job) up to STOP_WAIT seconds for the end. A
-- process that already ended refuses the signal: its wait says so.
function Stopper:signal(sig)
  pcall(self.proc.kill, self.proc, sig)
  local ok, j = pcall(async().submit, self.proc, "wait",
                      { timeout = M.STOP_WAIT })
  if not ok then return { ok = false, err = message(j) } end
  self.wait_job = j
  return nil
end

--- Ends proc: TERM, then KILL when it still runs after STOP_WAIT
-- seconds. Returns a stopper the scheduler polls like a monitor, or the
-- outcome at once.
function M.stop(proc)
  local st = setmetatable({ proc = proc }, Stopper)
  local out = st:signal("TERM")
  if out then return nil, out end
  return st
end

function Stopper:job()
  return self.wait_job
end

function Stopper.wait_hint()
  return 0.1
end

function Stopper:poll()
  local j = self.wait_job
  local state = j and j:state()
  if state ~= "done" and state ~= "cancelled" then return nil end
  self.wait_job = nil
  local ok, r = j:result()
  if not ok then return { ok = false, err = message(r) } end
  if r.state == "running" and not self.killed then
    self.killed = true
    return self:signal("KILL")
  end
  return { ok = true, result = { exit_code = r.exit_code,
           stdout = r.stdout or "", stderr = r.stderr or "" } }
end

function Stopper:abandon()
  local j = self.wait_job
  self.wait_job = nil
  if j then j:cancel() end
  return nil
end

return M
