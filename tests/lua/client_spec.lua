-- Every method of agentcube.CodeInterpreterClient against a real
-- `agentcube serve` (tests/helpers/server.lua), including the SDK README's
-- scenarios.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local srv, tmp

local function client(extra)
  return agentcube.CodeInterpreterClient(help.opts(srv.url, extra))
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(agentcube.is_error(err), tostring(err))
  return err
end

setup(function()
  srv = server.start{}
  tmp = server.tmpdir("agentcube-client")
end)

teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
  os.execute("rm -rf " .. help.q(tmp))
end)

after_each(function()
  collectgarbage()
  agentcube.flush()
  assert.same({}, help.session_ids(srv))    -- every test cleans up
end)

describe("commands", function()
  it("execute_command returns stdout and runs in /workspace", function()
    local ci <close> = client()
    assert.equal("hello\n", ci:execute_command("echo hello"))
    assert.equal("/workspace\n", ci:execute_command("pwd"))
    assert.equal("a b|c\n", ci:execute_command({ "echo", "a b|c" }))
    -- a string is split, not given to a shell
    assert.equal("$HOME\n", ci:execute_command("echo '$HOME'"))
  end)

  it("passes env and working_dir", function()
    local ci <close> = client()
    ci:execute_command("mkdir -p sub/dir")
    assert.equal("/workspace/sub/dir\n",
                 ci:execute_command("pwd", { working_dir = "sub/dir" }))
    assert.equal("v1 v2\n",
                 ci:execute_command({ "bash", "-c", "echo $A $B" },
                                    { env = { A = "v1", B = "v2" } }))
  end)

  it("raises CommandExecutionError with the SDK's fields", function()
    local ci <close> = client()
    local e = catch(ci.execute_command, ci, "bash -c 'echo out; " ..
                    "echo err >&2; exit 3'")
    assert.equal("CommandExecutionError", e.kind)
    assert.equal("ECOMMAND", e.code)
    assert.equal(3, e.exit_code)
    assert.equal("err\n", e.stderr)
    assert.equal("out\n", e.stdout)
    assert.equal("bash -c 'echo out; echo err >&2; exit 3'", e.command)
    assert.equal("Command failed (exit 3): err\n", e.message)
    assert.is_nil(e.http_status)
  end)

  it("execute_command_result never raises for an exit code", function()
    local ci <close> = client()
    local r = ci:execute_command_result("ls /nope")
    assert.equal(2, r.exit_code)
    assert.equal("", r.stdout)
    assert.matches("nope", r.stderr)
    r = ci:execute_command_result("nonexistent-program")
    assert.is_true(r.exit_code ~= 0)
  end)

  it("kills a command at its timeout (exit 124)", function()
    local ci <close> = client()
    local t0 = os.time()
    local r = ci:execute_command_result("sleep 30", 1)
    assert.equal(124, r.exit_code)
    assert.matches("Command timed out after 1 seconds", r.stderr)
    assert.is_true(os.time() - t0 <= 5)
    local e = catch(ci.execute_command, ci, "sleep 30", 1)
    assert.equal(124, e.exit_code)
  end)

  it("runs Python and Bash code", function()
    local ci <close> = client()
    assert.equal("2\n", ci:run_code("python", "print(1+1)"))
    assert.equal("5\n", ci:run_code("bash", "echo $((2+3))"))
    assert.equal("ok\n", ci:run_code("PY", "print('ok')", 30))
    -- the SDK's fix for double-escaped newlines
    assert.equal("1\n2\n", ci:run_code("python", "print(1)\\nprint(2)"))
    local e = catch(ci.run_code, ci, "python", "raise SystemExit('bad')")
    assert.equal("CommandExecutionError", e.kind)
    assert.equal(1, e.exit_code)
    assert.matches("bad", e.stderr)
    assert.equal("ValueError", catch(ci.run_code, ci, "ruby", "").kind)
  end)
end)

describe("files", function()
  it("write_file, then read it from code and read_file", function()
    local ci <close> = client()
    ci:write_file("42", "/tmp/value.txt")
    assert.equal("42\n", ci:run_code("python",
                                     "print(open('/tmp/value.txt').read())"))
    -- downloads drop leading slashes on the wire, as the SDK does; the
    -- local server still finds the session's trees (/workspace, /tmp)
    assert.equal("42", ci:read_file("/tmp/value.txt"))
    ci:write_file("43", "/workspace/value.txt")
    assert.equal("43", ci:read_file("/workspace/value.txt"))
    assert.equal("43", ci:read_file("value.txt"))
    ci:write_file("", "empty.txt")
    assert.equal("", ci:read_file("empty.txt"))
  end)

  it("uploads and downloads bytes exactly", function()
    local ci <close> = client()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local data = table.concat(bytes):rep(1000)
    local src, dst = tmp .. "/data.bin", tmp .. "/out/nested/data.bin"
    help.write_file(src, data)
    ci:upload_file(src, "/workspace/data.bin")
    assert.equal(tostring(#data) .. "\n",
                 ci:execute_command("stat -c %s data.bin"))
    ci:download_file("/workspace/data.bin", dst)
    assert.equal(data, help.read_file(dst))
    assert.equal(data, ci:read_file("data.bin"))
  end)

  it("lists files with the SDK's fields", function()
    local ci <close> = client()
    ci:write_file("a,b\n1,2\n", "/workspace/data.csv")
    ci:execute_command("mkdir /workspace/d")
    local byname = {}
    for _, f in ipairs(ci:list_files("/workspace")) do byname[f.name] = f end
    assert.equal(8, byname["data.csv"].size)
    assert.is_false(byname["data.csv"].is_dir)
    assert.equal("-rw-r--r--", byname["data.csv"].mode)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", byname["data.csv"].modified)
    assert.is_true(byname.d.is_dir)
    local dot = ci:list_files()
    assert.equal(#ci:list_files("/workspace"), #dot)
  end)

  it("reports missing files as HTTP errors, refused paths before", function()
    local ci <close> = client()
    local e = catch(ci.read_file, ci, "missing.txt")
    assert.equal("HTTPError", e.kind)
    assert.equal(404, e.http_status)
    e = catch(ci.download_file, ci, "missing.txt", tmp .. "/never/x")
    assert.equal(404, e.http_status)
    assert.is_false(help.exists(tmp .. "/never"))
    -- refused by the client, named with its session, nothing sent
    e = catch(ci.write_file, ci, "x", "/etc/passwd")
    assert.equal("EACCESS", e.code)
    assert.matches("write file /etc/passwd (session " .. ci.session_id ..
                   "): access denied", e.message, 1, true)
    e = catch(ci.list_files, ci, "nope")
    assert.equal(404, e.http_status)
  end)
end)

describe("the SDK README", function()
  it("quick start: a scoped client", function()
    local id
    do
      local c <close> = client()
      id = c.session_id
      assert.equal("Hello, AgentCube!\n",
                   c:run_code("python", "print('Hello, AgentCube!')"))
    end
    assert.same({}, help.session_ids(srv))
    assert.is_string(id)
  end)

  it("session reuse across clients", function()
    local c1 = client()
    local id = c1.session_id
    c1:write_file("42", "/tmp/value.txt")
    c1:detach()                             -- "don't call stop()"
    c1 = nil                                -- luacheck: ignore
    collectgarbage()
    agentcube.flush()
    local c2 = client{ session_id = id }
    assert.equal("42\n", c2:run_code("python",
                                     "print(open('/tmp/value.txt').read())"))
    c2:stop()
    assert.same({}, help.session_ids(srv))
  end)

  it("names a template, namespace and ttl", function()
    local ci <close> = client{ name = "custom-template",
                               namespace = "agentcube", ttl = 7200 }
    local status, info = srv:json("GET", "/v1/code-interpreter/sessions/" ..
                                  ci.session_id)
    assert.equal(200, status)
    assert.equal("custom-template", info.name)
    assert.equal("agentcube", info.namespace)
    assert.equal("ok\n", ci:execute_command("echo ok"))
  end)
end)

describe("auth", function()
  it("uses the token of a server that wants one", function()
    local secure = server.start{ auth = true }
    finally(function() secure:destroy() end)
    local o = { workload_manager_url = secure.url, router_url = secure.url }
    local e = catch(agentcube.CodeInterpreterClient, o)
    assert.equal(401, e.http_status)
    o.auth_token = secure.token
    do
      local ci <close> = agentcube.CodeInterpreterClient(o)
      assert.equal("x\n", ci:execute_command("echo x"))
    end
    o.auth_token = nil
    o.auth = function() return secure.token end
    do
      local ci <close> = agentcube.CodeInterpreterClient(o)
      assert.equal("y\n", ci:execute_command("echo y"))
    end
    assert.same({}, help.session_ids(secure))
  end)
end)

describe("misuse a script can cause", function()
  -- pcall(fn, ...) fails with a message matching pattern
  local function says(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches(pattern, tostring(err))
  end

  it("bad command arguments and options are named; the session goes on",
     function()
    local ci <close> = client{ connect_timeout = 5, request_timeout = 60 }
    local run = ci.execute_command
    says("string or table expected, got nil", run, ci, nil)
    says("bad command argument #2 %(string without NUL expected, got table%)",
         run, ci, { "echo", {} })
    says("bad command argument #2 %(string without NUL expected, got string",
         run, ci, { "echo", "a\0b" })
    says("number or table expected, got string", run, ci, "true", "soon")
    says("table expected, got string", run, ci, "true", 5, "x")
    says("bad option 'env' %(string names and string values expected%)",
         run, ci, "true", { env = { "x" } })
    says("bad option 'env' %(string names and string values expected%)",
         run, ci, "true", { env = { A = {} } })
    says("bad option 'env' %(NUL byte in 'A'%)", run, ci, "true",
         { env = { A = "x\0y" } })
    says("bad option 'working_dir' %(string expected, got number%)", run, ci,
         "true", { working_dir = 5 })
    says("bad timeout %(number of seconds expected, got string%)", run, ci,
         "true", { timeout = "soon" })
    says("unknown option 'number'", run, ci, "true", { "positional" })
    -- the positive controls: numbers as env values, a callable table as a
    -- callback
    local got = {}
    local sink = setmetatable({}, { __call = function(_, chunk)
      got[#got + 1] = chunk
    end })
    assert.equal("1 x\n", run(ci, "sh -c 'echo $A $B'",
                             { env = { A = 1, B = "x" }, on_stdout = sink }))
    assert.equal("1 x\n", table.concat(got))
  end)

  it("a session's fields are read-only; other keys read nil", function()
    local ci <close> = client()
    says("agentcube.Session: field 'session_id' is read%-only",
         function() ci.session_id = "other" end)
    says("field 'stop' is read%-only", function() ci.stop = print end)
    assert.is_string(ci.session_id)              -- the positive control
    assert.is_false(ci.closed)
    assert.is_nil(ci[1])
    assert.is_nil(ci.close_error)                -- nothing failed yet
    assert.is_nil(ci.no_such_field)
  end)

  it("transfer() reports the bytes of the last upload or download",
     function()
    local ci <close> = client()
    local done, total = ci:transfer()
    assert.equal(0, done)
    assert.is_nil(total)
    local src = tmp .. "/transfer.bin"
    help.write_file(src, ("x"):rep(100000))
    ci:upload_file(src, "transfer.bin")
    done, total = ci:transfer()
    assert.equal(100000, done)
    assert.equal(100000, total)
    -- a progress callback that raises at the very end: the call fails
    -- and the download leaves no file, as when it is cut short
    local dst = tmp .. "/late.bin"
    local e = select(2, pcall(ci.download_file, ci, "transfer.bin", dst,
      { on_progress = function(d, t)
          if t > 0 and d >= t then error("late", 0) end
        end }))
    assert.equal("late", e)
    assert.is_false(help.exists(dst))
    ci:download_file("transfer.bin", dst)       -- the positive control
    assert.equal(100000, #help.read_file(dst))
    ci:stop()
    assert.equal(0, (ci:transfer()))              -- stopped: nothing
  end)

  it("an error raised in a streaming callback is raised as it is",
     function()
    local ci <close> = client()
    says("^boom$", ci.run_code, ci, "python", "print(1)",
         { on_stdout = function() error("boom", 0) end })
    local ctx <close> = ci:create_context("python")
    says("^ctx boom$", ctx.run, ctx, "print(1)",
         { on_stdout = function() error("ctx boom", 0) end })
    -- the positive control: a context run streams stderr, and the
    -- session still works (on a new context: the interrupt that ends the
    -- cancelled run may still be on its way to the old one's interpreter)
    local err = {}
    local ctx2 <close> = ci:create_context("python")
    local r = ctx2:run("import sys; sys.stderr.write('e1\\n')",
                       { on_stderr = function(c) err[#err + 1] = c end })
    assert.equal("e1\n", table.concat(err))
    assert.equal("e1\n", r.stderr)
    assert.equal("ok\n", ci:execute_command("echo ok"))
  end)

  it("stop() with an auth provider that fails raises the provider's error;"
     .. " the session stays and can be stopped later", function()
    local failing = false
    local ci = client{ auth = function()
      if failing then error("provider down", 0) end
      return "token"
    end }
    local id = ci.session_id
    failing = true
    says("^provider down$", ci.stop, ci)
    assert.is_true(ci.closed)
    assert.same({ id }, help.session_ids(srv))   -- nothing was deleted
    client{ session_id = id }:stop()
  end)
end)

