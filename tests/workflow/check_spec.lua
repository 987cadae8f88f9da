-- What `check` tells a workflow author: every problem of a file as
-- "FILE:LINE:COL: message" at the value (or key) that is wrong, before
-- anything runs. Each case is a broken file with the exact report, and,
-- where one exists, the same file corrected, which must check clean (the
-- positive control: the report comes from the mistake, not the rest).
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local workflow = require "agentcube.workflow"

local dir
setup(function() dir = help.tmpdir() end)
teardown(function() help.rm(dir) end)

-- Checks text as a file named name; returns ok, message, path.
local function check(text, name)
  local path = help.file(dir, text, name or "wf.yaml")
  local ok, err = workflow.check(path)
  return ok, err, path
end

-- Asserts that text is refused with exactly the lines of expect (each
-- "LINE:COL: message", the file's path before it) and, when good is
-- given, that good checks clean.
local function refused(text, expect, good, name)
  local ok, err, path = check(text, name)
  assert.is_nil(ok, "accepted:\n" .. text)
  local lines = {}
  for _, l in ipairs(type(expect) == "table" and expect or { expect }) do
    lines[#lines + 1] = path .. ":" .. l
  end
  assert.equal(table.concat(lines, "\n"), err)
  if good then
    local gok, gerr = check(good, name)
    assert.is_true(gok, gerr)
  end
end

local LS = "steps: [{exec: ls}]\n"

describe("check reports at the workflow's top level", function()
  local cases = {
    { "a key that is not a name", "1: x\n" .. LS,
      "1:1: unexpected key 1 in the workflow", LS },
    { "a misspelt key, with the likely one",
      "step: []\n" .. LS,
      "1:1: unknown key 'step' in the workflow (did you mean 'steps'?)",
      LS },
    { "a file that is not a mapping", "42\n",
      "1:1: a workflow must be a mapping (name, sessions, steps, ...), "
      .. "not a number", LS },
    { "no steps", "name: x\n", "1:1: a workflow needs a 'steps' list",
      "name: x\n" .. LS },
    { "empty steps", "steps: []\n", "1:8: 'steps' is empty", LS },
    { "steps as a mapping", "steps: {a: {exec: ls}}\n",
      "1:8: 'steps' must be a list of steps, not a mapping",
      "steps: [{id: a, exec: ls}]\n" },
    { "finally as a number", LS .. "finally: 3\n",
      "2:10: 'finally' must be a list of steps, not a number",
      LS .. "finally: [{exec: ls}]\n" },
    { "a name that is not text", "name: [a]\n" .. LS,
      "1:7: 'name' in the workflow must be a string, not a sequence",
      "name: a\n" .. LS },
    { "max_parallel below one", "max_parallel: 0\n" .. LS,
      "1:15: 'max_parallel' in the workflow must be an integer >= 1, not 0",
      "max_parallel: 1\n" .. LS },
    { "max_parallel from an expression",
      "max_parallel: ${{ inputs.n }}\ninputs: {n: 2}\n" .. LS,
      "1:15: 'max_parallel' must be a number (expressions are not allowed "
      .. "here)", "max_parallel: 2\ninputs: {n: 2}\n" .. LS },
    { "env as a list", "env: [A]\n" .. LS,
      "1:6: 'env' in the workflow must be a mapping of names to values, "
      .. "not a sequence", "env: {A: 1}\n" .. LS },
    { "a variable name no shell takes", "env: {1A: x}\n" .. LS,
      "1:7: bad variable name '1A' in the workflow",
      "env: {A1: x}\n" .. LS },
    { "a variable holding a list", "env: {A: [1]}\n" .. LS,
      "1:10: variable 'A' in the workflow must be a string, number or "
      .. "boolean, not a sequence", "env: {A: 1}\n" .. LS },
    { "outputs as a list", LS .. "outputs: [a]\n",
      "2:10: 'outputs' must be a mapping of names to values, not a "
      .. "sequence", LS .. "outputs: {a: 1}\n" },
    { "an output name with a blank", LS .. "outputs: {'a b': 1}\n",
      "2:11: bad output name 'a b'", LS .. "outputs: {a_b: 1}\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports in inputs and sessions", function()
  local cases = {
    { "inputs as a list", "inputs: [a]\n" .. LS,
      "1:9: 'inputs' must be a mapping of input names, not a sequence",
      "inputs: {a: 1}\n" .. LS },
    { "an input name with a blank", "inputs: {'a b': 1}\n" .. LS,
      "1:10: bad input name 'a b' (letters, digits, '_' and '-')",
      "inputs: {a-b: 1}\n" .. LS },
    { "a misspelt input key", "inputs:\n  a: {defualt: x}\n" .. LS,
      "2:7: unknown key 'defualt' in input 'a' (did you mean 'default'?)",
      "inputs:\n  a: {default: x}\n" .. LS },
    { "an unknown input type", "inputs:\n  n: {type: int}\n" .. LS,
      "2:13: 'type' in input 'n' must be string, number or boolean",
      "inputs:\n  n: {type: number}\n" .. LS },
    { "an input that is a list", "inputs:\n  n: [1, 2]\n" .. LS,
      "2:6: input 'n' must be a value or a mapping with 'default', not a "
      .. "sequence", "inputs:\n  n: {default: 1}\n" .. LS },
    { "required that is not a boolean",
      "inputs:\n  n: {required: maybe}\n" .. LS,
      "2:17: 'required' in input 'n' must be true or false, not a string",
      "inputs:\n  n: {required: false}\n" .. LS },
    { "a number input with a word for default",
      "inputs:\n  n: {type: number, default: ten}\n" .. LS,
      "2:30: default of input 'n' must be a number, not 'ten'",
      "inputs:\n  n: {type: number, default: '10'}\n" .. LS },
    { "a boolean input with a word for default",
      "inputs:\n  b: {type: boolean, default: maybe}\n" .. LS,
      "2:31: default of input 'b' must be a boolean (true/false/yes/no/1/0)"
      .. ", not 'maybe'", "inputs:\n  b: {type: boolean, default: 'off'}\n"
      .. LS },
    { "a boolean input with a number for default",
      "inputs:\n  b: {type: boolean, default: 7}\n" .. LS,
      "2:31: default of input 'b' must be a boolean (true/false/yes/no/1/0)"
      .. ", not 7", "inputs:\n  b: {type: boolean, default: 0}\n" .. LS },
    { "sessions as a list", "sessions: [a]\n" .. LS,
      "1:11: 'sessions' must be a mapping of session names, not a sequence",
      "sessions: {a: {}}\n" .. LS },
    { "a session name with a blank", "sessions: {'a b': {}}\n" .. LS,
      "1:12: bad session name 'a b' (letters, digits, '_' and '-')",
      "sessions: {a_b: {}}\n" .. LS },
    { "a session that is a number", "sessions:\n  a: 3\n" .. LS,
      "2:6: session 'a' must be a mapping (template, namespace, ttl, id, "
      .. "keep), not a number", "sessions:\n  a:\n" .. LS },
    { "a misspelt session key", "sessions:\n  a: {tempalte: x}\n" .. LS,
      "2:7: unknown key 'tempalte' in session 'a' (did you mean "
      .. "'template'?)", "sessions:\n  a: {template: x}\n" .. LS },
    { "a fractional ttl", "sessions:\n  a: {ttl: 0.5}\n" .. LS,
      "2:12: 'ttl' in session 'a' must be an integer >= 1, not 0.5",
      "sessions:\n  a: {ttl: 1}\n" .. LS },
    { "a template that is a list", "sessions:\n  a: {template: [x]}\n" .. LS,
      "2:17: 'template' in session 'a' must be a string, not a sequence",
      "sessions:\n  a: {template: x}\n" .. LS },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports in a step's kind", function()
  local cases = {
    { "a blank command", "steps:\n  - exec: '  '\n",
      "2:11: 'exec' of step 'step-1' is an empty command",
      "steps:\n  - exec: ' ls '\n" },
    { "an argument that is a mapping", "steps:\n  - exec: [echo, {a: 1}]\n",
      "2:18: argument 2 of 'exec' of step 'step-1' must be a string, not a "
      .. "mapping", "steps:\n  - exec: [echo, 'a: 1']\n" },
    { "a command that is a mapping", "steps:\n  - exec: {cmd: ls}\n",
      "2:11: 'exec' of step 'step-1' must be a command line or a list of "
      .. "arguments, not a mapping", "steps:\n  - exec: ls\n" },
    { "an unterminated single quote",
      "steps:\n  - exec: echo 'unterminated\n",
      "2:11: 'exec' of step 'step-1': unterminated ' in the command line",
      "steps:\n  - exec: echo 'terminated'\n" },
    { "an unterminated double quote",
      "steps:\n  - {id: a, exec: 'echo \"x'}\n",
      "2:19: 'exec' of step 'a': unterminated \" in the command line",
      "steps:\n  - {id: a, exec: 'echo \"x\"'}\n" },
    { "a trailing backslash", "steps:\n  - {id: a, exec: 'echo x\\'}\n",
      "2:19: 'exec' of step 'a': a command line cannot end with \\",
      "steps:\n  - {id: a, exec: 'echo x\\\\'}\n" },
    { "the characters expressions are marked with",
      "steps:\n  - {id: a, exec: \"echo \\x01 ${{ 1 }}\"}\n",
      "2:19: 'exec' of step 'a': control characters \\1 and \\2 in a "
      .. "command line", "steps:\n  - {id: a, exec: \"echo ${{ 1 }}\"}\n" },
    { "run as a number", "steps:\n  - run: 42\n",
      "2:10: 'run' of step 'step-1' must be a mapping with 'language' and "
      .. "'code' (or a bash script), not a number",
      "steps:\n  - run: echo 42\n" },
    { "run without code", "steps:\n  - id: r\n    run: {language: bash}\n",
      "3:10: 'run' of step 'r' needs 'code'",
      "steps:\n  - id: r\n    run: {language: bash, code: ls}\n" },
    { "content that is a mapping",
      "steps:\n  - write: {path: a, content: {x: 1}}\n",
      "2:31: 'content' in 'write' of step 'step-1' must be text, not a "
      .. "mapping", "steps:\n  - write: {path: a, content: '{x: 1}'}\n" },
    { "write as text", "steps:\n  - write: hello\n",
      "2:12: 'write' of step 'step-1' must be a mapping with 'path' and "
      .. "'content', not a string",
      "steps:\n  - write: {path: h, content: hello}\n" },
    { "write without a path", "steps:\n  - write: {content: x}\n",
      "2:12: 'write' of step 'step-1' needs 'path'",
      "steps:\n  - write: {content: x, path: p}\n" },
    { "upload as text", "steps:\n  - upload: a.txt\n",
      "2:13: 'upload' of step 'step-1' must be a mapping with 'from' and "
      .. "'to', not a string",
      "steps:\n  - upload: {from: a.txt, to: /w/a.txt}\n" },
    { "download without to", "steps:\n  - download: {from: /a}\n",
      "2:15: 'download' of step 'step-1' needs 'to'",
      "steps:\n  - download: {from: /a, to: a}\n" },
    { "a misspelt key of list", "steps:\n  - list: {pth: /w}\n",
      "2:12: unknown key 'pth' in 'list' of step 'step-1' (did you mean "
      .. "'path'?)", "steps:\n  - list: {path: /w}\n" },
    { "list of a number", "steps:\n  - list: 7\n",
      "2:11: 'list' of step 'step-1' must be a path, not a number",
      "steps:\n  - list: '7'\n" },
    { "stop of something not a step id",
      "steps:\n  - stop: 'not a name'\n",
      "2:11: 'stop' of step 'step-1' must be the id of a background exec "
      .. "step, not 'not a name'",
      "steps:\n  - {id: srv, exec: ls, background: true}\n"
      .. "  - stop: srv\n" },
    { "lua as a number", "steps:\n  - lua: 7\n",
      "2:10: 'lua' of step 'step-1' must be Lua code, not a number",
      "steps:\n  - lua: return 7\n" },
    { "lua that does not compile, at the file's line",
      "steps:\n  - id: l\n    lua: |\n      local x =\n      return\n",
      "3:10: 'lua' of step 'l' does not compile: line 5: unexpected symbol "
      .. "near 'return'",
      "steps:\n  - id: l\n    lua: |\n      local x = 1\n      return x\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports in a step's common fields", function()
  local cases = {
    { "a step that is text", "steps:\n  - ls\n",
      "2:5: a step must be a mapping, not a string",
      "steps:\n  - exec: ls\n" },
    { "a key that is not a name", "steps:\n  - exec: ls\n    1: x\n",
      "3:5: unexpected key 1 in step 'step-1'", "steps:\n  - exec: ls\n" },
    { "a misspelt kind", "steps:\n  - {id: a, exce: ls}\n",
      "2:13: unknown step kind 'exce' in step 'a' (did you mean 'exec'?)",
      "steps:\n  - {id: a, exec: ls}\n" },
    -- close to a field, far from every kind: the field is what was meant
    { "a misspelt field on a step with no kind",
      "steps:\n  - sesion: a\n",
      "2:5: unknown key 'sesion' in step 'step-1' (did you mean "
      .. "'session'?)", "sessions: {a: {}}\nsteps:\n  - {session: a, "
      .. "exec: ls}\n" },
    { "no kind at all", "steps:\n  - {id: a}\n",
      "2:5: step 'a' has no kind: give one of exec, run, write, upload, "
      .. "download, list, lua, stop", "steps:\n  - {id: a, list: }\n" },
    { "two kinds on one line", "steps:\n  - {exec: ls, run: pwd}\n",
      "2:16: step 'step-1' has two kinds, 'exec' and 'run': one step does "
      .. "one thing", "steps:\n  - {exec: ls}\n  - {run: pwd}\n" },
    { "needs listing a number",
      "steps:\n  - {id: a, exec: ls}\n  - {id: b, exec: ls, needs: [a, 3]}\n",
      "3:34: 'needs' of step 'b' lists step ids, not a number",
      "steps:\n  - {id: a, exec: ls}\n  - {id: b, exec: ls, needs: [a]}\n" },
    { "needs as a mapping",
      "steps:\n  - {id: a, exec: ls}\n  - {id: b, exec: ls, needs: {a: 1}}\n",
      "3:30: 'needs' of step 'b' must be a step id or a list of them, not "
      .. "a mapping",
      "steps:\n  - {id: a, exec: ls}\n  - {id: b, exec: ls, needs: a}\n" },
    { "if as a number", "steps:\n  - exec: ls\n    if: 3\n",
      "3:9: 'if' of step 'step-1' must be an expression, not a number",
      "steps:\n  - exec: ls\n    if: false\n" },
    { "a timeout of zero", "steps:\n  - exec: ls\n    timeout: 0\n",
      "3:14: 'timeout' of step 'step-1' must be more than 0 seconds",
      "steps:\n  - exec: ls\n    timeout: 0.5\n" },
    { "a timeout in words", "steps:\n  - exec: ls\n    timeout: soon\n",
      "3:14: 'timeout' in step 'step-1' must be a number >= 0, not a "
      .. "string", "steps:\n  - exec: ls\n    timeout: 60\n" },
    { "retry in words", "steps:\n  - exec: ls\n    retry: often\n",
      "3:12: 'retry' in step 'step-1' must be a number of retries or a "
      .. "mapping (limit, backoff, factor), not a string",
      "steps:\n  - exec: ls\n    retry: 3\n" },
    { "a negative retry count", "steps:\n  - exec: ls\n    retry: -2\n",
      "3:12: 'retry' in step 'step-1' must be an integer >= 0, not -2",
      "steps:\n  - exec: ls\n    retry: 0\n" },
    { "every field of retry wrong at once",
      "steps:\n  - exec: ls\n    retry: {limit: -1, backoff: x, factor: "
      .. "0.5, tries: 3}\n",
      { "3:20: 'limit' in 'retry' of step 'step-1' must be an integer >= 0, "
        .. "not -1",
        "3:33: 'backoff' in 'retry' of step 'step-1' must be a number >= 0, "
        .. "not a string",
        "3:44: 'factor' in 'retry' of step 'step-1' must be a number >= 1, "
        .. "not 0.5",
        "3:49: unknown key 'tries' in 'retry' of step 'step-1'" },
      "steps:\n  - exec: ls\n    retry: {limit: 0, backoff: 0, factor: 1}\n" },
    { "continue_on_error in words",
      "steps:\n  - exec: ls\n    continue_on_error: sometimes\n",
      "3:24: 'continue_on_error' in step 'step-1' must be true or false, "
      .. "not a string",
      "steps:\n  - exec: ls\n    continue_on_error: true\n" },
    { "working_dir on a run step",
      "steps:\n  - run: ls\n    working_dir: /w\n",
      "3:18: 'working_dir' applies to exec steps only (step 'step-1' is a "
      .. "run step)", "steps:\n  - exec: ls\n    working_dir: /w\n" },
    { "exit codes on a write step",
      "steps:\n  - write: {path: a, content: b}\n    allowed_exit_codes: [1]\n",
      "3:25: 'allowed_exit_codes' applies to exec and run steps only",
      "steps:\n  - exec: cat a\n    allowed_exit_codes: [1]\n" },
    { "exit codes as a number",
      "steps:\n  - exec: ls\n    allowed_exit_codes: 1\n",
      "3:25: 'allowed_exit_codes' of step 'step-1' must be a list of "
      .. "numbers, not a number",
      "steps:\n  - exec: ls\n    allowed_exit_codes: [1]\n" },
    { "exit codes no process can have",
      "steps:\n  - exec: ls\n    allowed_exit_codes: [1, 256, -1, 2.5]\n",
      { "3:29: exit code 256 of step 'step-1' is not an integer from 0 to "
        .. "255",
        "3:34: exit code -1 of step 'step-1' is not an integer from 0 to 255",
        "3:38: exit code 2.5 of step 'step-1' is not an integer from 0 to "
        .. "255" },
      "steps:\n  - exec: ls\n    allowed_exit_codes: [1, 255, 0, 2]\n" },
    { "a context name with a blank",
      "steps:\n  - run: {code: x}\n    context: 'a b'\n",
      "3:14: 'context' of step 'step-1' must be a name (letters, digits, "
      .. "'_' and '-'), not 'a b'",
      "steps:\n  - run: {code: x}\n    context: a_b\n" },
    { "a context language from an expression",
      "inputs: {l: python}\nsteps:\n  - run: {code: x, language: "
      .. "'${{ inputs.l }}'}\n    context: nb\n",
      "3:30: the language of context step 'step-1' must be written out "
      .. "(steps sharing a context share one interpreter)",
      "inputs: {l: python}\nsteps:\n  - run: {code: x, language: python}\n"
      .. "    context: nb\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports in background steps", function()
  local BG = "steps:\n  - exec: ls\n    background: true\n"
  local cases = {
    { "background from an expression",
      "inputs: {b: true}\nsteps:\n  - exec: ls\n    background: "
      .. "${{ inputs.b }}\n",
      "4:17: 'background' of step 'step-1' must be true or false "
      .. "(expressions are not allowed here)", BG },
    { "background in words", "steps:\n  - exec: ls\n    background: yes "
      .. "please\n",
      "3:17: 'background' in step 'step-1' must be true or false, not a "
      .. "string", BG },
    { "ready without background", "steps:\n  - exec: ls\n    ready: "
      .. "{output: x}\n",
      "3:12: 'ready' of step 'step-1' needs 'background: true'",
      BG .. "    ready: {output: x}\n" },
    { "ready as a number", BG .. "    ready: 3\n",
      "4:12: 'ready' of step 'step-1' must be a mapping (output, probe, "
      .. "interval, timeout), not a number",
      BG .. "    ready: {timeout: 3}\n" },
    { "a misspelt ready key", BG .. "    ready: {outptu: x}\n",
      "4:13: unknown key 'outptu' in 'ready' of step 'step-1' (did you "
      .. "mean 'output'?)", BG .. "    ready: {output: x}\n" },
    { "an empty output to wait for", BG .. "    ready: {output: ''}\n",
      "4:21: 'output' in 'ready' of step 'step-1' is empty",
      BG .. "    ready: {output: ' '}\n" },
    { "a blank probe", BG .. "    ready: {probe: ' '}\n",
      "4:20: 'probe' in 'ready' of step 'step-1' is an empty command",
      BG .. "    ready: {probe: 'true'}\n" },
    { "a probe with an unterminated quote",
      BG .. "    ready: {probe: \"curl 'x\"}\n",
      "4:20: 'ready' of step 'step-1': unterminated ' in the command line",
      BG .. "    ready: {probe: \"curl 'x'\"}\n" },
    { "ready times from an expression and of zero",
      "inputs: {i: 1}\n" .. BG .. "    ready: {interval: '${{ inputs.i }}', "
      .. "timeout: 0}\n",
      { "5:23: 'interval' in 'ready' of step 'step-1' must be a number "
        .. "(expressions are not allowed here)",
        "5:51: 'timeout' in 'ready' of step 'step-1' must be more than 0 "
        .. "seconds" },
      "inputs: {i: 1}\n" .. BG .. "    ready: {interval: 1, timeout: 1}\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports between steps", function()
  local cases = {
    { "a main step needing a finally step",
      "steps:\n  - {id: a, exec: ls, needs: f}\nfinally:\n  - {id: f, "
      .. "exec: ls}\n",
      "2:30: step 'a' needs 'f', a finally step",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: f, exec: ls}\n" },
    { "a finally step needing a main step",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: f, exec: ls, "
      .. "needs: a}\n",
      "4:30: finally step 'f' needs 'a', a main step (finally steps run "
      .. "after every main step; use 'if' to look at it)",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: f, exec: ls, if: "
      .. "steps.a.outcome == 'success'}\n" },
    { "a misspelt need", "steps:\n  - {id: build, exec: ls}\n  - {id: t, "
      .. "exec: ls, needs: bulid}\n",
      "3:30: step 't' needs unknown step 'bulid' (did you mean 'build'?)",
      "steps:\n  - {id: build, exec: ls}\n  - {id: t, exec: ls, needs: "
      .. "build}\n" },
    { "an id used twice across phases",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: a, exec: ls}\n",
      "4:10: duplicate step id 'a' (first at 2:10)",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: b, exec: ls}\n" },
    { "a misspelt stop target",
      "steps:\n  - {id: srv, exec: ls, background: true}\n  - {id: s, stop: "
      .. "sv}\n",
      "3:19: step 's' stops unknown step 'sv' (did you mean 'srv'?)",
      "steps:\n  - {id: srv, exec: ls, background: true}\n  - {id: s, stop: "
      .. "srv}\n" },
    { "a stop of a foreground step",
      "steps:\n  - {id: srv, exec: ls}\n  - {id: s, stop: srv}\n",
      "3:19: step 's' stops step 'srv', which is not a background exec "
      .. "step (add 'background: true' to it)",
      "steps:\n  - {id: srv, exec: ls, background: true}\n  - {id: s, stop: "
      .. "srv}\n" },
    { "a main step stopping a finally step",
      "steps:\n  - {id: s, stop: f}\nfinally:\n  - {id: f, exec: ls, "
      .. "background: true}\n",
      "2:19: step 's' stops 'f', a finally step that runs after it",
      "steps:\n  - {id: f, exec: ls, background: true}\nfinally:\n  - {id: "
      .. "s, stop: f}\n" },
    { "a stop on another session than its target's",
      "sessions: {a: {}, b: {}}\nsteps:\n  - {id: srv, exec: ls, "
      .. "background: true, session: a}\n  - {id: s, stop: srv, session: "
      .. "b}\n",
      "4:33: step 's' stops 'srv', which runs on session 'a', not 'b'",
      "sessions: {a: {}, b: {}}\nsteps:\n  - {id: srv, exec: ls, "
      .. "background: true, session: a}\n  - {id: s, stop: srv}\n" },
    { "a misspelt session",
      "sessions: {py: {}}\nsteps:\n  - {id: a, exec: ls, session: pi}\n",
      "3:32: step 'a' uses session 'pi', which is not declared in "
      .. "'sessions' (did you mean 'py'?)",
      "sessions: {py: {}}\nsteps:\n  - {id: a, exec: ls, session: py}\n" },
    -- without a 'sessions' section the implicit one may be named
    { "a session named but none declared",
      "steps:\n  - {exec: ls, session: main}\n",
      "2:25: step 'step-1' uses session 'main', which is not declared in "
      .. "'sessions'", "steps:\n  - {exec: ls, session: default}\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end
end)

describe("check reports in expressions", function()
  local cases = {
    { "an unknown step",
      "steps:\n  - {id: a, exec: 'echo ${{ steps.zz.stdout }}'}\n",
      "2:19: unknown step 'zz' in '${{ steps.zz.stdout }}'",
      "steps:\n  - {id: a, exec: 'echo ${{ workflow.name }}'}\n" },
    { "a main step reading a finally step",
      "steps:\n  - {id: a, exec: 'echo ${{ steps.f.stdout }}'}\nfinally:\n"
      .. "  - {id: f, exec: ls}\n",
      "2:19: step 'a' reads steps.f, a finally step that runs after it",
      "steps:\n  - {id: a, exec: ls}\nfinally:\n  - {id: f, exec: 'echo "
      .. "${{ steps.a.stdout }}'}\n" },
    { "an unknown session",
      "steps:\n  - {id: a, exec: 'echo ${{ sessions.zz.id }}'}\n",
      "2:19: unknown session 'zz' in '${{ sessions.zz.id }}'",
      "steps:\n  - {id: a, exec: 'echo ${{ sessions.default.id }}'}\n" },
    -- two problems at one place: in the order of their messages
    { "two unknown names in one value",
      "inputs: {p: 1}\nsteps:\n  - {id: a, exec: 'echo ${{ steps.zz.x }} "
      .. "${{ inputs.q }}'}\n",
      { "3:19: unknown input 'q' in '${{ inputs.q }}'",
        "3:19: unknown step 'zz' in '${{ steps.zz.x }}'",
        "3:38: unknown field 'x' of steps.zz in '${{ steps.zz.x }}'" },
      "inputs: {p: 1}\nsteps:\n  - {id: a, exec: 'echo ${{ inputs.p }}'}\n"
    },
    { "an unknown function in a block, at its own line",
      "steps:\n  - id: a\n    exec: |\n      echo ${{ upper(inputs.x) }}\n",
      { "3:11: unknown input 'x' in '${{ upper(inputs.x) }}'",
        "4:16: unknown name 'upper' in '${{ upper(inputs.x) }}'" },
      "inputs: {x: a}\nsteps:\n  - id: a\n    exec: |\n      echo "
      .. "${{ inputs.x }}\n" },
    -- an escape in the file's text: the expression is not found there,
    -- so the value's own position stands for it
    { "an escaped expression, at its value",
      "steps:\n  - {id: a, exec: \"echo ${{\\tnope(1) }}\"}\n",
      "2:19: unknown name 'nope' (did you mean 'type'?) in "
      .. "'${{ nope(1) }}'",
      "steps:\n  - {id: a, exec: \"echo ${{\\ttype(1) }}\"}\n" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() refused(c[2], c[3], c[4]) end)
  end

  it("takes no text in a string or a comment for a reference", function()
    local ok, err = check("steps:\n  - {id: a, exec: ls}\n  - id: b\n"
                          .. "    exec: \"echo ${{ contains(steps.a.stdout, "
                          .. "'inputs.zz') }}\"\n    if: \"steps.a.stdout "
                          .. "-- steps.zz\"\n")
    assert.is_true(ok, err)
    -- control: the same name outside the string is one
    refused("steps:\n  - {id: a, exec: ls}\n  - id: b\n    exec: \"echo "
            .. "${{ contains(steps.a.stdout, inputs.zz) }}\"\n",
            "4:11: unknown input 'zz' in '${{ contains(steps.a.stdout, "
            .. "inputs.zz) }}'")
  end)

  it("an unescaped expression is reported where it starts", function()
    refused("steps:\n  - {id: a, exec: \"echo ${{ nope(1) }}\"}\n",
            "2:29: unknown name 'nope' (did you mean 'type'?) in "
            .. "'${{ nope(1) }}'")
  end)
end)

describe("check of a Lua table workflow", function()
  local function lua_refused(code, expect, good)
    refused(code, expect, good, "wf.lua")
  end

  it("refuses an output that is a function", function()
    lua_refused('return { steps = { { exec = "ls" } },\n'
                .. '  outputs = { f = function() end } }\n',
                "1:1: output 'f' must be a value or an expression, not a "
                .. "function",
                'return { steps = { { exec = "ls" } },\n'
                .. '  outputs = { f = "x" } }\n')
  end)

  it("locates two kinds at the step's id", function()
    lua_refused('return {\n  steps = {\n    { id = "a", run = "x", '
                .. 'exec = "ls" },\n  },\n}\n',
                "3:12: step 'a' has two kinds, 'exec' and 'run': one step "
                .. "does one thing",
                'return {\n  steps = {\n    { id = "a", exec = "ls" },\n'
                .. '  },\n}\n')
  end)

  it("names what a table is", function()
    lua_refused('return {\n  steps = {\n    { id = "a", exec = {} },\n  },\n'
                .. '}\n',
                "3:12: 'exec' of step 'a' must be a command line or a list "
                .. "of arguments, not an empty table",
                'return {\n  steps = {\n    { id = "a", exec = { "ls" } },\n'
                .. '  },\n}\n')
    lua_refused('return { steps = { { id = "a", exec = { cmd = "ls" } } } }\n',
                "1:27: 'exec' of step 'a' must be a command line or a list "
                .. "of arguments, not a mapping")
    lua_refused('return { steps = { setmetatable({ exec = "ls" }, {}) } }\n',
                "1:1: a step must be a mapping, not a table with a metatable",
                'return { steps = { { exec = "ls" } } }\n')
    lua_refused('return { steps = { { id = "a", lua = 7 } } }\n',
                "1:27: 'lua' of step 'a' must be Lua code or a function, not "
                .. "a number",
                'return { steps = { { id = "a", lua = function() end } } }\n')
  end)

  it("falls back to the file's start for a step it cannot find",
     function()
    -- the id is computed: no "s1" in the text
    lua_refused('local id = "s" .. "1"\nreturn { steps = { { id = id, '
                .. 'exce = "ls" } } }\n',
                "1:1: unknown step kind 'exce' in step 's1' (did you mean "
                .. "'exec'?)")
    lua_refused('return { steps = { { exec = "ls", [5] = 1 } } }\n',
                "1:1: unexpected key 5 in step 'step-1'")
  end)
end)

describe("check's evaluation of a Lua file", function()
  local function load(code)
    return workflow.load(help.file(dir, code, "wf.lua"))
  end

  it("reports an undefined global at its line", function()
    refused('return {\n  steps = { { exec = nosuch } },\n}\n',
            "2:1: undefined global 'nosuch'",
            'local nosuch = "ls"\nreturn {\n  steps = { { exec = nosuch } },'
            .. '\n}\n', "wf.lua")
  end)

  it("runs coroutines, and reports their errors", function()
    local wf = assert(load('local gen = coroutine.wrap(function() '
                           .. 'coroutine.yield("ls") end)\n'
                           .. 'return { steps = { { exec = gen() } } }\n'))
    assert.equal("ls", wf.steps[1].spec.command)
    refused('local gen = coroutine.wrap(function() error("boom") end)\n'
            .. 'return { steps = { { exec = gen() } } }\n', "1:1: boom", nil,
            "wf.lua")
  end)

  it("takes a side effect inside a coroutine for a plain script",
     function()
    assert.equal("script", load('local gen = coroutine.wrap(function() '
                                .. 'return io.open("/etc/passwd") end)\n'
                                .. 'return { steps = { { exec = gen() } } }\n'))
    -- control: the same file without the side effect is a workflow
    assert.is_table(load('local gen = coroutine.wrap(function() '
                         .. 'return "ls" end)\n'
                         .. 'return { steps = { { exec = gen() } } }\n'))
  end)

  it("hides the host's string metatable, not other metatables", function()
    local wf = assert(load('return { steps = { { exec = "echo " .. '
                           .. 'tostring(getmetatable("")) .. " " .. '
                           .. 'tostring(getmetatable(setmetatable({}, '
                           .. '{ __metatable = "m" }))) } } }\n'))
    assert.equal("echo nil m", wf.steps[1].spec.command)
  end)

  it("allows counting and collecting garbage, nothing else", function()
    assert.is_table(load('collectgarbage("collect")\n'
                         .. 'local kb = collectgarbage("count")\n'
                         .. 'return { steps = { { exec = "ls" } } }\n'))
    refused('collectgarbage("stop")\nreturn { steps = { { exec = "ls" } } }\n',
            "1:1: collectgarbage('stop') is not available to check", nil,
            "wf.lua")
  end)

  it("bounds string.rep through the string methods", function()
    refused('return { steps = { { exec = ("x"):rep(1e9) } } }\n',
            "1:1: string.rep: result larger than the check's limit",
            'return { steps = { { exec = ("x"):rep(3) } } }\n', "wf.lua")
  end)

  it("takes a file returning no table for a plain script", function()
    local ok, note = check("return 42\n", "wf.lua")
    assert.is_true(ok)
    assert.equal("plain Lua script: syntax ok", note)
    assert.equal("script", load("return 42\n"))
  end)
end)
