-- The embedding example (examples/embed.c): a C host with agentcube linked
-- in runs a script, prints an agentcube.Error through __tostring with a
-- traceback, and deletes the script's owned sessions at lua_close. The same
-- scenario runs under ASan/UBSan (the SAN build of the host, and the SAN
-- module loaded into the stock lua5.4) and once under valgrind; the module's
-- own specs also run inside the SAN host.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"

local srv, dir

local SCENARIO = [[
local agentcube = require "agentcube"
local url = os.getenv("SCENARIO_URL")
local o = { workload_manager_url = url, router_url = url }
local ci = agentcube.CodeInterpreterClient(o)        -- owned, never stopped
print("args", select("#", ...), ...)
io.write(ci:execute_command("echo embedded"))
ci:write_file("data", "f.txt")
assert(ci:read_file("f.txt") == "data")
assert(#ci:list_files() >= 1)
assert(ci:run_code("python", "print(6*7)") == "42\n")
local det = agentcube.CodeInterpreterClient(o)
print("detached " .. det:detach())
for _ = 1, 5 do agentcube.CodeInterpreterClient(o) end   -- dropped
do local scoped <close> = agentcube.CodeInterpreterClient(o) end
local r = agentcube.try(ci.read_file, ci, "missing")
assert(r == nil)
ci:execute_command("false")       -- raises: the host prints it and exits 1
]]

-- Runs the scenario with a host command; returns the output and the
-- status, after checking what must hold whatever the host.
local function scenario(host, env)
  local e = { SCENARIO_URL = srv.url }
  for k, v in pairs(env or {}) do e[k] = v end
  local envs = {}
  for k, v in pairs(e) do envs[#envs + 1] = help.q(k .. "=" .. v) end
  local out, code = help.run("cd " .. help.q(dir) .. " && env " ..
                             table.concat(envs, " ") .. " " .. host ..
                             " scenario.lua one two 2>&1")
  assert.equal(1, code, out)
  assert.matches("args\t2\tone\ttwo", out)
  assert.matches("embedded\n", out)
  assert.matches("agentcube: ECOMMAND: Command failed %(exit 1%)", out)
  local det = out:match("detached (%S+)")
  assert.is_string(det)
  -- lua_close deleted every owned session; the detached one is left
  assert.same({ det }, help.session_ids(srv))
  assert.equal(200, (srv:delete(det)))
  return out
end

local function clean(out)
  assert.is_nil(out:find("AddressSanitizer", 1, true), out)
  assert.is_nil(out:find("LeakSanitizer", 1, true), out)
  assert.is_nil(out:find("runtime error", 1, true), out)
end

local function san_embed()
  local p = help.san_build and help.san_build .. "/examples/embed"
  return p and help.exists(p) and p or nil
end

setup(function()
  srv = server.start{}
  dir = server.tmpdir("agentcube-embed")
  help.write_file(dir .. "/scenario.lua", SCENARIO)
end)

teardown(function()
  srv:destroy()
  os.execute("rm -rf " .. help.q(dir))
end)

describe("examples/embed", function()
  it("runs a script and closes the state like a host should", function()
    local out = scenario(help.q(help.build .. "/examples/embed"))
    assert.matches("embed: agentcube: ECOMMAND", out)
    assert.matches("stack traceback:", out)
    assert.matches("scenario%.lua:%d+", out)
  end)

  it("loads the facade from AGENTCUBE_LUA_DIR when set", function()
    os.execute("mkdir -p " .. help.q(dir .. "/lua/agentcube"))
    help.write_file(dir .. "/lua/agentcube/init.lua",
                    'return { CodeInterpreterClient = function() ' ..
                    'error("from disk", 0) end }')
    local out, code = help.run("cd " .. help.q(dir) .. " && " ..
      "AGENTCUBE_LUA_DIR=" .. help.q(dir .. "/lua") .. " " ..
      help.q(help.build .. "/examples/embed") .. " scenario.lua 2>&1")
    assert.equal(1, code)
    assert.matches("from disk", out)
  end)

  it("reports usage and a missing script", function()
    local out, code = help.run(help.q(help.build .. "/examples/embed") ..
                               " 2>&1")
    assert.equal(2, code)
    assert.matches("usage:", out)
    out, code = help.run(help.q(help.build .. "/examples/embed") ..
                         " /nonexistent.lua 2>&1")
    assert.equal(1, code)
    assert.matches("cannot open", out)
  end)
end)

describe("sanitizers", function()
  -- `make test` builds the SAN tree first; `make test-fast` does not:
  -- then each of these is reported skipped, with the reason

  it("runs the scenario in the ASan/UBSan host", function()
    local host = san_embed()
    if not host then
      pending("no SAN build (make SAN=1)")
      return
    end
    clean(scenario(help.q(host), { ASAN_OPTIONS = "detect_leaks=1" }))
  end)

  it("runs the scenario with the ASan module in the stock lua5.4",
     function()
    if not san_embed() then
      pending("no SAN build (make SAN=1)")
      return
    end
    local asan = help.run("gcc -print-file-name=libasan.so"):gsub("%s+$", "")
    local ubsan = help.run("gcc -print-file-name=libubsan.so"):gsub("%s+$",
                                                                   "")
    clean(scenario("lua5.4", {
      -- lua5.4 is not instrumented: the runtimes come first
      LD_PRELOAD = asan .. " " .. ubsan,
      ASAN_OPTIONS = "detect_leaks=1",
      LUA_CPATH = help.san_build .. "/tests/lua/?.so;" .. help.san_build ..
                  "/lua/?.so;;",
    }))
  end)

  it("passes the module's specs inside the ASan/UBSan host", function()
    local host = san_embed()
    if not host then
      pending("no SAN build (make SAN=1)")
      return
    end
    local specs = {}
    for _, f in ipairs{ "module", "fake", "faults", "agent_runtime" } do
      specs[#specs + 1] = help.q(help.here .. "/" .. f .. "_spec.lua")
    end
    -- the host preloads its own (SAN) agentcube; child lua5.4 processes
    -- the specs start use the regular module
    local out, code = help.run("cd " .. help.q(help.root) .. " && " ..
      "ASAN_OPTIONS=detect_leaks=1 LUA_CPATH=" ..
      help.q(help.san_build .. "/tests/lua/?.so;" .. help.build ..
             "/lua/?.so;;") .. " " ..
      help.q(host) .. " /usr/bin/busted -o TAP " ..
      table.concat(specs, " ") .. " 2>&1")
    clean(out)
    assert.equal(0, code, out)
    assert.is_nil(out:find("not ok", 1, true), out)
    assert.matches("\n1%.%.%d+", out)
  end)
end)

describe("valgrind", function()
  it("finds no error in the scenario", function()
    local out = scenario("valgrind -q --error-exitcode=99 " ..
                         "--leak-check=full " ..
                         "--errors-for-leak-kinds=definite " ..
                         help.q(help.build .. "/examples/embed"))
    assert.is_nil(out:find("==%d+=="), out)
  end)
end)
