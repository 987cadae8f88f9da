-- Control plane conformance (docs/protocol.md §3) and the local
-- listing extensions, against a real `agentcube serve`.
local server = require "server"

describe("control plane", function()
  local srv
  setup(function() srv = server.start{ auth = true } end)
  teardown(function() srv:destroy() end)

  it("1: GET /health is open and healthy", function()
    local status, j = srv:json("GET", "/health", nil, { noauth = true })
    assert.equal(200, status)
    assert.same({ status = "healthy" }, j)
  end)

  it("2: create returns a UUIDv4 sessionId and accepts SDK fields", function()
    local status, j = srv:json("POST", "/v1/code-interpreter", {
      name = "my-interpreter", namespace = "default", ttl = 3600,
      metadata = { owner = "spec" }, kind = "CodeInterpreter" })
    assert.equal(200, status)
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-" ..
                   "%x%x%x%x%x%x%x%x%x%x%x%x$", j.sessionId)
    assert.equal("Sandbox", j.kind)
    assert.equal("table", type(j.entryPoints))
    assert.equal("/", j.entryPoints[1].path)
    srv:delete(j.sessionId)
  end)

  it("3: malformed or empty bodies are 400 Invalid request body", function()
    for _, body in ipairs{ "{invalid", "", "[]", '{"name": 5}',
                           '{"namespace": true, "name": "x"}',
                           '{"kind": 5, "namespace": "default", ' ..
                           '"name": "my-interpreter"}',
                           '{"ttl": "1h", "namespace": "default", ' ..
                           '"name": "my-interpreter"}',
                           '{"ttl": -1, "namespace": "default", ' ..
                           '"name": "my-interpreter"}' } do
      local status, j = srv:json("POST", "/v1/code-interpreter", body)
      assert.equal(400, status, body)
      assert.same({ message = "Invalid request body" }, j)
    end
  end)

  it("4: namespace is checked before name", function()
    local status, j = srv:json("POST", "/v1/code-interpreter", { name = "x" })
    assert.equal(400, status)
    assert.same({ message = "namespace is required" }, j)
    status, j = srv:json("POST", "/v1/code-interpreter",
                         { namespace = "default" })
    assert.equal(400, status)
    assert.same({ message = "name is required" }, j)
    status, j = srv:json("POST", "/v1/code-interpreter", {})
    assert.same({ message = "namespace is required" }, j)
  end)

  it("6: two sessions have different ids and separate workspaces", function()
    local a, b = srv:create(), srv:create()
    assert.are_not.equal(a, b)
    srv:write(a, "mine.txt", "A")
    local _, j = srv:list(b)
    for _, f in ipairs(j.files) do assert.are_not.equal("mine.txt", f.name) end
    local status = srv:download(b, "mine.txt")
    assert.equal(404, status)
    srv:delete(a)
    srv:delete(b)
  end)

  it("7/8/9: delete, delete again, then the data plane says 404", function()
    local id = srv:create()
    local status, j = srv:json("DELETE", "/v1/code-interpreter/sessions/" .. id,
                               nil, { headers = { ["Content-Type"] =
                                                  "application/json" } })
    assert.equal(200, status)
    assert.same({ message = "Sandbox deleted successfully" }, j)
    status, j = srv:delete(id)
    assert.equal(404, status)
    assert.same({ message = "Session ID " .. id ..
                  " not found, maybe already deleted" }, j)
    status, j = srv:exec(id, { "true" })
    assert.equal(404, status)
    assert.equal('sessions.agentcube.volcano.sh "' .. id .. '" not found',
                 j.error)
  end)

  it("10: auth failures are 401 in the WorkloadManager's shape", function()
    local status, j = srv:json("POST", "/v1/code-interpreter", {}, {
      noauth = true })
    assert.equal(401, status)
    assert.same({ message = "Missing authorization header" }, j)
    status, j = srv:json("POST", "/v1/code-interpreter", {}, {
      headers = { Authorization = "Token x" } })
    assert.equal(401, status)
    assert.same({ message = "Invalid authorization header format" }, j)
    status, j = srv:json("POST", "/v1/code-interpreter", {}, {
      headers = { Authorization = "Bearer " .. ("0"):rep(64) } })
    assert.equal(401, status)
    assert.same({ message = "Invalid or expired token" }, j)
    status, j = srv:json("GET", "/v1/code-interpreter/sessions", nil, {
      headers = { Authorization = "Bearer short" } })
    assert.equal(401, status)
  end)

  it("10: the data plane rejects a missing token in the Router's shape",
     function()
    local status, j = srv:json("POST", server.DP .. "api/execute",
                               { command = { "true" } }, { noauth = true })
    assert.equal(401, status)
    assert.same({ error = "missing authorization header",
                  code = "UNAUTHORIZED" }, j)
  end)

  it("keeps the token file private", function()
    local p = io.popen("stat -c %a " .. server.q(srv.state_dir .. "/token"))
    local mode = p:read("l")
    p:close()
    assert.equal("600", mode)
    assert.equal(64, #srv.token)
  end)

  it("lists sessions and describes one (extensions)", function()
    local id = srv:create()
    local status, j = srv:json("GET", "/v1/code-interpreter/sessions")
    assert.equal(200, status)
    local found
    for _, s in ipairs(j.sessions) do
      if s.sessionId == id then found = s end
    end
    assert.truthy(found)
    assert.equal("my-interpreter", found.name)
    assert.equal("default", found.namespace)
    for _, k in ipairs{ "createdAt", "expiresAt", "lastActivityAt" } do
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", found[k])
    end
    status, j = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    assert.equal(200, status)
    assert.equal(id, j.sessionId)
    assert.equal(1024 * 1024 * 1024, j.limits.memoryBytes)
    srv:delete(id)
    status = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    assert.equal(404, status)
  end)

  it("answers unknown routes with gin's plain 404", function()
    local status, body = srv:request{ path = "/nope" }
    assert.equal(404, status)
    assert.equal("404 page not found", body)
    status = srv:request{ method = "PUT", path = "/v1/code-interpreter" }
    assert.equal(404, status)
  end)
end)

describe("templates", function()
  local srv
  setup(function()
    srv = server.start{ config = [[
strict: true
templates:
  - name: small
    namespace: team
    sessionTimeout: 10m
    maxSessionDuration: 1h
    warmPoolSize: 0
    resources: { limits: { memory: 256Mi, cpu: "500m", pids: 64 } }
    environment: [ { name: GREETING, value: hello } ]
]] }
  end)
  teardown(function() srv:destroy() end)

  it("5: a strict config answers unknown templates with 404", function()
    local status, j = srv:json("POST", "/v1/code-interpreter",
      { name = "my-interpreter", namespace = "default" })
    assert.equal(404, status)
    assert.same({ message = "code interpreter not found" }, j)
    status, j = srv:json("POST", "/v1/code-interpreter",
      { name = "small", namespace = "other" })
    assert.equal(404, status)
  end)

  it("applies the template's limits and environment", function()
    local id = srv:create{ name = "small", namespace = "team" }
    local status, j = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    assert.equal(200, status)
    assert.equal(256 * 1024 * 1024, j.limits.memoryBytes)
    assert.equal(64, j.limits.pids)
    assert.equal(500, j.limits.cpuMillis)
    assert.equal(600, j.idleTimeoutSeconds)
    status, j = srv:json("POST",
      "/v1/namespaces/team/code-interpreters/small/invocations/api/execute",
      { command = { "printenv", "GREETING" } }, { session = id })
    assert.equal(200, status)
    assert.equal("hello\n", j.stdout)
    srv:delete(id)
  end)

  it("caps ttl at maxSessionDuration", function()
    local _, j = srv:json("POST", "/v1/code-interpreter",
      { name = "small", namespace = "team", ttl = 999999 })
    local _, info = srv:json("GET", "/v1/code-interpreter/sessions/" ..
                             j.sessionId)
    local function secs(ts)
      local y, mo, d, h, mi, s = ts:match("(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
      return os.time{ year = y, month = mo, day = d, hour = h, min = mi,
                      sec = s }
    end
    assert.equal(3600, secs(info.expiresAt) - secs(info.createdAt))
    srv:delete(j.sessionId)
  end)
end)

describe("configuration errors", function()
  it("name the file, line and column and exit 2", function()
    local dir = server.tmpdir()
    local cfg = dir .. "/bad.yaml"
    local f = io.open(cfg, "w")
    f:write("templates:\n  - name: x\n    memroy: 1Gi\n")
    f:close()
    local p = io.popen(server.q(server.bin) .. " serve --check --config " ..
                       server.q(cfg) .. " --state-dir " .. server.q(dir) ..
                       " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    assert.matches("bad.yaml:3:5: unknown template key 'memroy'", out, 1, true)
    assert.matches("exit=2", out, 1, true)
    os.execute("rm -rf " .. server.q(dir))
  end)
end)
