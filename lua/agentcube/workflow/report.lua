-- agentcube.workflow.report -- progress reporters and the JSON report.
--
-- A reporter is any object with :event(ev) (and optionally :tick(t),
-- called while the scheduler waits). Events, each with `time` (seconds
-- since the run started):
--   workflow_start { workflow, file, steps }
--   session_created / session_attached / session_kept /
--   session_deleted { session, session_id [, error] }
--   step_start { step, session, attempt }
--   step_retry { step, session, attempt, delay, error }
--   step_end { step, outcome, conclusion, session, session_id, elapsed,
--              exit_code, error }
--   step_output { step, stream ("stdout" | "stderr"), line }   (verbose
--              runs: one whole line of a step's output, as it comes)
--   output_error { output, error }      interrupt {}
--   workflow_end { workflow, exit_code, elapsed, outputs, errors }
-- where `step` is the step's live result table (id, name, kind, stdout,
-- stderr, ...).
--
-- plain(out): one line per event. live(out): one line per step, redrawn
-- in place with ANSI escapes (for a terminal). build(run) and encode()
-- make the --json report.
local expr = require "agentcube.workflow.expr"

local M = {}

local function fmt_time(t) return ("%.2fs"):format(t or 0) end

--- Text from a sandbox, a server or a workflow, made safe to show a
-- person: control characters (escape sequences that retitle a window,
-- write the clipboard, move the cursor or erase lines; a carriage return
-- that overwrites a line) become visible \xHH escapes, C1 controls too.
-- Newlines and tabs stay. The --json report and files keep the bytes.
function M.shown(s)
  if type(s) ~= "string" then return s end
  s = s:gsub("[%z\1-\8\11-\31\127]", function(c)
    return ("\\x%02x"):format(c:byte())
  end)
  return (s:gsub("\194([\128-\159])", function(c)
    return ("\\u%04x"):format(c:byte())
  end))
end
local shown = M.shown

--- 1536 -> "1.5 KiB".
function M.bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

-- "12.0 MiB / 40.0 MiB 30% 6.1 MiB/s" for a transfer under way, or the
-- final "40.0 MiB at 6.2 MiB/s" (done only).
local function transfer_text(done, total, seconds)
  local rate = seconds and seconds > 0 and
               (" " .. M.bytes(done / seconds) .. "/s") or ""
  if total then
    return ("%s / %s %d%%%s"):format(M.bytes(done), M.bytes(total),
      total > 0 and math.floor(100 * done / total) or 100, rate)
  end
  return M.bytes(done) .. (rate ~= "" and " at" .. rate or "")
end
M.transfer_text = transfer_text

local function indent(s, prefix)
  s = s:gsub("\n$", "")
  return prefix .. s:gsub("\n", "\n" .. prefix)
end

local function outputs_lines(outputs)
  local names, lines = {}, {}
  for k in pairs(outputs or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = expr.text(outputs[k]):gsub("\n$", "")
    if v:find("\n") then
      lines[#lines + 1] = "  " .. k .. ":\n" .. indent(v, "    ")
    else
      lines[#lines + 1] = "  " .. k .. " = " .. v
    end
  end
  return lines
end

-- ---------------------------------------------------------------------
-- plain

local Plain = {}
Plain.__index = Plain

--- One line per event on out (default io.stdout). opts.verbose adds
-- each step's output, line by line as it comes: "ID | line" for stdout,
-- "ID ! line" for stderr.
function M.plain(out, opts)
  opts = opts or {}
  return setmetatable({ out = out or io.stdout, verbose = opts.verbose },
                      Plain)
end

function Plain:line(ev, fmt, ...)
  self.out:write(("[%8.2f] "):format(ev.time or 0), shown(fmt:format(...)),
                 "\n")
  if self.out.flush then self.out:flush() end
end

local WORD = { success = "ok", failure = "FAIL", skipped = "skip",
               cancelled = "cancel" }

function Plain:event(ev)
  local t = ev.type
  if t == "workflow_start" then
    self:line(ev, "workflow %s (%s): %d step%s", ev.workflow, ev.file,
              ev.steps, ev.steps == 1 and "" or "s")
  elseif t == "session_created" or t == "session_attached" or
         t == "session_kept" then
    self:line(ev, "session %s %s: %s", ev.session, t:match("_(%w+)$"),
              ev.session_id or "?")
  elseif t == "session_deleted" then
    self:line(ev, "session %s deleted%s", ev.session,
              ev.error and (" (failed: " .. ev.error .. ")") or "")
  elseif t == "step_start" then
    self:line(ev, "start  %-16s %s%s", ev.step.id, ev.session,
              ev.attempt > 1 and (" (attempt " .. ev.attempt .. ")") or "")
  elseif t == "step_retry" then
    self:line(ev, "retry  %-16s in %gs: %s", ev.step.id, ev.delay,
              ev.error or "failed")
  elseif t == "step_end" then
    local r = ev.step
    local extra = ""
    if ev.outcome == "failure" then
      extra = "  " .. (ev.error or "failed")
      if ev.conclusion == "success" then
        extra = extra .. " (continue_on_error)"
      end
    end
    if r.bytes and ev.outcome == "success" then
      extra = "  " .. transfer_text(r.bytes, nil, ev.elapsed)
    end
    self:line(ev, "%-6s %-16s %s%s%s", WORD[ev.outcome] or ev.outcome,
              r.id, ev.session or "", ev.outcome == "skipped" and "" or
              " " .. fmt_time(ev.elapsed), extra)
    -- verbose runs showed the output line by line already
    if self.verbose or (ev.outcome == "failure" and
                        ev.conclusion == "failure") then
      if r.stderr and r.stderr ~= "" and not self.verbose then
        self.out:write(shown(indent(r.stderr, "    ! ")), "\n")
      end
      if r.traceback and self.verbose then
        self.out:write(shown(indent(r.traceback, "    at ")), "\n")
      end
    end
  elseif t == "step_output" then
    self:line(ev, "%s %s %s", ev.step.id, ev.stream == "stderr" and "!" or
              "|", ev.line)
  elseif t == "output_error" then
    self:line(ev, "error  %s", ev.error)
  elseif t == "interrupt" then
    self:line(ev, "interrupted: stopping")
  elseif t == "workflow_end" then
    local lines = outputs_lines(ev.outputs)
    if #lines > 0 then
      self.out:write("outputs:\n", shown(table.concat(lines, "\n")), "\n")
    end
    self:line(ev, "%s: exit %d in %s", ev.exit_code == 0 and "done" or
              ev.exit_code == 130 and "interrupted" or "failed",
              ev.exit_code, fmt_time(ev.elapsed))
  end
end

-- ---------------------------------------------------------------------
-- live

local Live = {}
Live.__index = Live

local UTF8 = { ok = "\226\156\147", fail = "\226\156\151",
               spin = { "\226\160\139", "\226\160\153", "\226\160\185",
                        "\226\160\184", "\226\160\188", "\226\160\180",
                        "\226\160\166", "\226\160\167", "\226\160\135",
                        "\226\160\143" },
               skip = "-", cancel = "!", retry = "\226\134\187" }
local ASCII = { ok = "+", fail = "x", spin = { "|", "/", "-", "\\" },
                skip = "-", cancel = "!", retry = "r" }

--- One line per step on out, updated in place (ANSI). opts: columns
-- (default $COLUMNS or 80), ascii (no UTF-8 symbols), verbose.
function M.live(out, opts)
  opts = opts or {}
  local lang = (os.getenv("LC_ALL") or os.getenv("LC_CTYPE") or
                os.getenv("LANG") or ""):lower()
  local utf = not opts.ascii and (lang:find("utf%-?8") ~= nil)
  return setmetatable({
    out = out or io.stdout, rows = {}, byid = {}, drawn = 0,
    cols = opts.columns or tonumber(os.getenv("COLUMNS") or "") or 80,
    sym = utf and UTF8 or ASCII, frame = 0, last = -1, now = 0,
    verbose = opts.verbose, notes = {},
  }, Live)
end

-- Cuts s to n characters (UTF-8 aware), so that no row wraps and the
-- cursor arithmetic stays right.
local function cut(s, n)
  if utf8.len(s) and utf8.len(s) > n then
    return s:sub(1, (utf8.offset(s, n) or (n + 1)) - 1)
  end
  return s
end

function Live:row_text(row)
  local r, sym = row.r, self.sym
  local mark, tail
  if row.state == "running" then
    mark = sym.spin[self.frame % #sym.spin + 1]
    tail = fmt_time(self.now - row.t0)
    if r.transfer then
      tail = tail .. "  " .. transfer_text(r.transfer.done, r.transfer.total,
                                           self.now - row.t0)
    end
    if row.attempt and row.attempt > 1 then
      tail = tail .. " (attempt " .. row.attempt .. ")"
    end
  elseif row.state == "retry" then
    mark = sym.retry
    tail = ("retry in %gs: %s"):format(row.delay, row.error or "")
  elseif row.outcome == "success" then
    mark, tail = sym.ok, fmt_time(row.elapsed)
    if r.bytes then
      tail = tail .. "  " .. transfer_text(r.bytes, nil, row.elapsed)
    end
  elseif row.outcome == "failure" then
    mark = row.conclusion == "success" and sym.skip or sym.fail
    tail = fmt_time(row.elapsed) .. "  " .. (row.error or "failed") ..
           (row.conclusion == "success" and " (continue_on_error)" or "")
  elseif row.outcome == "skipped" then
    mark, tail = sym.skip, "skipped"
  else
    mark, tail = sym.cancel, row.outcome or ""
  end
  local color = ({ success = "32", failure = "31", cancelled = "33" })
                [row.outcome or ""] or "36"
  local text = cut(("%s %-18s %-10s %s"):format(mark, shown(r.id),
                                                 shown(r.session or ""),
                                                 shown(tail)), self.cols - 1)
  return "\27[" .. color .. "m" .. text:sub(1, #mark) .. "\27[0m" ..
         text:sub(#mark + 1)
end

function Live:draw()
  local buf = {}
  if self.drawn > 0 then buf[#buf + 1] = ("\27[%dF"):format(self.drawn) end
  for _, note in ipairs(self.notes) do
    buf[#buf + 1] = "\27[2K" .. note .. "\n"
  end
  self.notes = {}
  for _, row in ipairs(self.rows) do
    buf[#buf + 1] = "\27[2K" .. self:row_text(row) .. "\n"
  end
  self.drawn = #self.rows
  self.out:write(table.concat(buf))
  if self.out.flush then self.out:flush() end
end

-- A line printed above the step rows (it scrolls away with the rest).
function Live:note(s)
  self.notes[#self.notes + 1] = cut(s, self.cols - 1)
end

function Live:event(ev)
  self.now = ev.time or self.now
  local t = ev.type
  if t == "workflow_start" then
    self:note(("\27[1m%s\27[0m  %s"):format(shown(ev.workflow),
                                                shown(ev.file)))
  elseif t == "step_start" then
    local row = self.byid[ev.step.id]
    if not row then
      row = { r = ev.step }
      self.byid[ev.step.id] = row
      self.rows[#self.rows + 1] = row
    end
    row.state, row.t0, row.attempt = "running", ev.time, ev.attempt
  elseif t == "step_retry" then
    local row = self.byid[ev.step.id]
    row.state, row.delay, row.error = "retry", ev.delay, ev.error
  elseif t == "step_end" then
    local row = self.byid[ev.step.id]
    if not row then
      row = { r = ev.step }
      self.byid[ev.step.id] = row
      self.rows[#self.rows + 1] = row
    end
    row.state, row.outcome, row.conclusion = "done", ev.outcome,
                                            ev.conclusion
    row.elapsed, row.error = ev.elapsed, ev.error
  elseif t == "step_output" then
    self:note(shown(("%s %s %s"):format(ev.step.id, ev.stream == "stderr"
                                        and "!" or "|", ev.line)))
  elseif t == "interrupt" then
    self:note("interrupted: stopping")
  elseif t == "output_error" then
    self.errors = self.errors or {}
    self.errors[#self.errors + 1] = ev.error
  elseif t == "workflow_end" then
    self:draw()
    local out = {}
    for _, row in ipairs(self.rows) do
      local r = row.r
      if (row.outcome == "failure" and row.conclusion == "failure") or
         self.verbose then
        if r.stderr and r.stderr ~= "" and not self.verbose then
          out[#out + 1] = r.id .. " stderr:\n" .. indent(r.stderr, "  ! ")
        end
        if self.verbose and r.traceback then
          out[#out + 1] = r.id .. " traceback:\n" ..
                          indent(r.traceback, "  at ")
        end
      end
    end
    for _, e in ipairs(self.errors or {}) do out[#out + 1] = e end
    local lines = outputs_lines(ev.outputs)
    if #lines > 0 then out[#out + 1] = "outputs:\n" ..
                                        table.concat(lines, "\n") end
    out[#out + 1] = ("%s in %s (exit %d)"):format(
      ev.exit_code == 0 and "done" or ev.exit_code == 130 and
      "interrupted" or "failed", fmt_time(ev.elapsed), ev.exit_code)
    self.out:write(shown(table.concat(out, "\n")), "\n")
    if self.out.flush then self.out:flush() end
    return
  else
    return        -- session events show in the rows' session column
  end
  self:draw()
end

-- While steps run: advance the spinner and the clocks, 5 times a second.
function Live:tick(t)
  self.now = t
  if t - self.last >= 0.2 then
    self.last = t
    self.frame = self.frame + 1
    self:draw()
  end
end

--- A reporter that collects events (for tests and embedders).
function M.collect()
  local c = { events = {} }
  function c:event(ev)
    local copy = {}
    for k, v in pairs(ev) do copy[k] = v end
    if type(ev.step) == "table" then copy.id = ev.step.id end
    self.events[#self.events + 1] = copy
  end
  return c
end

-- ---------------------------------------------------------------------
-- JSON

M.MAX_TEXT = 65536

-- Tables to encode as JSON arrays even when empty.
local ARRAY = setmetatable({}, { __mode = "k" })
local function array(t)
  ARRAY[t] = true
  return t
end
M.array = array


-- A JSON-safe copy: functions and userdata (but null) become text,
-- depth and text size bounded.
local function sanitize(v, depth)
  local t = type(v)
  if v == expr.null or t == "number" or t == "boolean" or v == nil then
    return v
  end
  if t == "string" then
    if #v > M.MAX_TEXT then return v:sub(1, M.MAX_TEXT) end
    return v
  end
  if t ~= "table" or depth > 20 then return tostring(v) end
  local out = {}
  if ARRAY[v] then ARRAY[out] = true end
  for k, x in pairs(v) do
    if type(k) == "string" or math.type(k) == "integer" then
      out[k] = sanitize(x, depth + 1)
    end
  end
  return out
end
M.sanitize = sanitize

-- Seconds to the millisecond.
local function ms(t)
  return t and math.floor(t * 1000 + 0.5) / 1000 or nil
end

local function step_report(r)
  local truncated = (r.stdout and #r.stdout > M.MAX_TEXT) or
                    (r.stderr and #r.stderr > M.MAX_TEXT)
  return {
    id = r.id, name = r.name, kind = r.kind, session = r.session,
    session_id = r.session_id, outcome = r.outcome or "pending",
    conclusion = r.conclusion or "pending", exit_code = r.exit_code,
    bytes = r.bytes,
    attempts = r.attempts, started = ms(r.started),
    duration = ms(r.elapsed),
    error = r.error, timed_out = r.timed_out, stdout = sanitize(r.stdout, 0),
    stderr = sanitize(r.stderr, 0),
    files = r.files and array(sanitize(r.files, 0)) or nil,
    outputs = sanitize(r.outputs, 0), value = sanitize(r.value, 0),
    pid = r.pid, process_id = r.process_id,
    result = type(r.result) ~= "table" and sanitize(r.result, 0) or nil,
    truncated = truncated or nil,
  }
end

--- The report of a finished run (run.lua's Run) as plain tables.
function M.build(run)
  local wf = run.wf
  local rep = {
    workflow = wf.name, file = wf.file, exit_code = run.code,
    status = run.code == 0 and "success" or run.code == 130 and
             "interrupted" or "failure",
    duration = ms(run.elapsed), inputs = sanitize(run.opts.inputs, 0),
    outputs = sanitize(run.outputs, 0), sessions = run.sessions:report(),
    steps = array{}, finally = array{},
  }
  if #run.output_errors > 0 then rep.errors = run.output_errors end
  for _, s in ipairs(wf.steps) do
    rep.steps[#rep.steps + 1] = step_report(run.results[s.id])
  end
  for _, s in ipairs(wf.finally) do
    rep.finally[#rep.finally + 1] = step_report(run.results[s.id])
  end
  return rep
end

--- The report of a run that never started (invalid workflow, bad
-- input): exit code 2.
function M.invalid(file, message)
  return { file = file, exit_code = 2, status = "invalid", error = message,
           steps = array{} }
end

-- JSON text needs valid UTF-8: invalid bytes become U+FFFD.
local function valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local n, bad = utf8.len(s, i)
    if n then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\239\191\189"
    i = bad + 1
  end
  return table.concat(out)
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b",
              ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
              ["\t"] = "\\t" }

local function encode(v, out)
  local t = type(v)
  if v == nil or v == expr.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(v) == "integer" then
      out[#out + 1] = ("%d"):format(v)
    else
      local s = ("%.14g"):format(v)
      if tonumber(s) ~= v then s = ("%.17g"):format(v) end
      out[#out + 1] = s
    end
  elseif t == "string" then
    out[#out + 1] = '"' .. valid_utf8(v):gsub('[%c"\\]', function(c)
      return ESC[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
  elseif t == "table" then
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if ARRAY[v] or (n > 0 and n == count) then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        encode(k, out)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[math.tointeger(tonumber(k))] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    encode(tostring(v), out)
  end
end

--- JSON text of a report (keys sorted, empty lists as []).
function M.encode(rep)
  local out = {}
  encode(sanitize(rep, 0), out)
  return table.concat(out)
end

return M
