-- The module itself, without a server: exports, error objects, try,
-- argument checking, auth objects, configuration errors.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local agentcube = require "agentcube"

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("require 'agentcube'", function()
  it("exports the SDK's names and the Lua extras", function()
    assert.is_table(agentcube.CodeInterpreterClient)
    assert.is_function(agentcube.CodeInterpreterClient.new)
    assert.is_function(agentcube.TokenAuth)
    assert.is_function(agentcube.ServiceAccountAuth)
    assert.is_function(agentcube.try)
    assert.is_function(agentcube.flush)
    assert.is_function(agentcube.is_error)
    assert.is_table(agentcube.Error)
    assert.equal("0.1.0", agentcube.VERSION)
    assert.equal("userdata", type(agentcube.null))
    -- the facade is a thin layer over the C module
    assert.equal(require("agentcube.core").Error, agentcube.Error)
  end)

  it("exports luaopen_agentcube_core and nothing else", function()
    local out = help.run("nm -D --defined-only " ..
                         help.q(help.build .. "/lua/agentcube/core.so"))
    local syms = {}
    for name in out:gmatch("%x+ %a ([%w_]+)") do syms[#syms + 1] = name end
    assert.same({ "luaopen_agentcube_core" }, syms)
  end)

  it("does not link liblua", function()
    local out = help.run("ldd " ..
                         help.q(help.build .. "/lua/agentcube/core.so"))
    assert.is_nil(out:find("liblua"))
  end)

  it("can be loaded again after package.loaded is cleared", function()
    package.loaded["agentcube.core"] = nil
    package.loaded["agentcube"] = nil
    local again = require "agentcube"
    assert.is_function(again.CodeInterpreterClient.new)
    assert.equal(0, again.pending())
  end)
end)

describe("agentcube.Error", function()
  it("is a table with fields and __tostring", function()
    local e = agentcube.Error.new{ code = "ETIMEOUT", message = "slow",
                                   http_status = 504 }
    assert.equal("ETIMEOUT", e.code)
    assert.equal("TimeoutError", e.kind)
    assert.equal("slow", e.message)
    assert.equal(504, e.http_status)
    assert.equal("agentcube: ETIMEOUT: slow", tostring(e))
    assert.is_true(agentcube.is_error(e))
    assert.is_true(agentcube.Error.is(e))
    assert.is_false(agentcube.is_error({ code = "ETIMEOUT" }))
    assert.is_false(agentcube.is_error("agentcube: ETIMEOUT: slow"))
    assert.equal("agentcube.Error", getmetatable(e).__name)
  end)

  it("fills kind and message from the code", function()
    local e = agentcube.Error.new{ code = "ECOMMAND" }
    assert.equal("CommandExecutionError", e.kind)
    assert.equal("command failed", e.message)
    assert.equal("EINVAL", agentcube.Error.new{}.code)
    assert.equal("ValueError", agentcube.Error.new{}.kind)
  end)

  it("gives every code the kind the SDK's exceptions have", function()
    local kinds = {
      ENOMEM = "MemoryError", ESYSTEM = "OSError", ETOOBIG = "LimitError",
      ELIMIT = "LimitError", EEXIST = "FileExistsError",
      ECANCELED = "CancelledError", EBUSY = "SessionError",
      EPROTO = "ValueError", EUNSUPPORTED = "ValueError",
    }
    for code, kind in pairs(kinds) do
      local e = agentcube.Error.new{ code = code }
      assert.equal(kind, e.kind, code)
      assert.is_string(e.message)
      assert.not_equal(code, e.message)       -- the code's own text
    end
    -- a code this library does not know keeps its name as the message
    local e = agentcube.Error.new{ code = "ESOMETHING" }
    assert.equal("AgentCubeError", e.kind)
    assert.equal("ESOMETHING", e.message)
  end)

  it("reaches pcall intact", function()
    local e = agentcube.Error.new{ code = "EHTTP", http_status = 500 }
    local ok, got = pcall(error, e)
    assert.is_false(ok)
    assert.equal(e, got)               -- the same table, no position added
  end)
end)

describe("agentcube.try", function()
  it("returns every result on success", function()
    local a, b, c = agentcube.try(function(x) return x, nil, 3 end, 1)
    assert.equal(1, a)
    assert.is_nil(b)
    assert.equal(3, c)
  end)

  it("turns agentcube.Error into nil, err", function()
    local e = agentcube.Error.new{ code = "ECONNECT", message = "down" }
    local r, err = agentcube.try(error, e)
    assert.is_nil(r)
    assert.equal(e, err)
  end)

  it("raises other errors again, unchanged", function()
    local t = { "mine" }
    assert.equal(t, catch(agentcube.try, error, t))
    assert.equal("plain", catch(agentcube.try, error, "plain", 0))
  end)
end)

describe("auth objects", function()
  it("TokenAuth gives its token and hides it from tostring", function()
    local a = agentcube.TokenAuth("s3cret")
    assert.equal("s3cret", a:get_token())
    assert.equal("agentcube.TokenAuth", tostring(a))
  end)

  it("TokenAuth('') raises a ValueError", function()
    local e = catch(agentcube.TokenAuth, "")
    assert.is_true(agentcube.is_error(e))
    assert.equal("ValueError", e.kind)
    assert.equal("EINVAL", e.code)
    assert.matches("empty", e.message)
  end)

  it("ServiceAccountAuth checks its arguments", function()
    assert.matches("required", catch(agentcube.ServiceAccountAuth, {}))
    assert.matches("unknown option 'tokenurl'",
                   catch(agentcube.ServiceAccountAuth, { tokenurl = "x" }))
    local a = agentcube.ServiceAccountAuth{
      token_url = "http://127.0.0.1:1/token", client_id = "id",
      client_secret = "secret", scope = "s", headers = { X = "y" },
      timeout = { 1, 1 } }
    assert.equal("agentcube.ServiceAccountAuth", tostring(a))
    local b = agentcube.ServiceAccountAuth("http://127.0.0.1:1/t", "id", "s")
    -- nothing listens there: the fetch fails with a connection error
    local e = catch(b.get_token, b)
    assert.is_true(agentcube.is_error(e))
    assert.equal("ECONNECT", e.code)
  end)
end)

describe("auth objects, released and misused", function()
  it("a released provider says so, and a client refuses it", function()
    local kept
    do
      local a <close> = agentcube.TokenAuth("t0ken")
      assert.equal("t0ken", a:get_token())     -- the positive control
      kept = a
    end
    assert.equal("agentcube.TokenAuth (released)", tostring(kept))
    local e = catch(kept.get_token, kept)
    assert.equal("ECLOSED", e.code)
    assert.matches("auth provider was released", e.message)
    e = catch(agentcube.CodeInterpreterClient,
              help.opts(help.dead_url, { auth = kept }))
    assert.equal("ECLOSED", e.code)
  end)

  it("ServiceAccountAuth names the bad option", function()
    local function sa(extra)
      local o = { token_url = "http://127.0.0.1:1/t", client_id = "id",
                  client_secret = "s" }
      for k, v in pairs(extra) do o[k] = v end
      return agentcube.ServiceAccountAuth(o)
    end
    assert.matches("bad option 'scope' %(string expected, got number%)",
                   catch(sa, { scope = 5 }))
    assert.matches("bad timeout  %(positive seconds expected%)",
                   catch(sa, { timeout = -1 }))
    assert.matches("bad timeout {connect, read} %(positive seconds",
                   catch(sa, { timeout = { 1, 0 } }))
    assert.matches("bad option 'timeout' %(number or {connect, read} " ..
                   "expected%)", catch(sa, { timeout = "5s" }))
    assert.matches("bad option 'headers' %(string names and values " ..
                   "expected%)", catch(sa, { headers = { X = 1 } }))
    assert.matches("bad option 'headers' %(table expected%)",
                   catch(sa, { headers = "X: y" }))
    assert.matches("table expected, got number",
                   catch(agentcube.ServiceAccountAuth, "u", "i", "s", 5))
    -- the positive controls: a number of seconds, positional opts
    assert.equal("agentcube.ServiceAccountAuth",
                 tostring(sa({ timeout = 5 })))
    assert.equal("agentcube.ServiceAccountAuth",
                 tostring(agentcube.ServiceAccountAuth(
                   "http://127.0.0.1:1/t", "i", "s", { scope = "x" })))
  end)

  it("a Lua provider's token with a NUL byte is an EAUTH error", function()
    local e = catch(agentcube.CodeInterpreterClient,
                    help.opts(help.dead_url, { max_retries = 0,
                              auth = function() return "a\0b" end }))
    assert.equal("EAUTH", e.code)
    assert.matches("auth token holds a NUL byte", e.message)
  end)
end)

describe("CodeInterpreterClient options", function()
  it("rejects unknown names and wrong types as misuse", function()
    assert.matches("unknown option 'nmae'",
                   catch(agentcube.CodeInterpreterClient, { nmae = "x" }))
    assert.matches("'ttl'", catch(agentcube.CodeInterpreterClient,
                                  { ttl = "long" }))
    assert.matches("'name' %(string expected",
                   catch(agentcube.CodeInterpreterClient, { name = 1 }))
    assert.matches("'auth'", catch(agentcube.CodeInterpreterClient,
                                   { auth = 42 }))
    -- a userdata with methods but no get_token is no provider
    assert.matches("'auth'", catch(agentcube.CodeInterpreterClient,
                                   { auth = io.stdout }))
    assert.matches("bad option 'connect_timeout' %(positive number of " ..
                   "seconds expected%)", catch(agentcube.CodeInterpreterClient,
                                               { connect_timeout = 0 }))
    assert.matches("bad option 'max_retries' %(0..100 expected%)",
                   catch(agentcube.CodeInterpreterClient,
                         { max_retries = 101 }))
    assert.matches("bad option 'max_retries' %(0..100 expected%)",
                   catch(agentcube.CodeInterpreterClient,
                         { max_retries = 1.5 }))
  end)

  it("needs both URLs when one is given, before any HTTP", function()
    local out = help.lua([[
      local agentcube = require "agentcube"
      local ok, e = pcall(agentcube.CodeInterpreterClient,
                          { workload_manager_url = "http://127.0.0.1:1" })
      print(e.code, e.kind, e.message)
      ok, e = pcall(agentcube.CodeInterpreterClient,
                    { router_url = "http://127.0.0.1:1" })
      print(e.code, e.kind, e.message)
    ]], nil, { prefix = "env -u WORKLOAD_MANAGER_URL -u ROUTER_URL" })
    assert.matches("ECONFIG\tValueError\tRouter URL must be provided", out)
    assert.matches("ECONFIG\tValueError\tWorkload Manager URL must be", out)
  end)

  it("reports a server that does not run as a ConnectionError", function()
    local e = catch(agentcube.CodeInterpreterClient,
                    help.opts(help.dead_url, { max_retries = 0 }))
    assert.is_true(agentcube.is_error(e))
    assert.equal("ECONNECT", e.code)
    assert.equal("ConnectionError", e.kind)
    assert.matches("create session", e.message)
    assert.matches("^agentcube: ECONNECT: ", tostring(e))
  end)

  it("needs a client for methods", function()
    local m = agentcube.Session
    assert.matches("agentcube.Session expected",
                   catch(m.execute_command, nil, "true"))
    assert.matches("agentcube.Session expected",
                   catch(m.stop, {}))
  end)
end)
