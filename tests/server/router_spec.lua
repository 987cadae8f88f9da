-- Router conformance (docs/protocol.md §4) for the merged server.
local server = require "server"
local DP = server.DP

describe("router", function()
  local srv, id
  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  it("12: live and ready health routes", function()
    local status, j = srv:json("GET", "/health/live")
    assert.equal(200, status)
    assert.same({ status = "alive" }, j)
    status, j = srv:json("GET", "/health/ready")
    assert.equal(200, status)
    assert.same({ status = "ready" }, j)
  end)

  it("13/14: execute reaches the sandbox and answers with the session id",
     function()
    local status, j, h = srv:exec(id, { "echo", "hello" })
    assert.equal(200, status)
    assert.equal("hello\n", j.stdout)
    assert.equal(id, h["x-agentcube-session-id"])
  end)

  it("14: proxied 4xx answers carry the session id too", function()
    local status, _, h = srv:json("POST", DP .. "api/execute",
                                  '{"command": []}', { session = id })
    assert.equal(400, status)
    assert.equal(id, h["x-agentcube-session-id"])
  end)

  it("15: an unknown session id is 404 and creates nothing", function()
    local _, before = srv:json("GET", "/v1/code-interpreter/sessions")
    local status, j, h = srv:exec("00000000-0000-4000-8000-000000000000",
                                  { "true" })
    assert.equal(404, status)
    assert.equal('sessions.agentcube.volcano.sh ' ..
                 '"00000000-0000-4000-8000-000000000000" not found', j.error)
    assert.is_nil(h["x-agentcube-session-id"])
    local _, after = srv:json("GET", "/v1/code-interpreter/sessions")
    assert.equal(#before.sessions, #after.sessions)
  end)

  it("a session answers only under its own template's address", function()
    local other = "/v1/namespaces/default/code-interpreters/other/" ..
                  "invocations/"
    local status, j = srv:json("POST", other .. "api/execute",
                               { command = { "true" } }, { session = id })
    assert.equal(404, status)
    assert.equal('sessions.agentcube.volcano.sh "' .. id .. '" not found',
                 j.error)
    status = srv:json("POST", "/v1/namespaces/elsewhere/code-interpreters/" ..
                      "my-interpreter/invocations/api/execute",
                      { command = { "true" } }, { session = id })
    assert.equal(404, status)
    -- control: under its own address it answers
    assert.equal(200, (srv:exec(id, { "true" })))
  end)

  it("unknown invocation paths are 404; extra slashes before api/ are " ..
     "read as one", function()
    local function get(path)
      return srv:request{ path = path, session = id }
    end
    for _, p in ipairs{
      "/v1/namespaces/default/agent-runtimes/x/invocations/api/files",
      "/v1/namespaces/default/code-interpreters",
      "/v1/namespaces/default/code-interpreters/my-interpreter/calls/x",
      DP .. "api/processes/" .. ("p"):rep(200),
      DP .. "api/processes/p1/bogus",
      DP .. "api/contexts/c1",
      DP .. "api/nothing",
    } do
      local status, body = get(p)
      assert.equal(404, status, p)
      assert.equal("404 page not found", body, p)
    end
    local status, body = get(DP:gsub("/$", "//") .. "/api/files?path=.")
    assert.equal(200, status, body)
    assert.matches('"files"', body, 1, true)
  end)

  it("16: without the header a session is created and reused", function()
    local status, j, h = srv:json("POST", DP .. "api/files",
      { path = "auto.txt", content = "YXV0bw==" })
    assert.equal(200, status)
    local auto = h["x-agentcube-session-id"]
    assert.truthy(auto)
    assert.are_not.equal(id, auto)
    local _, body = srv:download(auto, "auto.txt")
    assert.equal("auto", body)
    assert.equal(200, srv:delete(auto))
    assert.equal("auto.txt", j.path)
  end)

  it("17: auto-create for an unknown template under strict config is 404",
     function()
    local strict = server.start{ config = "strict: true\n" }
    local status, j = strict:json("POST",
      "/v1/namespaces/ns1/code-interpreters/nope/invocations/api/execute",
      { command = { "true" } })
    assert.equal(404, status)
    assert.equal('codeinterpreters.agentcube.volcano.sh "ns1/nope" not found',
                 j.error)
    strict:destroy()
  end)

  it("18: query strings reach the sandbox", function()
    local status, j = srv:list(id, ".")
    assert.equal(200, status)
    assert.equal("table", type(j.files))
  end)

  it("19: percent-encoded paths are decoded once", function()
    srv:write(id, "a b.txt", "spaced")
    local status, body = srv:request{ path = DP .. "api/files/a%20b.txt",
                                      session = id }
    assert.equal(200, status)
    assert.equal("spaced", body)
  end)

  it("20: PUT and DELETE on invocation paths are 404", function()
    for _, m in ipairs{ "PUT", "DELETE", "PATCH" } do
      local status = srv:request{ method = m, path = DP .. "api/execute",
                                  session = id }
      assert.equal(404, status, m)
    end
  end)

  it("redirects .../invocations to .../invocations/", function()
    local status, _, h = srv:request{
      path = "/v1/namespaces/default/code-interpreters/x/invocations" }
    assert.equal(301, status)
    assert.matches("/invocations/$", h.location)
  end)

  it("23: every data-plane request refreshes the idle timer", function()
    local _, before = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    os.execute("sleep 1.1")
    srv:list(id)
    local _, after = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    assert.is_true(after.lastActivityAt > before.lastActivityAt)
  end)

  it("24: with auth off any Authorization header is accepted", function()
    local status = srv:json("POST", DP .. "api/execute",
                            { command = { "true" } },
                            { session = id,
                              headers = { Authorization = "Bearer junk" } })
    assert.equal(200, status)
  end)
end)

describe("router overload", function()
  it("21: beyond maxInflight requests get 429 SERVER_OVERLOADED", function()
    local srv = server.start{ config = "maxInflight: 1\n" }
    local id = srv:create()
    -- one long command holds the only slot while a second request arrives
    local f = io.popen("curl -s -o /dev/null -w '%{http_code}' -X POST " ..
      "-H 'x-agentcube-session-id: " .. id .. "' -d " ..
      server.q('{"command":["sleep","3"]}') .. " " ..
      server.q(srv.url .. DP .. "api/execute"))
    local status, j
    for _ = 1, 50 do
      os.execute("sleep 0.1")
      status, j = srv:exec(id, { "true" })
      if status == 429 then break end
    end
    assert.equal(429, status)
    assert.same({ error = "server overloaded, please try again later",
                  code = "SERVER_OVERLOADED" }, j)
    assert.equal("200", f:read("a"))
    f:close()
    srv:destroy()
  end)
end)
