-- The reporters (plain lines, the live ANSI view) and the JSON encoder,
-- fed with events, without a server.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
require "wfhelp"
local report = require "agentcube.workflow.report"
local expr = require "agentcube.workflow.expr"

-- A file-like sink.
local function sink()
  local s = { parts = {} }
  function s:write(...)
    for _, p in ipairs{ ... } do self.parts[#self.parts + 1] = p end
    return self
  end
  function s:text() return table.concat(self.parts) end
  return s
end

local function feed(r)
  local a = { id = "upload", session = "py" }
  local b = { id = "summarize", session = "py", stderr = "Traceback\nboom\n",
              stdout = "partial\n" }
  r:event{ type = "workflow_start", workflow = "demo", file = "d.yaml",
           steps = 2, time = 0 }
  r:event{ type = "session_created", session = "py", session_id = "id-1",
           time = 0.01 }
  r:event{ type = "step_start", step = a, session = "py", attempt = 1,
           time = 0.01 }
  if r.tick then r:tick(0.5) end
  r:event{ type = "step_end", step = a, outcome = "success",
           conclusion = "success", session = "py", elapsed = 0.5,
           time = 0.51 }
  r:event{ type = "step_start", step = b, session = "py", attempt = 1,
           time = 0.52 }
  r:event{ type = "step_retry", step = b, session = "py", attempt = 1,
           delay = 1, error = "exit code 1: boom", time = 0.8 }
  r:event{ type = "step_start", step = b, session = "py", attempt = 2,
           time = 1.8 }
  if r.verbose then              -- what a verbose run sends as it comes
    r:event{ type = "step_output", step = b, stream = "stdout",
             line = "partial", time = 1.9 }
    r:event{ type = "step_output", step = b, stream = "stderr",
             line = "boom", time = 1.95 }
  end
  r:event{ type = "step_end", step = b, outcome = "failure",
           conclusion = "failure", session = "py", elapsed = 1.5,
           exit_code = 1, error = "exit code 1: boom", time = 2.02 }
  r:event{ type = "session_deleted", session = "py", session_id = "id-1",
           time = 2.03 }
  r:event{ type = "workflow_end", workflow = "demo", exit_code = 1,
           elapsed = 2.03, outputs = { mean = 12.5, text = "a\nb\n" },
           time = 2.03 }
end

-- A run that tolerates a failure, is interrupted while a step runs, and
-- has an output that cannot be computed.
local function feed_interrupted(r)
  local a = { id = "tolerated", session = "py",
              traceback = "wf.yaml:3: in lua step\n[C]: in error" }
  local b = { id = "later", session = "py" }
  local c = { id = "slow", session = "py" }
  r:event{ type = "workflow_start", workflow = "demo", file = "d.yaml",
           steps = 3, time = 0 }
  r:event{ type = "step_start", step = a, session = "py", attempt = 1,
           time = 0.1 }
  r:event{ type = "step_end", step = a, outcome = "failure",
           conclusion = "success", session = "py", elapsed = 0.2,
           error = "boom", time = 0.3 }
  r:event{ type = "step_start", step = c, session = "py", attempt = 1,
           time = 0.3 }
  r:event{ type = "interrupt", time = 0.4 }
  r:event{ type = "step_end", step = c, outcome = "cancelled",
           conclusion = "cancelled", session = "py", elapsed = 0.2,
           error = "stopped by the interrupt", time = 0.5 }
  r:event{ type = "step_end", step = b, outcome = "skipped",
           conclusion = "skipped", session = "py", time = 0.5 }
  r:event{ type = "output_error", error = "output 'x': no step 'zz'",
           time = 0.6 }
  r:event{ type = "workflow_end", workflow = "demo", exit_code = 130,
           elapsed = 0.6, outputs = {}, time = 0.6 }
end

describe("plain", function()
  it("writes one line per event", function()
    local out = sink()
    feed(report.plain(out))
    local text = out:text()
    assert.equal([[
[    0.00] workflow demo (d.yaml): 2 steps
[    0.01] session py created: id-1
[    0.01] start  upload           py
[    0.51] ok     upload           py 0.50s
[    0.52] start  summarize        py
[    0.80] retry  summarize        in 1s: exit code 1: boom
[    1.80] start  summarize        py (attempt 2)
[    2.02] FAIL   summarize        py 1.50s  exit code 1: boom
    ! Traceback
    ! boom
[    2.03] session py deleted
outputs:
  mean = 12.5
  text:
    a
    b
[    2.03] failed: exit 1 in 2.03s
]], text)
  end)

  it("shows each line of output as it comes when verbose, stdout and "
     .. "stderr apart, and never twice", function()
    local out = sink()
    feed(report.plain(out, { verbose = true }))
    local text = out:text()
    assert.matches("%[    1%.90%] summarize | partial\n", text)
    assert.matches("%[    1%.95%] summarize ! boom\n", text)
    -- the step's end does not repeat what was shown
    assert.is_nil(text:find("    ! Traceback", 1, true))
    -- positive control: without -v, a failure shows its stderr at the end
    local quiet = sink()
    feed(report.plain(quiet))
    assert.matches("    ! Traceback\n", quiet:text())
    assert.is_nil(quiet:text():find("| partial", 1, true))
  end)

  it("says what was tolerated, cancelled, skipped and interrupted",
     function()
    local out = sink()
    feed_interrupted(report.plain(out))
    assert.equal([[
[    0.00] workflow demo (d.yaml): 3 steps
[    0.10] start  tolerated        py
[    0.30] FAIL   tolerated        py 0.20s  boom (continue_on_error)
[    0.30] start  slow             py
[    0.40] interrupted: stopping
[    0.50] cancel slow             py 0.20s
[    0.50] skip   later            py
[    0.60] error  output 'x': no step 'zz'
[    0.60] interrupted: exit 130 in 0.60s
]], out:text())
    -- verbose: a lua step's frames follow its end
    local v = sink()
    feed_interrupted(report.plain(v, { verbose = true }))
    assert.matches("boom %(continue_on_error%)\n    at wf%.yaml:3: in lua "
                   .. "step\n    at %[C%]: in error\n", v:text())
  end)
end)

describe("live", function()
  it("redraws one line per step in place", function()
    local out = sink()
    feed(report.live(out, { ascii = true, columns = 60 }))
    local text = out:text()
    -- the cursor goes back up over the rows it drew
    assert.matches("\27%[2F", text)
    assert.matches("\27%[2K", text)
    -- the final frame: a tick, then a cross, for the two steps
    local last = text:match(".*\27%[2F(.*)$")
    assert.matches("%+\27%[0m upload%s+py%s+0%.50s", last)
    assert.matches("x\27%[0m summarize%s+py%s+1%.50s  exit code 1: boom",
                   last)
    assert.matches("summarize stderr:\n  ! Traceback\n  ! boom", last)
    assert.matches("failed in 2%.03s %(exit 1%)\n$", last)
    -- no row is wider than the terminal
    for line in text:gmatch("[^\n]+") do
      local plain = line:gsub("\27%[[%d;]*[A-Za-z]", "")
      assert.is_true(#plain <= 60, plain)
    end
  end)

  it("marks tolerated, cancelled and skipped rows, then the ends",
     function()
    local out = sink()
    feed_interrupted(report.live(out, { ascii = true, columns = 80 }))
    local text = out:text()
    assert.matches("\27%[2Kinterrupted: stopping\n", text)
    local last = text:match(".*\27%[3F(.*)$")
    assert.matches("\27%[31m%-\27%[0m tolerated%s+py%s+0%.20s  boom "
                   .. "%(continue_on_error%)\n", last)
    assert.matches("\27%[33m!\27%[0m slow%s+py%s+cancelled\n", last)
    assert.matches("\27%[36m%-\27%[0m later%s+py%s+skipped\n", last)
    assert.matches("\noutput 'x': no step 'zz'\ninterrupted in 0%.60s "
                   .. "%(exit 130%)\n$", last)
    -- the frames of a lua step at the end, when verbose only
    assert.is_nil(last:find("traceback", 1, true))
    local v = sink()
    feed_interrupted(report.live(v, { ascii = true, columns = 80,
                                      verbose = true }))
    assert.matches("tolerated traceback:\n  at wf%.yaml:3: in lua step\n"
                   .. "  at %[C%]: in error\n", v:text())
  end)

  it("spins while a step runs", function()
    local out = sink()
    local r = report.live(out, { ascii = true })
    r:event{ type = "step_start", step = { id = "x", session = "s" },
             session = "s", attempt = 1, time = 0 }
    r:tick(0.3)
    r:tick(0.6)
    assert.matches("0%.60s", out:text())
  end)
end)

describe("JSON", function()
  it("encodes empty lists as [] and keeps text valid UTF-8", function()
    local t = { steps = report.array{}, s = "a\"b\\c\n\1\255",
                n = 1.5, i = 3, null = expr.null, nested = { 1, 2 } }
    local text = report.encode(t)
    assert.equal('{"i":3,"n":1.5,"nested":[1,2],"null":null,'
                 .. '"s":"a\\"b\\\\c\\n\\u0001\239\191\189","steps":[]}',
                 text)
    assert.same({ i = 3, n = 1.5, nested = { 1, 2 }, steps = {},
                  s = "a\"b\\c\n\1\239\191\189" },
                (function()
                  local d = require("cjson").decode(text)
                  d.null = nil
                  return d
                end)())
  end)

  it("turns what JSON has no form for into null or text", function()
    assert.equal('[null,null,null,0.1,1e+300,"a\239\191\189b\239\191\189'
                 .. '\195\169"]',
                 report.encode{ 0 / 0, math.huge, -math.huge, 0.1, 1e300,
                                "a\255b\254\195\169" })
    assert.matches('^{"f":"function: 0x%x+"}$',
                   report.encode{ f = function() end })
    -- every result decodes as JSON (the control: cjson reads it back)
    assert.same({ 0.1, 1e300 }, require("cjson").decode(
      report.encode{ 0.1, 1e300 }))
  end)

  it("describes a workflow that never started", function()
    local rep = report.invalid("x.yaml", "x.yaml:1:1: bad")
    assert.equal('{"error":"x.yaml:1:1: bad","exit_code":2,'
                 .. '"file":"x.yaml","status":"invalid","steps":[]}',
                 report.encode(rep))
  end)
end)

describe("text from sandboxes and servers", function()
  local evil = "ok\27]0;pwned\7\27]52;c;Y3VybA==\7\r\27[2Kfaked\194\155x\n"

  local function run_events(r)
    local b = { id = "s", session = "py", stdout = evil, stderr = evil }
    r:event{ type = "workflow_start", workflow = "w", file = "w.yaml",
             steps = 1, time = 0 }
    r:event{ type = "step_start", step = b, session = "py", attempt = 1,
             time = 0 }
    for line in evil:gmatch("[^\n]+") do
      r:event{ type = "step_output", step = b, stream = "stdout",
               line = line, time = 0 }
      r:event{ type = "step_output", step = b, stream = "stderr",
               line = line, time = 0 }
    end
    r:event{ type = "step_end", step = b, outcome = "failure",
             conclusion = "failure", session = "py", elapsed = 0.1,
             error = "HTTP 500: " .. evil, time = 0.1 }
    r:event{ type = "workflow_end", workflow = "w", exit_code = 1,
             elapsed = 0.1, outputs = { x = evil }, time = 0.1 }
  end

  local function assert_neutral(text, allow_csi)
    local t = text
    if allow_csi then
      -- the live view's own cursor and colour sequences
      t = t:gsub("\27%[%d*[FKm]", ""):gsub("\27%[%d+;?%d*m", "")
    end
    assert.is_nil(t:find("[%z\1-\8\11-\31\127]"), t)
    assert.is_nil(t:find("\194[\128-\159]"), t)
    assert.matches("\\x1b]0;pwned\\x07", text, 1, true)
    assert.matches("\\x0d", text, 1, true)
    assert.matches("\\u009b", text, 1, true)
  end

  it("reach the plain view neutralised", function()
    local s = sink()
    run_events(report.plain(s, { verbose = true }))
    assert_neutral(s:text())
  end)

  it("reach the live view neutralised", function()
    local s = sink()
    run_events(report.live(s, { verbose = true, columns = 200,
                                ascii = true }))
    assert_neutral(s:text(), true)
  end)

  it("stay raw bytes in the JSON report", function()
    local text = report.encode({ stdout = evil })
    local back = require("cjson").decode(text)
    assert.equal(evil, back.stdout)
  end)

  it("keep newlines, tabs and UTF-8 (positive control)", function()
    assert.equal("a\tb\nc é ✓", report.shown("a\tb\nc é ✓"))
  end)
end)

describe("transfers", function()
  it("show bytes, percentage and rate while they run, on a terminal",
     function()
    local s = sink()
    local r = report.live(s, { columns = 200, ascii = true })
    local step = { id = "up", session = "py" }
    r:event{ type = "step_start", step = step, session = "py", attempt = 1,
             time = 0 }
    step.transfer = { done = 12 * 1048576, total = 40 * 1048576 }
    r:tick(2)
    local text = s:text()
    assert.matches("12.0 MiB / 40.0 MiB 30% 6.0 MiB/s", text, 1, true)
    -- size unknown (a download before its headers): bytes and rate only
    step.transfer = { done = 1536 }
    r:tick(3)
    assert.matches("1.5 KiB at 512 B/s", s:text(), 1, true)
  end)

  it("keep their final figures in the plain view and the report",
     function()
    local s = sink()
    local r = report.plain(s)
    local step = { id = "down", session = "py", bytes = 8 * 1048576 }
    r:event{ type = "step_end", step = step, outcome = "success",
             conclusion = "success", session = "py", elapsed = 2, time = 2 }
    assert.matches("8.0 MiB at 4.0 MiB/s", s:text(), 1, true)
  end)
end)

describe("output lines", function()
  it("come whole, a long one in bounded pieces, the last one on flush",
     function()
    local lines = require "agentcube.workflow.lines"
    local got = {}
    local l = lines.new(function(s) got[#got + 1] = s end)
    l:feed("a\nb")
    l:feed("")
    l:feed("c\n")
    assert.same({ "a", "bc" }, got)
    l:feed(("x"):rep(lines.MAX_LINE * 2 + 10))
    assert.equal(4, #got)
    assert.equal(lines.MAX_LINE, #got[3])
    assert.equal(lines.MAX_LINE, #got[4])
    l:flush()
    assert.equal(("x"):rep(10), got[5])
    l:flush()                                  -- nothing left
    assert.equal(5, #got)
  end)
end)
