-- agentcube.AgentRuntimeClient against the fake Router (fake_server.py):
-- the SDK's requests on the wire (bootstrap GET, invocation POSTs, their
-- paths, headers and json.dumps bodies), the session reused, auth, the
-- answers, every failure as an agentcube.Error; against a real `agentcube
-- serve`, which does not serve agent runtimes; and, when AGENTCUBE_PY_SDK
-- names a checkout of the SDK's sdk-python, the same calls made by the
-- official SDK compared request by request.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local agentcube = require "agentcube"

local fake

local BASE = "/v1/namespaces/default/agent-runtimes/my-agent/invocations/"

local function agent(extra)
  local o = { router_url = fake.url }
  for k, v in pairs(extra or {}) do o[k] = v end
  return agentcube.AgentRuntimeClient("my-agent", o)
end

local function catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

setup(function() fake = help.fake() end)
teardown(function() fake:stop() end)
before_each(function()
  fake:rules({})
  fake:reset()
end)

describe("AgentRuntimeClient on the wire", function()
  it("bootstraps a session with one GET and reuses it on every invoke",
     function()
    local ar <close> = agent()
    local log = fake:log()
    assert.equal(1, #log)
    assert.equal("GET", log[1].method)
    assert.equal(BASE, log[1].path)
    assert.is_nil(log[1].headers["x-agentcube-session-id"])
    assert.is_nil(log[1].headers["authorization"])
    assert.is_nil(log[1].headers["content-type"])
    assert.equal("", log[1].body)
    assert.matches("^%x+%-%x+%-", ar.session_id)
    ar:invoke({ prompt = "one" })
    ar:invoke({ prompt = "two" }, 30, "/chat")
    log = fake:log()
    assert.equal(3, #log)                   -- no second bootstrap
    for i = 2, 3 do
      assert.equal("POST", log[i].method)
      assert.equal(ar.session_id, log[i].headers["x-agentcube-session-id"])
      assert.equal("application/json", log[i].headers["content-type"])
      assert.is_nil(log[i].headers["authorization"])
    end
    assert.equal(BASE, log[2].path)
    assert.equal(BASE .. "chat", log[3].path)
    assert.equal('{"prompt": "one"}', log[2].body)
  end)

  it("writes payloads as json.dumps does (sorted keys: Lua has no order)",
     function()
    local ar <close> = agent()
    ar:invoke({ prompt = "café 😀 \127/\"\\\n", temperature = 0.7, n = 3,
                big = 1e16, small = 1e-05, whole = 2.0, list = { 1, 2.5,
                agentcube.null, true, false, {} }, nested = { z = 1 } })
    assert.equal('{"big": 1e+16, "list": [1, 2.5, null, true, false, {}], ' ..
                 '"n": 3, "nested": {"z": 1}, "prompt": "caf\\u00e9 ' ..
                 '\\ud83d\\ude00 \\u007f/\\"\\\\\\n", "small": 1e-05, ' ..
                 '"temperature": 0.7, "whole": 2.0}', fake:log()[2].body)
    ar:invoke("text")
    assert.equal('"text"', fake:log()[3].body)
    ar:invoke(nil)
    local last = fake:log()[4]
    assert.equal("", last.body)
    assert.equal("0", last.headers["content-length"])
    assert.equal("application/json", last.headers["content-type"])
  end)

  it("joins and quotes paths as the SDK does, options by name too",
     function()
    local ar <close> = agent()
    ar:invoke({}, { path = "/v1/a b?q=1 2&r=é" })
    ar:invoke({}, nil, "./x/../y")
    local log = fake:log()
    assert.equal(BASE .. "v1/a%20b?q=1%202&r=%C3%A9", log[2].path)
    assert.equal(BASE .. "y", log[3].path)
    local e = catch(ar.invoke, ar, {}, nil, "../../other/invocations/x")
    assert.equal("EINVAL", e.code)
    assert.equal(3, #fake:log())            -- refused before any HTTP
    assert.matches("unknown option 'paths'",
                   catch(ar.invoke, ar, {}, { paths = "x" }))
  end)

  it("sends the token of auth_token, TokenAuth or a Lua provider",
     function()
    local ar = agent{ auth_token = "tok-1" }
    ar:invoke({})
    local log = fake:log()
    assert.equal("Bearer tok-1", log[1].headers["authorization"])
    assert.equal("Bearer tok-1", log[2].headers["authorization"])
    ar:close()
    local calls = 0
    ar = agent{ auth_token = "loses", auth = function()
      calls = calls + 1
      return "fn-" .. calls
    end }
    ar:invoke({})
    log = fake:log()
    assert.equal("Bearer fn-1", log[3].headers["authorization"])
    assert.equal("Bearer fn-2", log[4].headers["authorization"])
    ar:close()
    ar = agent{ auth = agentcube.TokenAuth("static") }
    assert.equal("Bearer static", fake:log()[5].headers["authorization"])
    ar:close()
    -- a provider's own error comes through unchanged
    local boom = setmetatable({}, { __tostring = function() return "boom" end })
    local ok, err = pcall(agent, { auth = function() error(boom) end })
    assert.is_false(ok)
    assert.equal(boom, err)
  end)

  it("checks its options before any request", function()
    local A = agentcube.AgentRuntimeClient
    local url = fake.url
    assert.matches("agent_name given twice",
                   catch(A, "my-agent", { agent_name = "x", router_url = url }))
    assert.matches("agent_name is required", catch(A, { router_url = url }))
    assert.matches("bad option 'namespace' %(string expected, got number%)",
                   catch(A, "my-agent", { router_url = url, namespace = 5 }))
    assert.matches("bad option 'timeout' %(positive number of seconds",
                   catch(A, "my-agent", { router_url = url, timeout = 0 }))
    assert.matches("bad option 'max_retries' %(0..100 expected%)",
                   catch(A, "my-agent", { router_url = url,
                                          max_retries = -1 }))
    assert.matches("bad option 'auth' %(agentcube.TokenAuth",
                   catch(A, "my-agent", { router_url = url, auth = 42 }))
    local released
    do
      local t <close> = agentcube.TokenAuth("x")
      released = t
    end
    assert.equal("ECLOSED", catch(A, "my-agent", { router_url = url,
                                                   auth = released }).code)
    assert.equal(0, #fake:log())              -- nothing was sent
    -- the positive control: the same options, right, in the table form
    local ar = A{ agent_name = "my-agent", router_url = url,
                  connect_timeout = 2.5, timeout = 30 }
    assert.equal(1, #fake:log())
    assert.equal(2.5, ar.connect_timeout)
    assert.equal(30, ar.timeout)
    assert.matches("^agentcube%.AgentRuntimeClient %(default/my%-agent, ",
                   tostring(ar))
    assert.is_nil(ar[1])
    assert.matches("field 'timeout' is read%-only",
                   catch(function() ar.timeout = 5 end))
    ar:close()
    assert.equal("agentcube.AgentRuntimeClient (closed)", tostring(ar))
    assert.equal("ECLOSED", catch(ar.invoke, ar, {}).code)
  end)

  it("a provider that fails at invoke, or closes the client, is obeyed",
     function()
    local calls, ar = 0, nil
    local boom = setmetatable({}, { __tostring = function() return "b" end })
    ar = agent{ auth = function()
      calls = calls + 1
      if calls == 2 then error(boom) end
      if calls == 3 then ar:close() end       -- from inside the call
      return "tok"
    end }
    assert.equal(boom, catch(ar.invoke, ar, {}))
    assert.equal(1, #fake:log())              -- the invoke was not sent
    -- closed from inside: the call ends first, then the client closes
    local answer, status = ar:invoke({ n = 1 })
    assert.equal(200, status)
    assert.not_nil(answer)
    assert.equal("Bearer tok", fake:log()[2].headers["authorization"])
    assert.is_true(ar.closed)
  end)

  it("payloads: [] for an empty array; invalid UTF-8 keys and cycles "
     .. "refused",
     function()
    local ar <close> = agent()
    ar:invoke({ items = setmetatable({}, { __jsontype = "array" }),
                obj = {} })
    assert.equal('{"items": [], "obj": {}}', fake:log()[2].body)
    local e = catch(ar.invoke, ar, { ["\xff"] = 1 })
    assert.equal("EINVAL", e.code)
    assert.matches("is not valid UTF%-8", e.message)
    -- a table that holds itself: refused, not a stack overflow
    local loop = { name = "me" }
    loop.self = loop
    e = catch(ar.invoke, ar, loop)
    assert.equal("EINVAL", e.code)
    assert.matches("payload nested deeper than 1000 levels", e.message)
    assert.equal(2, #fake:log())              -- refused before any HTTP
  end)

  it("reuses a given session_id without any request", function()
    local first = agent()
    local sid = first.session_id
    first:close()
    fake:reset()
    local ar <close> = agent{ session_id = sid }
    assert.equal(0, #fake:log())
    assert.equal(sid, ar.session_id)
    ar:invoke({ again = true })
    assert.equal(sid, fake:log()[1].headers["x-agentcube-session-id"])
  end)
end)

describe("AgentRuntimeClient results", function()
  it("decodes JSON answers, gives other answers as text, and the status",
     function()
    local ar <close> = agent{ namespace = "ns", timeout = 30 }
    assert.equal("ns", ar.namespace)
    assert.equal("my-agent", ar.agent_name)
    assert.equal(30, ar.timeout)
    assert.equal(5, ar.connect_timeout)
    assert.equal(fake.url, ar.router_url)
    local r, status = ar:invoke({ x = { 1, 2 } }, 10, "run")
    assert.equal(200, status)
    assert.same({ agent = "ns/my-agent", method = "POST", path = "run",
                  payload = { x = { 1, 2 } } }, r)
    fake:rules({ { method = "POST", status = 201, body = "plain words",
                   ctype = "text/plain", session = true, times = 1 },
                 { method = "POST", status = 200, body = "null",
                   session = true, times = 1 } })
    local text, st = ar:invoke({})
    assert.equal("plain words", text)
    assert.equal(201, st)
    assert.equal(agentcube.null, (ar:invoke({})))
    assert.matches("^agentcube%.AgentRuntimeClient %(ns/my%-agent, ",
                   tostring(ar))
  end)
end)

describe("AgentRuntimeClient failures", function()
  it("raise agentcube.Error objects that say what failed", function()
    -- no Router URL: before any HTTP
    local out = help.lua([[
      local agentcube = require "agentcube"
      local ok, e = pcall(agentcube.AgentRuntimeClient, "x")
      print(agentcube.is_error(e), e.code, e.kind, e.message)
    ]], { LUA_PATH = package.path, LUA_CPATH = package.cpath },
      { prefix = "env -u ROUTER_URL" })
    assert.matches("^true\tECONFIG\tValueError\t.*ROUTER_URL", out)

    local ar = agent()
    -- the agent's own error: HTTP status and body
    fake:rules({ { method = "POST", status = 500, session = true,
                   body = '{"detail": "model crashed"}' } })
    local e = catch(ar.invoke, ar, { q = 1 })
    assert.is_true(agentcube.is_error(e))
    assert.equal("EHTTP", e.code)
    assert.equal("HTTPError", e.kind)
    assert.equal(500, e.http_status)
    assert.equal('{"detail": "model crashed"}', e.body)
    assert.matches("agent runtime default/my%-agent", e.message)

    -- the Router no longer knows the session: its JSON 404
    fake:rules({})
    local stale <close> = agent{ session_id = "gone" }
    e = catch(stale.invoke, stale, {})
    assert.equal("ENOTFOUND", e.code)
    assert.equal(404, e.http_status)
    assert.matches("not found", e.message)

    -- an answer with no session header at bootstrap
    fake:rules({ { method = "GET", status = 200, body = "{}" } })
    e = catch(agent)
    assert.equal("EPROTO", e.code)
    assert.matches("x%-agentcube%-session%-id", e.message)

    -- a silent answer: the read timeout of the call
    fake:rules({ { method = "POST", delay = 2, status = 200, body = "{}",
                   session = true } })
    local t0 = os.time()
    e = catch(ar.invoke, ar, {}, 0.3)
    assert.equal("ETIMEOUT", e.code)
    assert.equal("TimeoutError", e.kind)
    assert.is_true(os.time() - t0 <= 2)

    -- a connection dropped without an answer
    fake:rules({ { method = "POST", close = true } })
    e = catch(ar.invoke, ar, {})
    assert.is_true(agentcube.is_error(e))
    assert.matches("agent runtime default/my%-agent", e.message)

    -- nothing listens
    e = catch(agentcube.AgentRuntimeClient, "my-agent",
              { router_url = help.dead_url, max_retries = 0 })
    assert.equal("ECONNECT", e.code)

    -- payloads that cannot be JSON, before any HTTP
    fake:rules({})
    fake:reset()
    assert.equal("EINVAL", catch(ar.invoke, ar, { f = print }).code)
    assert.equal("EINVAL", catch(ar.invoke, ar, { 1, x = 2 }).code)
    assert.equal("EINVAL", catch(ar.invoke, ar, { x = 0 / 0 }).code)
    assert.equal("EINVAL", catch(ar.invoke, ar, "\255").code)
    assert.equal("EINVAL", catch(ar.invoke, ar, {}, -1).code)
    assert.equal(0, #fake:log())

    -- misuse is a plain error; a closed client says so
    assert.matches("unknown option 'nmespace'",
                   catch(agent, { nmespace = "x" }))
    local sid = ar.session_id
    ar:close()
    ar:close()                              -- idempotent
    assert.is_true(ar.closed)
    assert.equal(sid, ar.session_id)        -- the session lives on
    assert.equal("ECLOSED", catch(ar.invoke, ar, {}).code)
    assert.matches("read%-only", catch(function() ar.timeout = 1 end))
  end)
end)

describe("AgentRuntimeClient and Ctrl-C", function()
  it("ends a waiting invoke with EINTERRUPTED, which try does not swallow",
     function()
    fake:rules({ { method = "POST", delay = 20, status = 200, body = "{}",
                   session = true } })
    local t0 = os.time()
    local out, status = help.lua(([[
      local agentcube = require "agentcube"
      local ar = agentcube.AgentRuntimeClient("my-agent",
                                              { router_url = %q })
      local r, e = agentcube.try(ar.invoke, ar, { wait = true })
      print("swallowed", r, e)
    ]]):format(fake.url), { LUA_PATH = package.path,
                           LUA_CPATH = package.cpath },
      { prefix = "timeout --foreground -s INT 2" })
    assert.is_true(os.time() - t0 <= 2 + 3, "took " .. os.time() - t0)
    assert.is_nil(out:match("swallowed"), out)
    assert.matches("EINTERRUPTED", out)
    assert.not_equal(0, status)
  end)
end)

describe("AgentRuntimeClient against the local runtime", function()
  it("fails with EUNSUPPORTED naming the runtime and the server", function()
    local srv = server.start{ auth = true }
    local e = catch(agentcube.AgentRuntimeClient, "my-agent",
                    { router_url = srv.url, auth_token = srv.token })
    assert.equal("EUNSUPPORTED", e.code)
    assert.equal(404, e.http_status)
    assert.matches("agent runtime default/my%-agent", e.message)
    assert.matches(srv.url, e.message, 1, true)
    -- control: the same server and token serve code interpreters
    local ci <close> = agentcube.CodeInterpreterClient(help.opts(srv.url,
                                                 { auth_token = srv.token }))
    assert.equal("ok\n", ci:execute_command("echo ok"))
    ci:stop()
    srv:destroy()
  end)
end)

describe("the official Python SDK's AgentRuntimeClient", function()
  local sdk = os.getenv("AGENTCUBE_PY_SDK")
  if not sdk then
    pending("AGENTCUBE_PY_SDK is not set")
    return
  end

  -- The same calls, with the payload keys in sorted order (the order the
  -- Lua client writes them in).
  local py = [[
import sys
from agentcube import AgentRuntimeClient
url = sys.argv[1]
c = AgentRuntimeClient(agent_name="my-agent", namespace="team",
                       router_url=url, auth_token="tok", timeout=30)
c.invoke({"list": [1, 2.0, None, True], "n": 3, "prompt": "caf\u00e9 \U0001F600",
          "temperature": 0.7})
c.invoke({"a": {"b": []}}, timeout=5, path="/v1/chat?x=1 2")
c.invoke({}, path="a b/c")
c.close()
d = AgentRuntimeClient(agent_name="my-agent", namespace="team",
                       router_url=url, session_id=c.session_id)
d.invoke({"k": "v"})
]]
  local lua = [[
local agentcube = require "agentcube"
local url = ...
local c = agentcube.AgentRuntimeClient{ agent_name = "my-agent",
  namespace = "team", router_url = url, auth_token = "tok", timeout = 30 }
c:invoke({ list = { 1, 2.0, agentcube.null, true }, n = 3,
           prompt = "caf\u{e9} \u{1F600}", temperature = 0.7 })
c:invoke({ a = { b = setmetatable({}, { __jsontype = "array" }) } }, 5,
         "/v1/chat?x=1 2")
c:invoke({}, nil, "a b/c")
c:close()
local d = agentcube.AgentRuntimeClient{ agent_name = "my-agent",
  namespace = "team", router_url = url, session_id = c.session_id }
d:invoke({ k = "v" })
]]

  -- What may differ: who is asking, what it decodes, its connection
  -- handling. Session ids are replaced by "<sid>".
  local IGNORED = { ["user-agent"] = true, ["accept-encoding"] = true,
                    connection = true }

  local function normalise(log)
    local out = {}
    for _, r in ipairs(log) do
      local h = {}
      for k, v in pairs(r.headers) do
        if not IGNORED[k] then h[k] = v end
      end
      if h["x-agentcube-session-id"] then
        h["x-agentcube-session-id"] = "<sid>"
      end
      h.host = nil                          -- the same server anyway
      out[#out + 1] = { method = r.method, path = r.path, body = r.body,
                        headers = h }
    end
    return out
  end

  it("makes the same requests, byte for byte", function()
    local dir = server.tmpdir("agentcube-sdk")
    help.write_file(dir .. "/calls.py", py)
    help.write_file(dir .. "/calls.lua", lua)
    local out, code = help.run(("PYTHONPATH=%s python3 %s %s 2>&1"):format(
      help.q(sdk), help.q(dir .. "/calls.py"), help.q(fake.url)))
    assert.equal(0, code, out)
    local want = normalise(fake:log())
    fake:reset()
    out, code = help.run(("lua5.4 %s %s 2>&1"):format(
      help.q(dir .. "/calls.lua"), help.q(fake.url)))
    assert.equal(0, code, out)
    local got = normalise(fake:log())
    os.execute("rm -rf " .. help.q(dir))
    assert.equal(5, #want)
    assert.same(want, got)
  end)
end)
