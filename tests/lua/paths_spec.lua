-- One table of operations, each run through the blocking methods, the
-- streamed path (callbacks) where it exists and agentcube.async, with the
-- same arguments: the same results and the same errors (code, kind, exit
-- code), against a real `agentcube serve`.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"
local async = require("agentcube.workflow.load").cmodule("agentcube.async")

local srv, ci

local function finish(job)
  local deadline = async.now() + 60
  while async.now() < deadline do
    if async.wait_any({ job }, 100) then return job:result() end
  end
  error("job did not finish")
end

-- The outcome of fn as { ok = true, value } or { ok = false, err }.
local function outcome(fn)
  local ok, v = pcall(fn)
  return { ok = ok, v = v }
end

local function via_async(op, args)
  local submitted, job = pcall(async.submit, ci, op, args)
  if not submitted then return { ok = false, v = job } end
  local ok, v = finish(job)
  return { ok = ok == true, v = v }
end

local function result_of(r)
  return { stdout = r.stdout, stderr = r.stderr, exit_code = r.exit_code }
end

local function same_error(a, b, what)
  assert.is_false(a.ok, what .. ": first path succeeded")
  assert.is_false(b.ok, what .. ": second path succeeded")
  assert.is_true(agentcube.is_error(a.v), what .. ": " .. tostring(a.v))
  assert.is_true(agentcube.is_error(b.v), what .. ": " .. tostring(b.v))
  assert.equal(a.v.code, b.v.code, what)
  assert.equal(a.v.kind, b.v.kind, what)
  assert.equal(a.v.exit_code, b.v.exit_code, what)
end

local none = function() end

local cases = {
  { name = "a command's result",
    blocking = function() return result_of(
      ci:execute_command_result({ "sh", "-c", "echo out; echo err >&2" })) end,
    streamed = function() return result_of(
      ci:execute_command_result({ "sh", "-c", "echo out; echo err >&2" },
                                { on_stdout = none })) end,
    async = function() return via_async("exec", {
      command = { "sh", "-c", "echo out; echo err >&2" } }) end,
    result = result_of },
  { name = "a failed command with check",
    blocking = function() return ci:execute_command({ "sh", "-c", "exit 5" })
    end,
    streamed = function() return ci:execute_command({ "sh", "-c", "exit 5" },
                                                    { on_stderr = none }) end,
    async = function() return via_async("exec", {
      command = { "sh", "-c", "exit 5" }, check = true }) end },
  { name = "run_code",
    blocking = function() return result_of(
      ci:run_code_result("python", "print(6 * 7)")) end,
    streamed = function() return result_of(
      ci:run_code_result("python", "print(6 * 7)", { on_stdout = none })) end,
    async = function() return via_async("run_code", {
      language = "python", code = "print(6 * 7)" }) end,
    result = result_of },
  { name = "run_code of a failing program",
    blocking = function() return result_of(
      ci:run_code_result("bash", "echo x; exit 3")) end,
    async = function() return via_async("run_code", {
      language = "bash", code = "echo x; exit 3" }) end,
    result = result_of },
  { name = "an unsupported language",
    blocking = function() return ci:run_code("cobol", "x") end,
    async = function() return via_async("run_code", {
      language = "cobol", code = "x" }) end },
  { name = "a negative timeout",
    blocking = function() return ci:execute_command("true", -1) end,
    streamed = function() return ci:execute_command("true",
      { timeout = -1, on_stdout = none }) end,
    async = function() return via_async("exec", { command = "true",
                                                  timeout = -1 }) end },
  { name = "read_file of a written file",
    blocking = function()
      ci:write_file("content 1", "paths/a.txt")
      return ci:read_file("paths/a.txt")
    end,
    async = function()
      local w = via_async("write", { content = "content 1",
                                     path = "paths/a.txt" })
      assert.is_true(w.ok, tostring(w.v))
      local r = via_async("read", { path = "paths/a.txt" })
      if r.ok then r.v = r.v.content end
      return r
    end },
  { name = "read_file of a missing file",
    blocking = function() return ci:read_file("paths/missing.txt") end,
    async = function() return via_async("read",
                                        { path = "paths/missing.txt" }) end,
    check = function(e) assert.matches("paths/missing.txt", e.message, 1,
                                       true) end },
  { name = "list_files",
    blocking = function() return ci:list_files("paths") end,
    async = function() return via_async("list", { path = "paths" }) end,
    result = function(l)
      local names = {}
      for _, f in ipairs(l) do names[#names + 1] = f.name end
      table.sort(names)
      return names
    end },
}

setup(function()
  srv = server.start{}
  ci = agentcube.CodeInterpreterClient(help.opts(srv.url))
end)
teardown(function()
  ci:close()
  srv:destroy()
end)

describe("every path gives the same", function()
  for _, c in ipairs(cases) do
    it(c.name, function()
      local base = c.blocking
      local first = outcome(base)
      local others = { async = c.async and c.async() }
      if c.streamed then others.streamed = outcome(c.streamed) end
      for how, o in pairs(others) do
        if first.ok then
          assert.is_true(o.ok, how .. ": " .. tostring(o.v))
          local f = c.result or function(x) return x end
          assert.same(f(first.v), f(o.v), how)
        else
          same_error(first, o, c.name .. " (" .. how .. ")")
          if c.check then
            c.check(first.v)
            c.check(o.v)
          end
        end
      end
    end)
  end
end)
