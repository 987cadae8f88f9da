-- Steps on a session whose client has a Lua auth provider: the provider
-- runs on the calling thread inside the engine's calls, so such sessions
-- take agentcube.async jobs like any other. Each step kind is run against
-- a real `agentcube serve` with authentication on, and each kind's
-- failure is reported as such.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local server = require "server"
local agentcube = require "agentcube"

local srv, dir, calls

setup(function()
  srv = server.start{ auth = true }
  dir = help.tmpdir()
end)
teardown(function()
  collectgarbage()
  agentcube.flush()
  srv:destroy()
  help.rm(dir)
end)

-- Runs the workflow text with a client whose token comes from Lua.
local function run(text)
  calls = 0
  local path = help.file(dir, text)
  return help.run(srv, path, { client_options = {
    workload_manager_url = srv.url, router_url = srv.url,
    auth = function()
      calls = calls + 1
      return srv.token
    end } })
end

after_each(function()
  assert.same({}, help.sessions(srv))
end)

describe("steps through a Lua auth provider", function()
  it("takes jobs, its provider called from the waiting thread (the premise)",
     function()
    local async = help.cmodule("agentcube.async")
    local calls_here = 0
    local ci <close> = agentcube.CodeInterpreterClient{
      workload_manager_url = srv.url, router_url = srv.url,
      auth = function()
        calls_here = calls_here + 1
        return srv.token
      end }
    assert.is_true((async.supported(ci)))
    local before = calls_here
    local ok, r = async.submit(ci, "exec", { command = "echo hi" }):result()
    assert.is_true(ok, tostring(r))
    assert.equal("hi\n", r.stdout)
    assert.is_true(calls_here > before)     -- the provider ran in this state
  end)

  it("runs every step kind and reports its result", function()
    help.write(dir .. "/in.txt", "uploaded\n")
    local code, rep = run(([[
steps:
  - { id: ex, exec: "sh -c 'echo out; echo err >&2; exit 3'",
      allowed_exit_codes: [3] }
  - { id: py, run: { language: python, code: "print(6 * 7)" } }
  - { id: sh, run: "echo from-bash" }
  - { id: wr, write: { path: w.txt, content: "written" } }
  - { id: up, upload: { from: %s/in.txt, to: /workspace/in.txt } }
  - { id: dl, download: { from: w.txt, to: %s/out/w.txt } }
  - { id: ls, list: /workspace }
]]):format(dir, dir))
    assert.equal(0, code)
    local ex = help.step(rep, "ex")
    assert.equal("success", ex.outcome)
    assert.equal(3, ex.exit_code)
    assert.equal("out\n", ex.stdout)
    assert.equal("err\n", ex.stderr)
    assert.equal("42\n", help.step(rep, "py").stdout)
    assert.equal(0, help.step(rep, "py").exit_code)
    assert.equal("from-bash\n", help.step(rep, "sh").stdout)
    assert.equal("written", help.read(dir .. "/out/w.txt"))
    local names = {}
    for name in help.step(rep, "ls").stdout:gmatch("[^\n]+") do
      names[name] = true
    end
    assert.is_true(names["in.txt"] and names["w.txt"], "listing: " ..
                   help.step(rep, "ls").stdout)
    assert.same({ "in.txt", "w.txt" }, (function()
      local t = {}
      for _, f in ipairs(help.step(rep, "ls").files) do
        if f.name == "in.txt" or f.name == "w.txt" then t[#t + 1] = f.name end
      end
      table.sort(t)
      return t
    end)())
    assert.is_true(calls > 0, "the Lua auth provider was asked")
  end)

  it("fails each kind with the operation's error", function()
    local code, rep = run(([[
steps:
  - { id: up, upload: { from: %s/missing.txt, to: x.txt },
      continue_on_error: true }
  - { id: dl, download: { from: /workspace/missing.txt, to: %s/dl.txt },
      continue_on_error: true }
  - { id: ls, list: /workspace/missing, continue_on_error: true }
  - { id: wr, write: { path: /etc/x, content: "no" },
      continue_on_error: true }
  - { id: py, run: { language: python, code: "raise SystemExit(5)" },
      continue_on_error: true }
  - { id: ex, exec: "false" }
]]):format(dir, dir))
    assert.equal(1, code)
    for _, id in ipairs{ "up", "dl", "ls", "wr", "py", "ex" } do
      local s = help.step(rep, id)
      assert.equal("failure", s.outcome, id)
      assert.is_string(s.error, id)
    end
    local function err(id) return help.step(rep, id).error end
    assert.matches("^ENOTFOUND: Local file not found: .*/missing%.txt$",
                   err("up"))
    assert.matches("HTTP 404: File not found", err("dl"), 1, true)
    assert.is_nil(help.read(dir .. "/dl.txt"), "nothing downloaded")
    assert.matches("HTTP 404: Directory not found", err("ls"), 1, true)
    assert.matches("^EACCESS: write file /etc/x %(session [^)]+%): " ..
                   "access denied: the path is outside the session's files",
                   err("wr"))
    assert.equal("exit code 5", err("py"))
    assert.equal("exit code 1", err("ex"))
    assert.equal(5, help.step(rep, "py").exit_code)
    assert.equal(1, help.step(rep, "ex").exit_code)
  end)
end)
