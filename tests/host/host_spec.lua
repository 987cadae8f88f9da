-- The agentcube executable: subcommands, exit codes, the zero-config local
-- runtime, Ctrl-C, the REPL (through a pseudo-terminal and piped), scripts.
local server = require "server"
local cjson = require "cjson"

local BIN = server.bin
local q = server.q

-- Runs a shell command line; returns its output and exit status.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"[exit $?]\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("%[exit (%d+)%]\n$"))
  return out:gsub("%[exit %d+%]\n$", ""), code
end

-- A private AGENTCUBE_HOME; the host starts its local runtime there.
local stop_home

-- A home for the local runtime, stopped even when the test fails half-way
-- (a failed assertion must not leave its server running).
local function new_home()
  local home = server.tmpdir("agentcube-home")
  finally(function() stop_home(home) end)
  return home
end

function stop_home(home)
  local info = server.read_file(home .. "/serve.json")
  if info then
    local pid = math.tointeger(cjson.decode(info).pid)
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not server.read_file(home .. "/serve.json") then break end
      os.execute("sleep 0.05")
    end
  end
  os.execute("rm -rf " .. q(home))
end

local function sessions_in(home)
  local out = run("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                  " sessions ls")
  local n = 0
  for _ in out:gmatch("\n%x%x%x%x%x%x%x%x%-") do n = n + 1 end
  return n, out
end

describe("agentcube", function()
  it("prints help and version, and refuses unknown options", function()
    local out, code = run(q(BIN) .. " --help")
    assert.equal(0, code)
    assert.matches("run FILE", out, 1, true)
    out, code = run(q(BIN) .. " --version")
    assert.equal(0, code)
    assert.matches("^agentcube %d+%.%d+%.%d+ %(Lua 5%.4", out)
    out, code = run(q(BIN) .. " --bogus")
    assert.equal(2, code)
    assert.matches("unrecognized option '--bogus'", out, 1, true)
    out, code = run(q(BIN) .. " run")
    assert.equal(2, code)
    assert.matches("usage: agentcube run FILE", out, 1, true)
    out, code = run(q(BIN) .. " run --help")
    assert.equal(0, code)
    assert.matches("-v, --verbose     show each step's stdout", out, 1, true)
    assert.is_nil(out:find("log each request", 1, true))
    -- an agentcube.Error from a script: one prefix, not two
    out, code = run(q(BIN) .. " -e 'agentcube.CodeInterpreterClient{" ..
                    "workload_manager_url=\"http://127.0.0.1:1\", " ..
                    "router_url=\"http://127.0.0.1:1\", max_retries=0}'")
    assert.equal(1, code)
    assert.matches("^agentcube: E%u+: ", out)
    assert.is_nil(out:find("agentcube: agentcube:", 1, true))
    out, code = run(q(BIN) .. " run a.yaml --set novalue")
    assert.equal(2, code)
    assert.matches("--set needs NAME=VALUE", out, 1, true)
  end)

  it("runs Lua scripts like lua5.4, with arg and ...", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/s.lua", "w")
    f:write("print(arg[0] ~= nil, arg[1], select('#', ...), ...)\n" ..
            "print(getmetatable(agentcube.CodeInterpreterClient).__call " ..
            "~= nil)\n")
    f:close()
    local out, code = run(q(BIN) .. " " .. q(dir .. "/s.lua") .. " x y")
    assert.equal(0, code)
    assert.equal("true\tx\t2\tx\ty\ntrue\n", out)
    out, code = run(q(BIN) .. " -e 'print(1+1)'")
    assert.equal(0, code)
    assert.equal("2\n", out)
    out, code = run(q(BIN) .. " -e 'error({code=1}, 0)'")
    assert.equal(1, code)
    assert.matches("error object is a table value", out, 1, true)
    out, code = run("echo 'print(6*7)' | " .. q(BIN))
    assert.equal("42\n", out)
    assert.equal(0, code)
    out, code = run(q(BIN) .. " " .. q(dir .. "/missing.lua"))
    assert.equal(1, code)
    assert.matches("cannot open", out, 1, true)
    os.execute("rm -rf " .. q(dir))
  end)

  it("refuses bad command lines of run, check and sessions with exit 2",
     function()
    for _, c in ipairs{
      { "run a.yaml b.yaml", "agentcube run: unexpected argument 'b.yaml'" },
      { "run --frob a.yaml", "agentcube run: unexpected argument '--frob'" },
      { "run --set =v a.yaml", "agentcube run: --set needs NAME=VALUE" },
      { "check", "usage: agentcube check FILE" },
      { "check -x", "usage: agentcube check FILE" },
      { "check a.yaml b.yaml", "usage: agentcube check FILE" },
      { "sessions list", "usage: agentcube sessions [ls | rm ID...]" },
      { "sessions rm", "usage: agentcube sessions rm ID..." },
      { "-e", "agentcube: '-e' and '-l' need an argument" },
    } do
      local out, code = run(q(BIN) .. " " .. c[1])
      assert.equal(2, code, c[1])
      assert.equal(c[2], out:match("^[^\n]*"), c[1])
    end
    -- control: the usage of run goes with its refusal, to stderr only
    local out = run("(" .. q(BIN) .. " run a.yaml b.yaml 2>/dev/null)")
    assert.equal("", out)
  end)

  it("check and run name a file they cannot read, with exit 2", function()
    local missing = "/nonexistent/wf.yaml"
    local out, code = run(q(BIN) .. " check " .. missing)
    assert.equal(2, code)
    assert.equal(missing .. ":1:1: cannot read: " .. missing
                 .. ": No such file or directory\n", out)
    -- --json: the report on stdout says why
    out, code = run("(" .. q(BIN) .. " run --json " .. missing
                    .. " 2>/dev/null)")
    assert.equal(2, code)
    local rep = cjson.decode(out)
    assert.equal("invalid", rep.status)
    assert.equal(missing .. ":1:1: cannot read: " .. missing
                 .. ": No such file or directory", rep.error)
  end)

  it("passes --set values to the workflow's inputs", function()
    local dir = server.tmpdir()
    local home = new_home()
    local f = io.open(dir .. "/wf.yaml", "w")
    f:write("inputs: { x: {}, y: { type: number } }\nsteps:\n"
            .. "  - { id: a, lua: return 1 }\n"
            .. "outputs: { xy: '${{ inputs.x }}-${{ inputs.y + 1 }}' }\n")
    f:close()
    -- a workflow of lua steps creates no session: nothing to reach
    local env = "AGENTCUBE_HOME=" .. q(home) .. " WORKLOAD_MANAGER_URL="
                .. "http://127.0.0.1:1 ROUTER_URL=http://127.0.0.1:1 "
    local out, code = run("(" .. env .. q(BIN) .. " run " ..
                          q(dir .. "/wf.yaml") ..
                          " --set=x=a=b --set y=2 --json 2>/dev/null)")
    assert.equal(0, code, out)
    assert.equal("a=b-3", cjson.decode(out).outputs.xy)
    -- --json with -v: the report alone on stdout, the progress on stderr
    out, code = run("(" .. env .. q(BIN) .. " run " .. q(dir .. "/wf.yaml")
                    .. " --set x=1 --set y=2 --json -v 2>" ..
                    q(dir .. "/progress.txt") .. ")")
    assert.equal(0, code, out)
    assert.equal("1-3", cjson.decode(out).outputs.xy)
    assert.matches("^%[ *%d+%.%d%d%] workflow wf ",
                   server.read_file(dir .. "/progress.txt"))
    out, code = run(env .. q(BIN) .. " run " .. q(dir .. "/wf.yaml")
                    .. " --set x=1 --set y=two")
    assert.equal(2, code)
    assert.matches("input 'y' must be a number, not 'two'", out, 1, true)
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)

  it("sessions: nothing held when no local runtime runs", function()
    local home = new_home()
    local env = "AGENTCUBE_HOME=" .. q(home) .. " "
    local out, code = run(env .. q(BIN) .. " sessions")
    assert.equal(0, code)
    assert.equal("", out)
    out, code = run(env .. q(BIN) .. " sessions rm 1234")
    assert.equal(1, code)
    assert.equal("agentcube sessions: no local runtime is running\n", out)
    -- and asking started none
    assert.is_nil(server.read_file(home .. "/serve.json"))
    -- a state file that is not JSON is named, exit 1
    local f = io.open(home .. "/serve.json", "w")
    f:write("not json\n")
    f:close()
    out, code = run(env .. q(BIN) .. " sessions")
    assert.equal(1, code)
    assert.matches("^agentcube sessions: " .. home:gsub("%p", "%%%0") ..
                   "/serve%.json: ", out)
    os.remove(home .. "/serve.json")
    stop_home(home)
  end)

  it("takes lua5.4's -v, -l, - and --", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/s.lua", "w")
    f:write("print(..., arg[0])\n")
    f:close()
    local out, code = run(q(BIN) .. " -v")
    assert.equal(0, code)
    assert.matches("^agentcube %d+%.%d+%.%d+ %(Lua 5%.4", out)
    out, code = run(q(BIN) .. " -l agentcube_no_such_module")
    assert.equal(1, code)
    assert.matches("module 'agentcube_no_such_module' not found", out, 1,
                   true)
    out, code = run("echo 'print(select(\"#\", ...), ...)' | " .. q(BIN)
                    .. " - a b")
    assert.equal(0, code)
    assert.equal("2\ta\tb\n", out)
    -- after --, a script named like an option is a script
    out, code = run("cd " .. q(dir) .. " && " .. q(BIN) .. " -- s.lua x")
    assert.equal(0, code)
    assert.equal("x\ts.lua\n", out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("is its own local runtime when AGENTCUBE_BIN is not set", function()
    local out, code = run("env -u AGENTCUBE_BIN " .. q(BIN)
                          .. " -e 'io.write(os.getenv(\"AGENTCUBE_BIN\"))'")
    assert.equal(0, code)
    local real = io.popen("realpath " .. q(BIN)):read("l")
    assert.equal(real, out)
    -- control: a value that is set is left alone
    out = run("AGENTCUBE_BIN=/x " .. q(BIN)
              .. " -e 'io.write(os.getenv(\"AGENTCUBE_BIN\"))'")
    assert.equal("/x", out)
  end)

  it("runs a workflow on the zero-config local runtime", function()
    local home = new_home()
    local out, code = run("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                          " run workflows/quickstart.yaml")
    assert.equal(0, code, out)
    assert.matches("greeting = Hello, AgentCube!", out, 1, true)
    assert.truthy(server.read_file(home .. "/serve.json"))
    assert.truthy(server.read_file(home .. "/token"))
    assert.equal(0, (sessions_in(home)))
    -- --json: one machine-readable report on stdout
    out, code = run("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                    " run --json workflows/quickstart.yaml 2>/dev/null")
    assert.equal(0, code, out)
    local rep = cjson.decode(out)
    assert.equal(0, rep.exit_code)
    assert.equal("Hello, AgentCube!\n", rep.outputs.greeting)
    stop_home(home)
  end)

  it("keeps a session with --keep and lists and removes it", function()
    local home = new_home()
    local env = "AGENTCUBE_HOME=" .. q(home) .. " "
    local out, code = run(env .. q(BIN) .. " run --keep " ..
                          "workflows/quickstart.yaml")
    assert.equal(0, code, out)
    local n, listing = sessions_in(home)
    assert.equal(1, n)
    local id = listing:match("\n(%x+%-%x+%-%x+%-%x+%-%x+)")
    -- the columns line up: the template is whole and CREATED starts
    -- where its header does
    local header, row = listing:match("^([^\n]*)\n([^\n]*)")
    assert.matches("  default/my%-interpreter  ", row)
    local created = row:match("^%S+%s+%S+%s+()")
    assert.equal(header:find("CREATED", 1, true), created, listing)
    out, code = run(env .. q(BIN) .. " sessions rm " .. id)
    assert.equal(0, code)
    assert.matches("deleted " .. id, out, 1, true)
    out, code = run(env .. q(BIN) .. " sessions rm " .. id)
    assert.equal(1, code)
    assert.matches("no such session", out, 1, true)
    assert.equal(0, (sessions_in(home)))
    stop_home(home)
  end)

  it("checks a Lua file that grabs memory within a hard cap", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/grab.lua", "w")
    -- eight copies a turn: past any look between two lines
    f:write('local s = "x"\nfor i = 1, 40 do s = s .. s .. s .. s .. s ' ..
            '.. s .. s .. s end\nreturn { steps = {} }\n')
    f:close()
    local out, code = run(q(BIN) .. " check " .. q(dir .. "/grab.lua"))
    assert.equal(2, code, out)
    assert.matches(dir .. "/grab.lua:1:1: ", out, 1, true)
    assert.matches("memory", out, 1, true)
    -- positive control: the cap leaves room for real files
    out, code = run(q(BIN) .. " check workflows/table.lua")
    assert.equal(0, code, out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("shows a failing script's own frames, not the engine's", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/s.lua", "w")
    f:write('local function f() error("boom") end\nf()\n')
    f:close()
    local out, code = run(q(BIN) .. " run " .. q(dir .. "/s.lua"))
    assert.equal(1, code)
    assert.matches("s.lua:1: boom", out, 1, true)
    assert.matches("s.lua:2: in main chunk", out, 1, true)
    assert.is_nil(out:find("agentcube/workflow", 1, true), out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("neutralises control characters in what it shows a person",
     function()
    local out, code = run(q(BIN) .. [[ -e 'error("a\27]0;pwned\7\rb")']])
    assert.equal(1, code)
    assert.matches("a\\x1b]0;pwned\\x07\\x0db", out)
    assert.is_nil(out:find("\27", 1, true))
    local dir = server.tmpdir()
    local f = io.open(dir .. "/evil.yaml", "w")
    f:write('steps:\n  - exec: ls\n    "t\\e]0;x\\a": 1\n')
    f:close()
    out, code = run(q(BIN) .. " check " .. q(dir .. "/evil.yaml"))
    assert.equal(2, code)
    assert.matches("unknown key 't\\x1b]0;x\\x07'", out)
    assert.is_nil(out:find("\27", 1, true))
    -- positive control: --json keeps the bytes (JSON-escaped)
    out = run(q(BIN) .. " run --json " .. q(dir .. "/evil.yaml") ..
              " 2>/dev/null")
    assert.matches("\\u001b", out)
    -- a C1 control (CSI as U+009B) is shown escaped, other text of the
    -- same lead byte (the pound sign) as it is, also in a file's name
    local name = dir .. "/\194\155\194\163.yaml"
    f = io.open(name, "w")
    f:write("steps:\n  - exec: ls\n")
    f:close()
    out, code = run(q(BIN) .. " check " .. q(name))
    assert.equal(0, code)
    assert.equal(dir .. "/\\u009b\194\163.yaml: ok\n", out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("reports an invalid workflow as FILE:LINE:COL with exit 2", function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/bad.yaml", "w")
    f:write("name: bad\nsteps:\n  - id: x\n    exce: true\n")
    f:close()
    local out, code = run(q(BIN) .. " check " .. q(dir .. "/bad.yaml"))
    assert.equal(2, code)
    assert.matches(dir .. "/bad.yaml:4:5:", out, 1, true)
    out, code = run(q(BIN) .. " run " .. q(dir .. "/bad.yaml"))
    assert.equal(2, code)
    assert.matches(dir .. "/bad.yaml:4:5:", out, 1, true)
    out, code = run(q(BIN) .. " check workflows/quickstart.yaml")
    assert.equal(0, code)
    assert.matches("quickstart.yaml: ok", out, 1, true)
    os.execute("rm -rf " .. q(dir))
  end)

  it("stops on Ctrl-C with exit 130 and leaves no session", function()
    local home = new_home()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/long.yaml", "w")
    f:write([[
name: long
sessions: { a: {}, b: {} }
steps:
  - { id: one, session: a, exec: sleep 120 }
  - { id: two, session: b, exec: sleep 120 }
]])
    f:close()
    local p = io.popen("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                       " run " .. q(dir .. "/long.yaml") ..
                       " >" .. q(dir .. "/out") .. " 2>&1 & echo $!")
    local pid = p:read("l")
    p:close()
    -- wait until both steps run
    for _ = 1, 100 do
      if select(2, (server.read_file(dir .. "/out") or ""):gsub("start", ""))
         >= 2 and select(1, sessions_in(home)) == 2 then break end
      os.execute("sleep 0.1")
    end
    assert.equal(2, (sessions_in(home)))
    os.execute("kill -INT " .. pid)
    local code
    for _ = 1, 300 do
      local st = server.read_file(dir .. "/out") or ""
      code = tonumber(st:match("exit (%d+) in"))
      if code then break end
      os.execute("sleep 0.1")
    end
    assert.equal(130, code)
    assert.equal(0, (sessions_in(home)))
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)

  it("exits 130 when Ctrl-C interrupts a script's blocking call",
     function()
    local home = new_home()
    local dir = server.tmpdir()
    local script = "local ci = agentcube.CodeInterpreterClient() " ..
      "io.stdout:write('ready\\n') io.stdout:flush() " ..
      "ci:execute_command('sleep 60')"
    os.execute("AGENTCUBE_HOME=" .. q(home) .. " sh -c " .. q(
      q(BIN) .. " -e " .. q(script) .. " >" .. q(dir .. "/out") ..
      " 2>&1 & echo $! >" .. q(dir .. "/pid") .. "; wait $!; echo " ..
      "\"exit $?\" >" .. q(dir .. "/status")) .. " &")
    for _ = 1, 300 do
      if (server.read_file(dir .. "/out") or ""):find("ready", 1, true) then
        break
      end
      os.execute("sleep 0.1")
    end
    os.execute("sleep 1")
    local t0 = server.monotonic()
    os.execute("kill -INT " .. server.read_file(dir .. "/pid"):match("%d+"))
    local status
    for _ = 1, 300 do
      status = server.read_file(dir .. "/status")
      if status then break end
      os.execute("sleep 0.1")
    end
    assert.equal("exit 130\n", status, server.read_file(dir .. "/out"))
    assert.is_true(server.monotonic() - t0 < 10)
    assert.matches("EINTERRUPTED", server.read_file(dir .. "/out"), 1, true)
    assert.equal(0, (sessions_in(home)))
    -- control: an agentcube.Error that is not an interruption exits 1
    local out, code = run(q(BIN) .. " -e " .. q(
      "error(agentcube.Error.new{ code = 'EINVAL', message = 'x' })"))
    assert.equal(1, code, out)
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("a script's own Lua", function()
  it("is stopped by Ctrl-C in a loop, with exit 130", function()
    local dir = server.tmpdir()
    local script = "io.stdout:write('ready\\n') io.stdout:flush() " ..
                   "while true do end"
    os.execute("sh -c " .. q(q(BIN) .. " -e " .. q(script) .. " >" ..
      q(dir .. "/out") .. " 2>&1 & echo $! >" .. q(dir .. "/pid") ..
      "; wait $!; echo \"exit $?\" >" .. q(dir .. "/status")) .. " &")
    for _ = 1, 300 do
      if (server.read_file(dir .. "/out") or ""):find("ready", 1, true) then
        break
      end
      os.execute("sleep 0.05")
    end
    os.execute("kill -INT " .. server.read_file(dir .. "/pid"):match("%d+"))
    local status
    for _ = 1, 300 do
      status = server.read_file(dir .. "/status")
      if status then break end
      os.execute("sleep 0.05")
    end
    assert.equal("exit 130\n", status)
    assert.matches("^ready\nagentcube: interrupted!\n",
                   server.read_file(dir .. "/out"))
    os.execute("rm -rf " .. q(dir))
  end)

  it("comes from AGENTCUBE_LUA_DIR when a module is there", function()
    local dir = server.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/agentcube/workflow"))
    local f = io.open(dir .. "/agentcube/workflow/words.lua", "w")
    f:write("return { from_dir = true }\n")
    f:close()
    local probe = " -e 'io.write(tostring(require(\"agentcube.workflow." ..
                  "words\").from_dir))'"
    local out, code = run("AGENTCUBE_LUA_DIR=" .. q(dir) .. " " .. q(BIN)
                          .. probe)
    assert.equal(0, code, out)
    assert.equal("true", out)
    -- a module the directory lacks is the built-in one
    out, code = run("AGENTCUBE_LUA_DIR=" .. q(dir) .. " " .. q(BIN) ..
                    " -e 'io.write(type(require(\"agentcube.workflow." ..
                    "expr\").expand))'")
    assert.equal(0, code, out)
    assert.equal("function", out)
    -- control: without it, the built-in words
    out = run(q(BIN) .. probe)
    assert.equal("nil", out)
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("the REPL", function()
  it("works through a terminal: =expr, multi-line, completion, history",
     function()
    local home = new_home()
    local out = run("AGENTCUBE_HOME=" .. q(home) .. " AGENTCUBE_BIN=" ..
      q(BIN) .. " python3 tests/host/pty_repl.py " ..
      q("=1+2\n") .. " " ..
      q("function twice(x)\n") .. " " .. q("  return 2 * x\n") .. " " ..
      q("end\n") .. " " .. q("twice(21)\n") .. " " ..
      q("agentcube.CodeInterpr\\t\n") .. " " ..
      q("string.up\\t('ok')\n") .. " " ..
      q("error('boom')\n"))
    assert.matches("\n3\r?\n", out)
    assert.matches(">> ", out, 1, true)             -- continuation prompt
    assert.matches("\n42\r?\n", out)
    assert.matches("\n{ new = function: 0x", out, 1, true)  -- completed
    assert.matches('\n"OK"\r?\n', out)             -- strings quoted
    assert.matches("boom", out, 1, true)
    assert.matches("stack traceback", out, 1, true)
    assert.matches("[exit 0]", out, 1, true)
    -- libedit writes its history with octal escapes
    local hist = (server.read_file(home .. "/history") or ""):gsub(
      "\\(%d%d%d)", function(o) return string.char(tonumber(o, 8)) end)
    assert.matches("\n=1%+2\n", hist)
    assert.matches("twice(21)", hist, 1, true)
    assert.matches("function twice(x)\n  return 2 * x\nend", hist, 1, true)
    -- what Tab completed is what ran
    assert.matches("\nagentcube.CodeInterpreterClient\n", hist, 1, true)
    assert.matches("\nstring.upper('ok')\n", hist, 1, true)
    stop_home(home)
  end)

  it("keeps its history private and never follows a planted link",
     function()
    local home = new_home()
    local dir = server.tmpdir()
    local target = dir .. "/target"
    local f = io.open(target, "w")
    f:write("secret\n")
    f:close()
    os.execute("ln -s " .. q(target) .. " " .. q(home .. "/history"))
    local out = run("AGENTCUBE_HOME=" .. q(home) .. " AGENTCUBE_BIN=" ..
      q(BIN) .. " python3 tests/host/pty_repl.py " .. q("=6*7\n"))
    assert.matches("\n42\r?\n", out)
    assert.matches("history off", out, 1, true)
    assert.equal("secret\n", server.read_file(target))
    -- positive control: a file of ours is used, and made 0600
    os.execute("rm " .. q(home .. "/history") .. " && touch " ..
               q(home .. "/history") .. " && chmod 0644 " ..
               q(home .. "/history"))
    out = run("AGENTCUBE_HOME=" .. q(home) .. " AGENTCUBE_BIN=" ..
      q(BIN) .. " python3 tests/host/pty_repl.py " .. q("=6*7\n"))
    assert.is_nil(out:find("history off", 1, true))
    assert.matches("=6%*7", server.read_file(home .. "/history"))
    local p = io.popen("stat -c %a " .. q(home .. "/history"))
    assert.equal("600", p:read("l"))
    p:close()
    -- a state directory others can write is not trusted
    os.execute("chmod 0777 " .. q(home))
    out = run("AGENTCUBE_HOME=" .. q(home) .. " AGENTCUBE_BIN=" ..
      q(BIN) .. " python3 tests/host/pty_repl.py " .. q("=1\n"))
    assert.matches("history off", out, 1, true)
    os.execute("chmod 0700 " .. q(home))
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)

  it("deletes the sessions made in it when it exits", function()
    local home = new_home()
    local out = run("AGENTCUBE_HOME=" .. q(home) .. " AGENTCUBE_BIN=" ..
      q(BIN) .. " python3 tests/host/pty_repl.py " ..
      q("ci = agentcube.CodeInterpreterClient()\n") .. " " ..
      q("=ci:run_code('python', 'print(40+2)')\n"))
    assert.matches("42", out, 1, true)
    assert.equal(0, (sessions_in(home)))
    stop_home(home)
  end)

  it("runs piped input as a script without prompts", function()
    local out, code = run("printf 'x = 5\\nprint(x * 2)\\n' | " .. q(BIN) ..
                          " repl")
    assert.equal(0, code)
    assert.equal("10\n", out)
    -- an error ends it with exit 1 after what ran before it
    out, code = run("printf 'print(1)\\nerror(\"boom\")\\nprint(2)\\n' | "
                    .. q(BIN) .. " repl")
    assert.equal(1, code)
    assert.matches("^1\nagentcube: stdin:2: boom\n", out)
    assert.is_nil(out:find("\n2\n", 1, true))
    -- so does a syntax error, before anything runs
    out, code = run("printf 'print(1)\\nx = 1 +' | " .. q(BIN) .. " repl")
    assert.equal(1, code)
    assert.equal("agentcube: stdin:2: unexpected symbol near <eof>\n", out)
  end)
end)

describe("lua5.4's options", function()
  it("-l loads a module into a global (control: without -l it is nil)",
     function()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/mymod.lua", "w")
    f:write("return { x = 'from mymod' }\n")
    f:close()
    local env = "LUA_PATH=" .. q(dir .. "/?.lua;;") .. " "
    local out, code = run(env .. q(BIN) .. " -l mymod -e 'print(mymod.x)'")
    assert.equal(0, code)
    assert.equal("from mymod\n", out)
    out = run(env .. q(BIN) .. " -e 'print(mymod)'")
    assert.equal("nil\n", out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("-W turns warnings on (control: off without it)", function()
    local out, code = run(q(BIN) .. " -W -e 'warn(\"careful\")'")
    assert.equal(0, code)
    assert.matches("Lua warning: careful", out, 1, true)
    out = run(q(BIN) .. " -e 'warn(\"careful\")'")
    assert.is_nil(out:find("careful", 1, true))
  end)

  it("-i enters interactive mode after -e (control: without -i stdin " ..
     "is not read)", function()
    local out, code = run("printf 'print(x * 2)\\n' | " .. q(BIN) ..
                          " -i -e 'x = 21'")
    assert.equal(0, code)
    assert.matches("42\n", out, 1, true)
    out = run("printf 'print(x * 2)\\n' | " .. q(BIN) .. " -e 'x = 21'")
    assert.is_nil(out:find("42", 1, true))
  end)
end)

describe("agentcube run and check", function()
  it("on SIGTERM: exit 130, running steps are cancelled at once, " ..
     "finally steps run until the default 30 s, no session left",
     function()
    local home = new_home()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/long.yaml", "w")
    f:write([[
name: long
sessions: { a: {}, b: {} }
steps:
  - { id: one, session: a, exec: sleep 120 }
finally:
  - { id: note, session: b, exec: sleep 100 }
]])
    f:close()
    local t_launch = server.monotonic()
    local p = io.popen("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                       " run --json " .. q(dir .. "/long.yaml") ..
                       " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err") ..
                       " & echo $!")
    local pid = p:read("l")
    p:close()
    -- session b is made when finally needs it: one session while `one` runs
    for _ = 1, 300 do
      if select(1, sessions_in(home)) == 1 then break end
      os.execute("sleep 0.1")
    end
    assert.equal(1, (sessions_in(home)))
    os.execute("sleep 1")
    local t0 = server.monotonic()
    os.execute("kill -TERM " .. pid)
    local rep
    for _ = 1, 1200 do
      rep = require("cjson.safe").decode(server.read_file(dir .. "/out") or "")
      if rep then break end
      os.execute("sleep 0.1")
    end
    local took = server.monotonic() - t0
    assert.truthy(rep, server.read_file(dir .. "/err"))
    local steps = {}
    for _, s in ipairs(rep.steps) do steps[s.id] = s end
    for _, s in ipairs(rep.finally) do steps[s.id] = s end
    assert.equal("interrupted", rep.status)
    assert.equal(130, rep.exit_code)
    assert.equal("cancelled", steps.one.outcome)
    assert.equal("cancelled", steps.note.outcome)
    -- `one` ran from before the signal (at least 1 s) until the signal
    -- cancelled it (it ran at most the time since launch, plus a bound)
    local before = t0 - t_launch
    assert.is_true(steps.one.duration > 0.9 and
                   steps.one.duration < before + 2, ("ran %.1f s, the " ..
      "signal came %.1f s after launch"):format(steps.one.duration, before))
    -- the finally steps end 30 s after the signal: neither at once nor
    -- after their own 100 s
    assert.is_true(took >= 28 and took < 60, ("took %.1f s"):format(took))
    assert.equal(0, (sessions_in(home)))
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)

  it("check evaluates a table workflow without its side effects " ..
     "(control: run has them)", function()
    local home = new_home()
    local dir = server.tmpdir()
    local f = io.open(dir .. "/wf.lua", "w")
    f:write(([[
pcall(function() io.open(%q, "w"):close() end)
pcall(function() os.execute("touch %s") end)
pcall(function() os.remove(%q) end)
pcall(function() require("agentcube").CodeInterpreterClient() end)
return { name = "side", steps = { { id = "s", exec = "true" } } }
]]):format(dir .. "/by-io", dir .. "/by-os", dir .. "/keep"))
    f:close()
    os.execute("touch " .. q(dir .. "/keep"))
    local out, code = run("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                          " check " .. q(dir .. "/wf.lua"))
    assert.equal(0, code, out)
    local ls = server.capture("ls " .. q(dir))
    assert.is_nil(ls:find("by-io", 1, true))
    assert.is_nil(ls:find("by-os", 1, true))
    assert.matches("keep", ls, 1, true)
    assert.is_nil(server.read_file(home .. "/serve.json"),
                  "check started the local runtime")
    -- control: running the same file does all three
    out, code = run("AGENTCUBE_HOME=" .. q(home) .. " " .. q(BIN) ..
                    " run " .. q(dir .. "/wf.lua"))
    assert.equal(0, code, out)
    ls = server.capture("ls " .. q(dir))
    assert.matches("by-io", ls, 1, true)
    assert.matches("by-os", ls, 1, true)
    assert.is_nil(ls:find("keep", 1, true))
    stop_home(home)
    os.execute("rm -rf " .. q(dir))
  end)
end)
