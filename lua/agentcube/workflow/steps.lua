-- agentcube.workflow.steps -- what each step kind does.
--
-- start(...) begins one attempt and returns a handle: either finished at
-- once ({ done = true, ok =, result = | err = }) or running as a job
-- ({ job = agentcube.async job }); collect(handle) turns a finished job
-- into { ok =, result = | err = }. Sandbox operations go through
-- agentcube.async so that steps on different sessions overlap, their
-- output streamed to callbacks while they run. `lua` steps run here,
-- on the calling thread, with the workflow context.
local expr = require "agentcube.workflow.expr"
local load_mod = require "agentcube.workflow.load"
local hooked = require "agentcube.workflow.hooked"

local M = {}

local function async() return load_mod.cmodule("agentcube.async") end

-- Text for an error value (agentcube.Error tables have __tostring).
local function message(e)
  if type(e) == "table" then
    local m = rawget(e, "message")
    if type(m) == "string" then
      local code = rawget(e, "code")
      return code and (code .. ": " .. m) or m
    end
  end
  return tostring(e)
end
M.message = message

local function file_names(files)
  local names = {}
  for i, f in ipairs(files) do names[i] = tostring(f.name) end
  return table.concat(names, "\n")
end

-- The arguments of an async job for a prepared step.
local function job_args(step, spec, env)
  local k = step.kind
  if k == "exec" then
    return "exec", { command = spec.command, env = env,
                     working_dir = spec.working_dir,
                     timeout = spec.timeout }
  elseif k == "run" then
    return "run_code", { language = spec.language, code = spec.code,
                         env = env, timeout = spec.timeout }
  elseif k == "write" then
    return "write", { content = spec.content, path = spec.path }
  elseif k == "upload" or k == "download" then
    return k, { from = spec.from, to = spec.to }
  elseif k == "list" then
    return "list", { path = spec.path }
  end
  error("no job for a " .. k .. " step")
end

-- Shapes a raw operation result into step result fields.
local function shape(kind, r)
  if kind == "list" then
    return { files = r, stdout = file_names(r) }
  end
  if kind == "exec" or kind == "run" then
    return { stdout = r.stdout, stderr = r.stderr, exit_code = r.exit_code,
             duration = r.duration }
  end
  return {}
end

--- Begins one attempt of a sandbox step (not lua). spec is expanded;
-- env the variables for the command (or nil); on_output(stream, chunk)
-- gets exec and run output while it runs (the callbacks are called
-- inside agentcube.async.wait_any, on this thread). Returns a handle.
function M.start(step, ci, spec, env, on_output)
  local op, a = job_args(step, spec, env)
  local A = async()
  if on_output and (op == "exec" or op == "run_code") then
    a.on_stdout = function(c) on_output("stdout", c) end
    a.on_stderr = function(c) on_output("stderr", c) end
  end
  local ok, job = pcall(A.submit, ci, op, a)
  if not ok then return { done = true, ok = false, err = message(job) } end
  return { job = job }
end

--- The outcome of a finished job handle: { ok =, result =, err = }.
function M.collect(step, handle)
  local job = handle.job
  local ok, r = job:result()
  if not ok then
    -- a job cancelled (queued, or aborted while it ran) by an interrupt
    local code = type(r) == "table" and rawget(r, "code")
    return { ok = false, err = message(r), cancelled =
             job:state() == "cancelled" or code == "ECANCELED",
             -- Ctrl-C during a wait ends the jobs: the run is interrupted
             interrupted = code == "EINTERRUPTED" }
  end
  if handle.context then
    return require("agentcube.workflow.contexts").outcome(r, handle.timeout)
  end
  return { ok = true, result = shape(step.kind, r) }
end

-- ---------------------------------------------------------------------
-- lua steps

local STOP = setmetatable({}, { __tostring = function() return "stop" end })

-- Runs fn() with a count hook that raises once deadline passes or the
-- run is interrupted; it fires again and again, so a pcall inside user
-- code cannot swallow it for good.
local function guarded(fn, deadline, interrupted, now)
  local reason
  local function watch()
    if deadline and now() > deadline then
      reason = "timed out"
      error(STOP, 0)
    end
    if interrupted() then
      reason = "interrupted"
      error(STOP, 0)
    end
  end
  local trace
  local res = table.pack(pcall(hooked.run, watch, "", 1000, xpcall, fn,
                               function(e)
    if e == STOP then return e end
    trace = M.user_traceback(debug.traceback("", 2))
    return message(e)
  end))
  if res[1] then
    res = table.pack(table.unpack(res, 2, res.n))       -- xpcall's results
  elseif res[2] == hooked.YIELDED then
    -- the step's code left its xpcall by yielding: a failure of the step,
    -- not of the run
    return false, "a lua step cannot yield (coroutine.yield outside a "
                  .. "coroutine of its own)"
  end
  if not res[1] and (res[2] == STOP or reason) then
    return false, reason or "stopped", reason
  end
  if not res[1] then return false, res[2], nil, trace end
  return table.unpack(res, 1, res.n)
end

--- The user's frames of a traceback taken inside a lua step: the engine's
-- own frames (from the xpcall that runs the step outwards) say nothing
-- to the workflow's author. Returns the frames, one per line, or nil.
function M.user_traceback(tb)
  local lines = {}
  for l in tb:gmatch("[^\n]+") do
    if l:find("in function 'xpcall'", 1, true) then break end
    if l:match("^%s") and not l:find("(...tail calls...)", 1, true) then
      lines[#lines + 1] = l:gsub("^%s+", "")
    end
  end
  return #lines > 0 and table.concat(lines, "\n") or nil
end

--- Runs a lua step. ctx: the context table (inputs, steps, sessions,
-- env, workflow; session is resolved lazily through get_session).
-- Returns { ok =, result = | err =, timed_out = }.
function M.run_lua(step, ctx, get_session, opts)
  local out = {}
  local function log(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = expr.text(parts[i]) end
    out[#out + 1] = table.concat(parts, "\t", 1, parts.n)
  end
  local view = {}
  for k, v in pairs(ctx) do view[k] = v end
  view.log = log
  for k, v in pairs(expr.BUILTINS) do
    if view[k] == nil and k ~= "string" and k ~= "math" and k ~= "table"
       and k ~= "utf8" then
      view[k] = v
    end
  end
  local lazy = setmetatable(view, { __index = function(_, k)
    if k == "session" then
      local ci, err = get_session()
      if not ci then error(err, 0) end
      rawset(view, "session", ci)
      return ci
    end
    return nil
  end })
  local fn
  if step.spec.fn then
    local f = step.spec.fn
    fn = function() return f(lazy) end
  else
    local env = load_mod.strict_env(setmetatable({ print = log }, {
      __index = function(_, k)
        local v = lazy[k]
        if v ~= nil then return v end
        return _G[k]
      end }))
    local chunk, err = load(string.rep("\n", step.code_line or 0) ..
                            step.spec.code, "@" .. step.file, "t", env)
    if not chunk then return { ok = false, err = err } end
    fn = chunk
  end
  local res = table.pack(guarded(fn, opts.deadline, opts.interrupted,
                                 opts.now))
  local stdout = table.concat(out, "\n") .. (#out > 0 and "\n" or "")
  if not res[1] then
    return { ok = false, err = message(res[2]), timed_out = res[3] ==
             "timed out", interrupted = res[3] == "interrupted",
             result = { stdout = stdout, traceback = res[4] } }
  end
  local v = res[2]
  return { ok = true, result = { result = v, stdout = stdout,
           outputs = type(v) == "table" and v or nil } }
end

return M
