-- The local runtime default: with no URL anywhere, the client uses the
-- server of $AGENTCUBE_HOME, starting `agentcube serve --daemon` when none
-- runs, and does not trust a serve.json whose server is gone.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local cjson = require "cjson"

local home

local SCRIPT = [[
  local agentcube = require "agentcube"
  local ci <close> = agentcube.CodeInterpreterClient()
  io.write(ci:execute_command("echo local"))
]]

local function run(env)
  local e = { AGENTCUBE_HOME = home, AGENTCUBE_BIN = help.bin }
  for k, v in pairs(env or {}) do e[k] = v end
  return help.lua(SCRIPT, e,
                  { prefix = "env -u WORKLOAD_MANAGER_URL -u ROUTER_URL" })
end

local function state()
  local text = help.read_file(home .. "/serve.json")
  assert.is_string(text, "no serve.json")
  return cjson.decode(text)
end

local alive = help.alive

before_each(function() home = server.tmpdir("agentcube-home") end)
after_each(function() help.stop_local(home) end)

describe("the local runtime", function()
  it("is started on first use and reused after", function()
    local out, code = run()
    assert.equal(0, code, out)
    assert.equal("local\n", out)
    local first = state()
    assert.matches("^http://127%.0%.0%.1:%d+$", first.url)
    assert.is_true(first.auth)             -- a daemon with a token
    assert.is_true(alive(first.pid))
    out, code = run()
    assert.equal(0, code, out)
    assert.equal(first.pid, state().pid)    -- the same server
    -- the sessions were deleted by <close>
    local token = help.read_file(home .. "/token"):gsub("%s+$", "")
    local status, body = require("httpc").request{
      url = first.url .. "/v1/code-interpreter/sessions",
      headers = { Authorization = "Bearer " .. token } }
    assert.equal(200, status)
    assert.same({}, cjson.decode(body).sessions)
  end)

  it("replaces a server that died and left serve.json behind", function()
    assert.equal(0, select(2, run()))
    local old = state()
    os.execute(("kill -KILL %d"):format(old.pid))
    for _ = 1, 50 do
      if not alive(old.pid) then break end
      os.execute("sleep 0.1")
    end
    assert.is_true(help.exists(home .. "/serve.json"))  -- stale
    local out, code = run()
    assert.equal(0, code, out)
    assert.equal("local\n", out)
    assert.is_true(state().pid ~= old.pid)
  end)

  it("says so when the binary cannot be found", function()
    local out, code = run{ AGENTCUBE_BIN = "/nonexistent/agentcube" }
    assert.equal(1, code)
    assert.matches("ECONFIG", out)
    assert.matches("AGENTCUBE_BIN", out)
  end)
end)
