-- agentcube.workflow -- the workflow engine's entry point.
--
--   local workflow = require "agentcube.workflow"
--   local code, report = workflow.run("etl.yaml", {
--     set = { csv = "data.csv" },    -- inputs (strings are converted)
--     json = false,                  -- print the JSON report on output
--     keep = false,                  -- keep every session at the end
--     verbose = false,               -- stream each step's output, line
--                                    -- by line (step_output events)
--     reporter = nil,                -- an object with :event(ev)
--     client_options = {},           -- CodeInterpreterClient options
--     interrupted = function() return false end,  -- asked between events
--     output = io.stdout, errors = io.stderr, tty = nil,
--     grace = 5, finally_timeout = 30,  -- seconds, after an interrupt
--     args = {},                     -- `arg` of a plain Lua script
--   })
--   local ok, err = workflow.check("etl.yaml")
--
-- run returns the exit code (0 success, 1 a step failed, 2 invalid
-- workflow or inputs, 130 interrupted) and the report table (what --json
-- prints). check validates without creating anything: true (and a note
-- for plain Lua scripts) or nil, "FILE:LINE:COL: message" lines.
local load_mod = require "agentcube.workflow.load"
local validate = require "agentcube.workflow.validate"
local expr = require "agentcube.workflow.expr"
local report = require "agentcube.workflow.report"

local M = {}

M.report = report
M.reporters = { plain = report.plain, live = report.live,
                collect = report.collect }

-- path -> workflow or nil, message; style "yaml" | "lua".
-- For Lua files, `value` is what the file returned (already evaluated).
local function validate_value(path, value, marks, text, is_lua)
  return validate.validate(value, { file = path, marks = marks,
                                    source = text, is_lua = is_lua })
end

--- Loads and validates a YAML workflow, or evaluates a Lua one for
-- checking. Returns wf; or "script" for a plain Lua script; or nil,
-- message.
function M.load(path)
  local text, err = load_mod.read(path)
  if not text then return nil, err end
  if load_mod.is_lua(path) then
    local style, value = load_mod.eval_lua_check(text, path)
    if not style then return nil, value end
    if style == "script" then return "script" end
    return validate_value(path, value, nil, text, true)
  end
  local value, marks = load_mod.yaml(text, path)
  if value == nil then return nil, marks end
  return validate_value(path, value, marks, text, false)
end

--- Validates path without running anything.
function M.check(path)
  local wf, err = M.load(path)
  if not wf then return nil, err end
  if wf == "script" then return true, "plain Lua script: syntax ok" end
  return true
end

local to_bool = validate.to_bool

--- The input values of wf: declared defaults, overridden by set.
-- Returns inputs, or nil, message.
function M.inputs(wf, set)
  local values = {}
  for name in pairs(set or {}) do
    if not wf.inputs.byname[name] then
      local names = {}
      for _, i in ipairs(wf.inputs.list) do names[#names + 1] = i.name end
      return nil, ("%s: unknown input '%s' (%s)"):format(wf.file,
        tostring(name), #names > 0 and "inputs: " ..
        table.concat(names, ", ") or "the workflow declares none")
    end
  end
  -- defaults may use ${{ workflow.* }} and ${{ env.* }}
  local denv = expr.env{
    workflow = { name = wf.name, file = wf.file,
                 dir = wf.file:match("^(.*)/[^/]*$") or "." },
    env = setmetatable({}, { __index = function(_, k)
      return type(k) == "string" and os.getenv(k) or nil
    end }),
  }
  for _, i in ipairs(wf.inputs.list) do
    local v = set and set[i.name]
    if v == nil and i.default ~= nil then
      local ok, x = expr.expand_deep(i.default, denv)
      if not ok then
        return nil, ("%s:%d:%d: default of input '%s': %s"):format(
          wf.file, i.pos.line, i.pos.col, i.name, x)
      end
      v = x
    end
    if v == nil then
      if i.required then
        return nil, ("%s:%d:%d: input '%s' is required: give it with "
                     .. "--set %s=VALUE"):format(wf.file, i.pos.line,
                     i.pos.col, i.name, i.name)
      end
      v = expr.null
    elseif i.type == "number" then
      local n = tonumber(v)
      if not n then
        return nil, ("%s: input '%s' must be a number, not '%s'"):format(
          wf.file, i.name, tostring(v))
      end
      v = n
    elseif i.type == "boolean" then
      local b = to_bool(v)
      if b == nil then
        return nil, ("%s: input '%s' must be true or false, not '%s'")
                    :format(wf.file, i.name, tostring(v))
      end
      v = b
    elseif i.type == "string" then
      v = expr.text(v)
    end
    values[i.name] = v
  end
  return values
end

local function is_tty(opts)
  if opts.tty ~= nil then return opts.tty end
  if opts.output and opts.output ~= io.stdout then return false end
  local ok = os.execute("test -t 1 2>/dev/null")
  return ok == true
end

local function choose_reporter(opts, out)
  if opts.reporter then return opts.reporter end
  if opts.json then
    return opts.verbose and report.plain(opts.errors or io.stderr,
                                         opts) or nil
  end
  if is_tty(opts) then return report.live(out, opts) end
  return report.plain(out, opts)
end

-- The end of a plain Lua script (it already ran) as an exit code and a
-- report: 0, 1 for an error, 130 when it was interrupted.
local function script_end(path, ok, err, opts)
  local code = 0
  if not ok then
    local interrupted = (type(err) == "table" and
                         rawget(err, "code") == "EINTERRUPTED") or
                        (opts.interrupted and opts.interrupted())
    code = interrupted and 130 or 1
    ;(opts.errors or io.stderr):write(report.shown(path .. ": " ..
                                                  tostring(err)), "\n")
  end
  return code, { file = path, kind = "script", exit_code = code,
                 status = code == 0 and "success" or code == 130 and
                 "interrupted" or "failure",
                 error = not ok and tostring(err) or nil, steps = {} }
end

--- Runs the workflow at path. See the top of this file.
function M.run(path, opts)
  opts = opts or {}
  local out = opts.output or io.stdout
  local errout = opts.errors or io.stderr
  local function invalid(msg)
    local rep = report.invalid(path, msg)
    if opts.json then
      out:write(report.encode(rep), "\n")
    else
      errout:write(report.shown(msg), "\n")
    end
    return 2, rep
  end
  local text, err = load_mod.read(path)
  if not text then return invalid(err) end
  local wf
  if load_mod.is_lua(path) then
    local env = load_mod.strict_env(_G, opts.args or {})
    local chunk, cerr = load_mod.compile_lua(text, path, env)
    if not chunk then return invalid(cerr) end
    -- a table-style file only builds a table; a plain script runs here
    local res = table.pack(xpcall(chunk, function(e)
      if type(e) == "table" then return e end
      -- the script's frames; the engine's own (from this xpcall out)
      -- say nothing to its author
      local tb = debug.traceback(tostring(e), 2)
      return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
    end))
    if not (res[1] and type(res[2]) == "table") then
      return script_end(path, res[1], res[2], opts)
    end
    local verr
    wf, verr = validate_value(path, res[2], nil, text, true)
    if not wf then return invalid(verr) end
  else
    local value, marks = load_mod.yaml(text, path)
    if value == nil then return invalid(marks) end
    local verr
    wf, verr = validate_value(path, value, marks, text, false)
    if not wf then return invalid(verr) end
  end
  local inputs, ierr = M.inputs(wf, opts.set)
  if not inputs then return invalid(ierr) end
  local run = require "agentcube.workflow.run"
  local code, r = run.execute(wf, {
    inputs = inputs, reporter = choose_reporter(opts, out),
    client_options = opts.client_options, keep = opts.keep,
    interrupted = opts.interrupted, grace = opts.grace,
    finally_timeout = opts.finally_timeout, verbose = opts.verbose,
    errors = errout,
  })
  local rep = report.build(r)
  if opts.json then out:write(report.encode(rep), "\n") end
  return code, rep
end

return M
