-- Every operation through the blocking method and through agentcube.async
-- with the same arguments, valid and invalid, against a real `agentcube
-- serve`: the same results and the same errors (code, kind, message,
-- exit_code). Each case runs on two sessions prepared alike, one per path,
-- so the session id in a message is the only difference (and is masked).
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"
local async = require "agentcube.async"

local srv, dir
local opts

local function finish(job)
  local deadline = async.now() + 60
  while async.now() < deadline do
    if async.wait_any({ job }, 100) then return job:result() end
  end
  error("job did not finish")
end

-- Runs fn() and gives { ok = true, value } or { ok = false, err }.
local function outcome(fn)
  local r = table.pack(pcall(fn))
  if r[1] then return { ok = true, value = r[2] } end
  return { ok = false, err = r[2] }
end

-- The async side: submit (which may raise for arguments) and result.
local function async_outcome(target, op, args)
  local ok, job = pcall(async.submit, target, op, args)
  if not ok then return { ok = false, err = job, at = "submit" } end
  local done, v = finish(job)
  if done then return { ok = true, value = v } end
  return { ok = false, err = v }
end

local function mask(s, ids)
  s = tostring(s)
  for _, id in ipairs(ids) do s = s:gsub(id:gsub("%-", "%%-"), "<sid>") end
  return s
end

-- The same error: both agentcube.Errors with equal fields, or both
-- misuse strings.
local function same_error(a, b, ids, name)
  if agentcube.is_error(a) or agentcube.is_error(b) then
    assert(agentcube.is_error(a) and agentcube.is_error(b),
           name .. ": one side is not an agentcube.Error: " .. tostring(a)
           .. " / " .. tostring(b))
    for _, k in ipairs{ "code", "kind", "message", "exit_code", "stdout",
                        "stderr", "http_status" } do
      assert.equal(mask(a[k], ids), mask(b[k], ids), name .. ": " .. k)
    end
  else
    assert.equal(type(a), type(b), name .. ": error types")
    assert.equal("string", type(a), name)
  end
end

-- Durations, pids, times and ids differ between two runs.
local volatile = { duration = true, pid = true, modified = true, id = true,
                   started = true, ended = true, ci = true, created = true }
local function strip(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do
    if not volatile[k] then t[k] = strip(x) end
  end
  return t
end

-- The cases. blocking(ci, a, env) calls the method with the async
-- arguments a; target(ci, env) is the async target (default ci);
-- shape(value) normalizes where the async result wraps the method's
-- (read: {content =}, write/upload/download/stop: {}).
local function exec_b(ci, a)
  local o = {}
  for k, v in pairs(a) do
    if k ~= "command" and k ~= "check" then o[k] = v end
  end
  if a.check then return ci:execute_command(a.command, o) end
  return ci:execute_command_result(a.command, o)
end
local function run_b(ci, a)
  local o = { env = a.env, timeout = a.timeout }
  if a.check then return ci:run_code(a.language, a.code, o) end
  return ci:run_code_result(a.language, a.code, o)
end
local function unit() return true end

local cases = {
  { op = "exec", args = { command = "echo hi" }, blocking = exec_b },
  { op = "exec", args = { command = { "sh", "-c", "echo $X; exit 3" },
                          env = { X = "42" } }, blocking = exec_b },
  { op = "exec", args = { command = "sh -c 'echo out; exit 2'",
                          check = true },
    blocking = exec_b },
  { op = "exec", args = { command = "pwd", working_dir = "/tmp" },
    blocking = exec_b },
  { op = "exec", args = { command = "true", timeout = -1 },
    blocking = exec_b },
  { op = "exec", args = { command = "echo 'unbalanced" },
    blocking = exec_b },
  { op = "exec", args = { command = "true", bogus = 1 }, blocking = exec_b },
  { op = "exec", args = { command = "true", env = "x" }, blocking = exec_b },
  { op = "exec", args = { command = "sleep 5", timeout = 0.5 },
    blocking = exec_b },
  { op = "run_code", args = { language = "python", code = "print(6*7)" },
    blocking = run_b },
  { op = "run_code", args = { language = "python", code = "raise "
                              .. "SystemExit(4)", check = true },
    blocking = run_b },
  { op = "run_code", args = { language = "cobol", code = "x" },
    blocking = run_b },
  { op = "write", args = { content = "x\0y", path = "w.bin" },
    blocking = function(ci, a) ci:write_file(a.content, a.path) end,
    shape = unit },
  { op = "write", args = { content = "x", path = "/etc/nope" },
    blocking = function(ci, a) ci:write_file(a.content, a.path) end,
    shape = unit },
  { op = "read", args = { path = "seed.txt" },
    blocking = function(ci, a) return ci:read_file(a.path) end,
    shape = function(v, side) return side == "async" and v.content or v end },
  { op = "read", args = { path = "missing.txt" },
    blocking = function(ci, a) return ci:read_file(a.path) end },
  { op = "list", args = { path = "." },
    blocking = function(ci, a) return ci:list_files(a.path) end,
    shape = function(v)
      local names = {}
      for _, f in ipairs(v) do names[#names + 1] = f.name end
      table.sort(names)
      return names
    end },
  { op = "upload", args = function() return { from = dir .. "/up.txt",
                                              to = "sub/up.txt" } end,
    blocking = function(ci, a) ci:upload_file(a.from, a.to) end,
    shape = unit },
  { op = "upload", args = function() return { from = dir .. "/missing",
                                              to = "x" } end,
    blocking = function(ci, a) ci:upload_file(a.from, a.to) end },
  { op = "download", args = function(side)
      return { from = "seed.txt", to = dir .. "/down." .. side } end,
    blocking = function(ci, a) ci:download_file(a.from, a.to) end,
    shape = function(_, side) return help.read_file(dir .. "/down." .. side)
    end },
  { op = "download", args = function(side)
      return { from = "missing", to = dir .. "/none." .. side } end,
    blocking = function(ci, a) ci:download_file(a.from, a.to) end },
  { op = "spawn", args = { command = "echo spawned", env = { A = "1" } },
    blocking = function(ci, a) return ci:spawn(a.command, a) end,
    shape = function(v) return { command = v.command,
                                 has_pid = type(v.pid) == "number" } end },
  { op = "spawn", args = { command = 42 },
    blocking = function(ci, a) return ci:spawn(a.command, a) end },
  { op = "wait", args = { timeout = 5 },
    target = function(ci) return ci:spawn("echo waited; exit 5") end,
    blocking = function(_, a, p) return p:wait(a.timeout) end },
  { op = "kill", args = { signal = "KILL" },
    target = function(ci) return ci:spawn("sleep 30") end,
    blocking = function(_, a, p) return p:kill(a.signal) end,
    shape = function(v) return { command = v.command } end },
  { op = "create_context", args = { language = "python" },
    blocking = function(ci, a) return ci:create_context(a.language, a) end,
    shape = function(v) return { language = v.language, state = v.state } end },
  { op = "create_context", args = { language = "fortran" },
    blocking = function(ci, a) return ci:create_context(a.language, a) end },
  { op = "run", args = { code = "x = 20\nprint('p')\nx * 2 + 2" },
    target = function(ci) return ci:create_context("python") end,
    blocking = function(_, a, ctx) return ctx:run(a.code, a) end },
  { op = "run", args = { code = "1/0" },
    target = function(ci) return ci:create_context("python") end,
    blocking = function(_, a, ctx) return ctx:run(a.code, a) end,
    shape = function(v) return { name = v.error.name,
                                 message = v.error.message } end },
  { op = "mkdir", args = { path = "made/deep" },
    blocking = function(ci, a) return ci:mkdir(a.path, a) end },
  { op = "mkdir", args = { path = "seed.txt/x", parents = false },
    blocking = function(ci, a) return ci:mkdir(a.path, a) end },
  { op = "stat", args = { path = "seed.txt" },
    blocking = function(ci, a) return ci:stat(a.path) end },
  { op = "stat", args = { path = "missing" },
    blocking = function(ci, a) return ci:stat(a.path) end },
  { op = "exists", args = { path = "seed.txt" },
    blocking = function(ci, a) return ci:exists(a.path) end },
  { op = "exists", args = { path = "missing" },
    blocking = function(ci, a) return ci:exists(a.path) end },
  { op = "rename", args = { from = "seed.txt", to = "moved.txt" },
    blocking = function(ci, a) return ci:rename(a.from, a.to, a) end },
  { op = "rename", args = { from = "missing", to = "x" },
    blocking = function(ci, a) return ci:rename(a.from, a.to, a) end },
  { op = "remove", args = { path = "seed.txt" },
    blocking = function(ci, a) return ci:remove(a.path, a) end },
  { op = "remove", args = { path = 3 },
    blocking = function(ci, a) return ci:remove(a.path, a) end },
  { op = "stop", args = {},
    blocking = function(ci) return ci:stop() end, shape = unit },
}

setup(function()
  srv = server.start{}
  opts = help.opts(srv.url)
  dir = server.tmpdir("agentcube-async-ops")
  help.write_file(dir .. "/up.txt", "uploaded\n")
end)

teardown(function()
  collectgarbage()
  agentcube.flush()
  os.execute("rm -rf " .. help.q(dir))
  srv:destroy()
end)

local function prepared()
  local ci = agentcube.CodeInterpreterClient(opts)
  ci:write_file("seed\n", "seed.txt")
  return ci
end

describe("every operation, blocking and async", function()
  for i, c in ipairs(cases) do
    local label = ("%d %s %s"):format(i, c.op, (function()
      if type(c.args) == "function" then return "(paths)" end
      local parts = {}
      for k, v in pairs(c.args) do
        parts[#parts + 1] = k .. "=" .. tostring(type(v) == "table" and
                                                 "{...}" or v)
      end
      table.sort(parts)
      return (table.concat(parts, " "):gsub("%c", "?"))
    end)())
    it(label, function()
      local cb, ca = prepared(), prepared()
      local ids = { cb.session_id, ca.session_id }
      local function args(side)
        if type(c.args) == "function" then return c.args(side) end
        return c.args
      end
      local tb = c.target and c.target(cb) or cb
      local ta = c.target and c.target(ca) or ca
      local b = outcome(function() return c.blocking(cb, args("b"), tb) end)
      local a = async_outcome(ta, c.op, args("async"))
      local name = label
      if b.ok ~= a.ok then
        error(("%s: blocking %s (%s), async %s (%s)"):format(name,
              b.ok and "succeeded" or "failed", tostring(b.value or b.err),
              a.ok and "succeeded" or "failed", tostring(a.value or a.err)))
      end
      if b.ok then
        local shape = c.shape or function(v) return v end
        assert.same(strip(shape(b.value, "b")), strip(shape(a.value,
                                                              "async")))
      else
        same_error(b.err, a.err, ids, name)
      end
      cb:stop()
      ca:stop()
    end)
  end
end)

describe("create", function()
  it("makes the same kind of session as CodeInterpreterClient", function()
    local job = async.submit(agentcube.CodeInterpreterClient, "create",
                             opts)
    local ok, ci = finish(job)
    assert.is_true(ok)
    local blocking <close> = agentcube.CodeInterpreterClient(opts)
    assert.equal(getmetatable(blocking), getmetatable(ci))
    assert.is_true(ci.owned)
    assert.equal("ok\n", ci:execute_command("echo ok"))
    ci:stop()
  end)

  it("fails the same way for a bad option and an unreachable server",
     function()
    local bad = { ttl = -1 }
    local b = outcome(function() return agentcube.CodeInterpreterClient(bad)
    end)
    local a = async_outcome(agentcube.CodeInterpreterClient, "create", bad)
    assert.is_false(b.ok)
    assert.is_false(a.ok)
    same_error(b.err, a.err, {}, "ttl")
    local dead = help.opts(help.dead_url, { max_retries = 0 })
    b = outcome(function() return agentcube.CodeInterpreterClient(dead) end)
    a = async_outcome(agentcube.CodeInterpreterClient, "create", dead)
    assert.is_false(b.ok)
    same_error(b.err, a.err, {}, "dead server")
  end)
end)

describe("the comparison itself", function()
  it("tells different results and errors apart (positive control)",
     function()
    local ci <close> = agentcube.CodeInterpreterClient(opts)
    local a = async_outcome(ci, "exec", { command = "echo a" })
    local b = outcome(function() return ci:execute_command_result("echo b")
    end)
    assert.has_error(function()
      assert.same(strip(b.value), strip(a.value))
    end)
    local e1 = async_outcome(ci, "exec", { command = "false", check = true })
    local e2 = outcome(function() return ci:execute_command("sh -c 'exit 2'")
    end)
    assert.has_error(function() same_error(e1.err, e2.err, {}, "x") end)
    local e3 = async_outcome(ci, "exec", { command = "true", timeout = -1 })
    assert.has_error(function() same_error(e1.err, e3.err, {}, "x") end)
  end)
end)

describe("afterwards", function()
  it("no session is left on the server", function()
    collectgarbage()
    collectgarbage()
    agentcube.flush()
    assert.same({}, help.session_ids(srv))
  end)
end)
