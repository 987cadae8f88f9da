-- The REPL through a pseudo-terminal (tests/host/pty_drive.py): Tab
-- completion of objects, how values are shown, live command output,
-- Ctrl-C at the prompt and during a call, Ctrl-D.
local server = require "server"
local cjson = require "cjson"

local BIN = server.bin
local q = server.q

-- Runs the REPL with the steps of pty_drive.py in a state directory of
-- its own; returns the transcript (CRLF as LF) and the step -> seconds
-- of each "?" step (false when it never matched).
local function drive_env(env, ...)
  local args = {}
  for i, step in ipairs({ ... }) do args[i] = q(step) end
  local p = io.popen(env .. " AGENTCUBE_BIN=" ..
                     q(BIN) .. " python3 tests/host/pty_drive.py " ..
                     table.concat(args, " ") .. " 2>&1")
  local out = p:read("a")
  p:close()
  local at = {}
  for n, t in out:gmatch("%[match (%d+) (%S+)%]") do
    at[tonumber(n)] = tonumber(t) or false
  end
  return out, at
end

local function drive(home, ...)
  return drive_env("AGENTCUBE_HOME=" .. q(home), ...)
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"[exit $?]\"")
  local out = p:read("a")
  p:close()
  return out:gsub("%[exit (%d+)%]\n$", ""), tonumber(out:match("%[exit (%d+)%]\n$"))
end

local function sessions_in(home)
  local p = io.popen("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                     " sessions ls 2>&1")
  local out = p:read("a")
  p:close()
  local n = 0
  for _ in out:gmatch("\n%x%x%x%x%x%x%x%x%-") do n = n + 1 end
  return n
end

local function stop_home(home)
  local info = server.read_file(home .. "/serve.json")
  if info then
    os.execute("kill -TERM " .. math.tointeger(cjson.decode(info).pid) ..
               " 2>/dev/null")
    for _ = 1, 100 do
      if not server.read_file(home .. "/serve.json") then break end
      os.execute("sleep 0.05")
    end
  end
  os.execute("rm -rf " .. q(home))
end

-- A home for the local runtime, stopped even when the test fails half-way.
local function new_home()
  local home = server.tmpdir("agentcube-home")
  finally(function() stop_home(home) end)
  return home
end

describe("the REPL", function()
  it("shows tables nested, sorted, quoted, bounded, with cycles marked",
     function()
    local home = new_home()
    local out, at = drive(home,
      ">t = { 3, 1, 'two', zeta = true, alpha = 'a\\\\n\"b\"', " ..
      "['key with space'] = 1.5, [10] = 'ten', " ..
      "nest = { x = { y = { z = { w = { v = { u = {} } } } } } } }\n",
      ">t.self = t\n",
      ">=t\n", "?\n}\n> $",
      ">=#t, 'x', nil\n", "?> $",
      ">=string.rep('x', 5000)\n", "?> $",
      ">big = {} for i = 1, 1000 do big[i] = { i, tostring(i) } end\n",
      ">=big\n", [[?cut at \d+ lines]])
    local shown = out:match("\n> =t\n(.-)\n> ")
    assert.is_truthy(shown, out)
    -- the array part first, in order; then the keys sorted: numbers,
    -- then strings; identifiers bare, other keys bracketed
    assert.equal(table.concat({
      "{",
      "  3,",
      "  1,",
      '  "two",',
      '  [10] = "ten",',
      '  alpha = "a\\n\\"b\\"",',
      '  ["key with space"] = 1.5,',
      "  nest = {",
      "    x = {",
      "      y = {",
      "        z = {",
      "          w = {",
      "            v = {...},",
      "          },",
      "        },",
      "      },",
      "    },",
      "  },",
      "  self = <cycle>,",
      "  zeta = true,",
      "}" }, "\n"), shown)
    -- several results: tab-separated, strings quoted, nil shown
    assert.matches('\n3\t"x"\tnil\n', out, 1, true)
    -- a long string is cut, saying how long it was
    assert.matches('"' .. ("x"):rep(2000) .. '"... (5000 bytes in all)',
                   out, 1, true)
    assert.is_nil(out:find(("x"):rep(2001), 1, true))
    -- a long listing stops and says so (small tables stay on one line)
    assert.is_number(at[11], out)
    assert.matches('\n  { 1, "1" },\n', out, 1, true)
    local lines = select(2, out:match("> =big\n(.*)"):gsub("\n", ""))
    assert.is_true(lines < 420, lines)
    stop_home(home)
  end)

  it("clears the line on Ctrl-C at the prompt, and drops an unfinished " ..
     "chunk", function()
    local home = new_home()
    local out, at = drive(home,
      "~0.5", ">abc", "~0.3", "^C", "?\\^C\n> $",
      ">=1+1\n", "?\n2\n> $",
      ">function f()\n", "?>> $", "^C", "?\\^C\n> $",
      ">=f\n", "?\nnil\n> $")
    assert.is_number(at[5], out)
    assert.is_number(at[7], out)           -- not "abc=1+1"
    assert.is_number(at[9], out)
    assert.is_number(at[11], out)
    assert.is_number(at[13], out)          -- the function was dropped
    assert.matches("[exit 0]", out, 1, true)
    stop_home(home)
  end)

  it("completes fields and methods of clients, contexts and processes, " ..
     "globals and nested keys", function()
    local home = new_home()
    local out, at = drive(home,
      ">ci = agentcube.CodeInterpreterClient()\n", "?\n> $",
      -- two candidates: Tab twice lists them
      ">ci:execute_command\t\t", "?execute_command_result", "^C",
      ">=type(ci.execute_command_res\t)\n", "?> $",
      ">=ci.sessi\t\n", "?> $",
      ">ctx = ci:create_context('python')\n", "?\n> $",
      ">=ctx:ru\t('6*7').value\n", "?> $",
      ">p = ci:spawn('sleep 30')\n", "?\n> $",
      ">=type(p.wa\t)\n", "?> $", ">=p.pi\t\n", "?> $",
      ">nest = { inner = { deep = { value = 42 } } }\n", "?\n> $",
      ">=nest.inner.deep.va\t\n", "?> $",
      ">=agentcube.CodeInterpr\t\n", "?> $",
      ">ar = agentcube.AgentRuntimeClient('a', { session_id = 's1', " ..
        "router_url = 'http://127.0.0.1:9' })\n", "?\n> $",
      ">=type(ar.inv\t)\n", "?> $", ">=ar.session_\t\n", "?> $",
      -- nothing to complete: the line stays as typed
      ">ci:zzz\t\t", "~0.5", "^C",
      ">=p:kill()\n", "?> $",
      -- a module's names, sorted, without the private ones
      -- (the whole list: the line is drawn again after it)
      ">agentcube.\t\t", "?agentcube\\.try[\\s\\S]*\\n[^\\n]*> agentcube\\.", "^C",
      ">=agentcube._pl\t ~= nil\n", "?> $")
    for i = 2, 41 do
      if at[i] ~= nil then assert.is_number(at[i], "step " .. i .. out) end
    end
    -- both candidates listed, the unique ones completed and run
    assert.matches("ci:execute_command%s+ci:execute_command_result", out)
    assert.matches('=type%(ci.execute_command_result%)\n"function"\n', out)
    assert.matches('=ci.session_id\n"%x+%-', out)
    assert.matches("=ctx:run%('6%*7'%).value\n\"42\"\n", out)
    -- a process offers its methods and its fields
    assert.matches('=type%(p.wait%)\n"function"\n', out)
    assert.matches("=p.pid\n%d+\n", out)
    assert.matches("=nest.inner.deep.value\n42\n", out, 1, true)
    assert.matches("=agentcube.CodeInterpreterClient\n", out, 1, true)
    -- an agent runtime client offers its method and its fields too
    assert.matches('=type%(ar.invoke%)\n"function"\n', out)
    assert.matches('=ar.session_id\n"s1"\n', out)
    -- control: an unknown name completes to nothing
    assert.is_nil(out:find("ci:zzz%a", 1))
    -- methods are not offered after '.', fields not after ':'
    assert.is_nil(out:find("ci:session_id", 1, true))
    local list = out:match("> agentcube%.\n(.-)\n> ")
    assert.is_string(list, out)
    assert.matches("agentcube.CodeInterpreterClient", list, 1, true)
    assert.matches("agentcube.is_error", list, 1, true)
    assert.is_nil(list:find("agentcube._", 1, true))
    -- asked for, a private name completes
    assert.matches("=agentcube._plans ~= nil\ntrue\n", out, 1, true)
    stop_home(home)
  end)

  it("shows a command's output while it runs, cancels a call on Ctrl-C " ..
     "with the session intact, and deletes its sessions on Ctrl-D",
     function()
    local home = new_home()
    local out, at = drive(home,
      ">ci = agentcube.CodeInterpreterClient()\n", "?\n> $",
      ">=ci:execute_command({'sh', '-c', 'echo fir\"\"st; sleep 4; " ..
        "echo sec\"\"ond'})\n",
      "?first\n", "?second\n", [[?"first\\nsecond\\n"\n> $]],
      ">=ci:execute_command('sleep 30')\n", "~1.5", "^C",
      "?EINTERRUPTED[^\n]*\n> $",
      ">=ci:execute_command_result('echo after')\n",
      [[?\n\{ duration = [0-9.e-]+, exit_code = 0, stderr = "", ]] ..
        [[stdout = "after\\n" \}\n> $]],
      -- a timeout argument, a callback of the call's own, timeout and
      -- options: what the call does not handle is shown live
      ">=ci:execute_command({'sh', '-c', 'echo oops >&2'}, 30)\n",
      [[?\noops\n""\n> $]],
      [[>=ci:execute_command('echo mine', { on_stdout = function(c) ]] ..
        [[io.write('<', #c, '>') end })\n]],
      [[?\n<5>\n?"mine\\n"\n> $]],
      ">=ci:execute_command('echo t', 30, {})\n", [[?\nt\n"t\\n"\n> $]],
      -- output without a final newline: the value on a line of its own
      ">=ci:execute_command({'printf', 'no eol'})\n",
      [[?\nno eol\n"no eol"\n> $]],
      ">_STREAM = false\n",
      ">=ci:run_code('python', 'print(6*7)')\n", [[?\n"42\\n"\n> $]])
    -- the first line is on the terminal long before the command ends
    assert.is_number(at[4], out)
    assert.is_true(at[4] < 3, out)
    assert.is_number(at[5], out)           -- then the second, 4 s later
    assert.is_number(at[6], out)
    -- Ctrl-C: back at the prompt within a generous bound, one line
    assert.is_number(at[10], out)
    assert.is_true(at[10] < 10, out)
    assert.is_nil(out:find("stack traceback", 1, true))
    assert.is_number(at[12], out)          -- the same session still works
    assert.is_number(at[14], out)          -- stderr, live
    assert.is_number(at[16], out)          -- the call's own on_stdout
    assert.is_nil(out:find("\nmine\n", 1, true))
    assert.is_number(at[18], out)
    assert.is_number(at[20], out)          -- the value after a line break
    assert.is_number(at[23], out)          -- _STREAM = false: the value only
    assert.is_nil(out:find("\n42\n", 1, true))
    assert.matches("[exit 0]", out, 1, true)
    assert.equal(0, sessions_in(home))
    stop_home(home)
  end)

  it("deletes its sessions on Ctrl-D right after an interrupted call",
     function()
    local home = new_home()
    local out, at = drive(home,
      ">ci = agentcube.CodeInterpreterClient()\n", "?\n> $",
      ">=ci.session_id\n", "?\n> $",
      ">=ci:execute_command('sleep 30')\n", "~1.5", "^C",
      "?EINTERRUPTED[^\n]*\n> $")
    assert.is_number(at[8], out)
    assert.matches("[exit 0]", out, 1, true)
    assert.equal(0, sessions_in(home))
    stop_home(home)
  end)

  it("finds the state directory the server, the Lua module, sessions " ..
     "and the REPL agree on (HOME/.agentcube, AGENTCUBE_HOME unset)",
     function()
    local userhome = server.tmpdir("agentcube-userhome")
    local state = userhome .. "/.agentcube"
    local env = "env -u AGENTCUBE_HOME HOME=" .. q(userhome)
    -- the server, with no --state-dir
    local out, code = run(env .. " " .. q(BIN) ..
                          " serve --daemon --listen 127.0.0.1:0")
    assert.equal(0, code, out)
    local info = server.read_file(state .. "/serve.json")
    assert.truthy(info, out)
    local pid = math.tointeger(cjson.decode(info).pid)
    -- the Lua module finds that server (and starts no other)
    out, code = run(env .. " " .. q(BIN) .. " -e " .. q(
      "local ci = agentcube.CodeInterpreterClient() print(ci:detach())"))
    assert.equal(0, code, out)
    local id = out:match("(%x+%-%x+%-%x+%-%x+%-%x+)")
    assert.truthy(id, out)
    assert.equal(pid, math.tointeger(cjson.decode(
      server.read_file(state .. "/serve.json")).pid))
    -- sessions lists the session that client made
    out, code = run(env .. " " .. q(BIN) .. " sessions ls")
    assert.equal(0, code, out)
    assert.matches(id, out, 1, true)
    -- the REPL reaches the same session, and keeps its history there
    out = drive_env(env,
      ">ci = agentcube.CodeInterpreterClient{ session_id = '" .. id ..
        "' }\n", "?\n> $",
      ">=ci:execute_command('echo same')\n", [[?"same\\n"\n> $]])
    assert.matches('"same\\n"', out)
    -- (libedit writes the history with octal escapes: \040 a space)
    assert.matches("echo\\040same", server.read_file(state .. "/history"),
                   1, true)
    -- control: another directory has none of it
    out, code = run("env AGENTCUBE_HOME=" .. q(userhome .. "/other") ..
                    " " .. q(BIN) .. " sessions ls")
    assert.equal(0, code, out)
    assert.is_nil(out:find(id, 1, true))
    out, code = run(env .. " " .. q(BIN) .. " sessions rm " .. id)
    assert.equal(0, code, out)
    assert.matches("deleted " .. id, out, 1, true)
    os.execute("kill -TERM " .. pid)
    for _ = 1, 100 do
      if not server.read_file(state .. "/serve.json") then break end
      os.execute("sleep 0.05")
    end
    os.execute("rm -rf " .. q(userhome))
  end)
end)
