-- Sandbox execute conformance (docs/protocol.md §5.1).
local server = require "server"
local DP = server.DP

describe("execute", function()
  local srv, id
  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  it("25: echo hello, with timings", function()
    local status, j = srv:exec(id, { "echo", "hello" }, { timeout = "120s" })
    assert.equal(200, status)
    assert.equal("hello\n", j.stdout)
    assert.equal("", j.stderr)
    assert.equal(0, j.exit_code)
    assert.equal("number", type(j.duration))
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.%d]*Z$",
                   j.start_time)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.%d]*Z$", j.end_time)
  end)

  it("26: a non-zero exit is a 200 with the exit code and stderr", function()
    local status, j = srv:exec(id, { "sh", "-c", "echo e >&2; exit 3" })
    assert.equal(200, status)
    assert.equal(3, j.exit_code)
    assert.equal("e\n", j.stderr)
  end)

  it("27: a timeout kills the command: 124 and the timeout text", function()
    local t0 = os.time()
    local status, j = srv:exec(id, { "sleep", "30" }, { timeout = "1s" })
    assert.equal(200, status)
    assert.equal(124, j.exit_code)
    assert.matches("Command timed out after 1 seconds$", j.stderr)
    assert.is_true(os.time() - t0 < 20)
  end)

  it("27: the whole process tree dies on timeout", function()
    -- command lines no other process on this machine has
    local m = { server.marker(), server.marker(), server.marker() }
    local _, j = srv:exec(id, { "bash", "-c",
      "(setsid " .. m[1] .. " &); (nohup " .. m[2] .. " &); " .. m[3] },
      { timeout = "1s" })
    assert.equal(124, j.exit_code)
    for _, mark in ipairs(m) do
      assert.equal("", server.capture("pgrep -f " ..
        server.q("^" .. mark .. "$")), mark)
    end
  end)

  it("28: timeout strings follow Go's duration grammar", function()
    local status, j = srv:exec(id, { "true" }, { timeout = "10" })
    assert.equal(400, status)
    assert.same({ error = 'Invalid timeout format: time: missing unit in ' ..
                  'duration "10"', code = 400 }, j)
    status, j = srv:exec(id, { "true" }, { timeout = "abc" })
    assert.equal(400, status)
    assert.equal('Invalid timeout format: time: invalid duration "abc"',
                 j.error)
    for _, t in ipairs{ "2.5s", "500ms", "1m30s", "30.0s", "1h" } do
      status, j = srv:exec(id, { "true" }, { timeout = t })
      assert.equal(200, status, t)
      assert.equal(0, j.exit_code, t)
    end
    status = srv:exec(id, { "true" }, { timeout = 10 })
    assert.equal(400, status)
  end)

  -- The default template's 60 s is checked where it is set
  -- (c/test_server_config); here, that an absent or empty timeout really
  -- applies the template's value, with a template of 2 s, and that a
  -- template without commandTimeout does not kill a command at 2 s.
  it("29: an absent or empty timeout applies the template's " ..
     "commandTimeout (60 s unless configured)", function()
    local short = server.start{ config = "templates:\n" ..
      "  - name: quick\n    commandTimeout: 2s\n" ..
      "  - name: plain\n" }
    finally(function() short:destroy() end)
    local q = short:create{ name = "quick", namespace = "default" }
    for _, opts in ipairs{ { timeout = "" }, {} } do
      local t0 = server.monotonic()
      local status, j = short:json("POST", "/v1/namespaces/default/" ..
        "code-interpreters/quick/invocations/api/execute",
        { command = { "sleep", "30" }, timeout = opts.timeout },
        { session = q })
      local took = server.monotonic() - t0
      assert.equal(200, status)
      assert.equal(124, j.exit_code)
      assert.matches("Command timed out after 2 seconds", j.stderr, 1, true)
      assert.is_true(took >= 1.9 and took < 20, ("took %.1f s"):format(took))
    end
    -- control: the plain template (60 s) lets the same kind of command
    -- outlive 2 s
    local p = short:create{ name = "plain", namespace = "default" }
    local status, j = short:json("POST", "/v1/namespaces/default/" ..
      "code-interpreters/plain/invocations/api/execute",
      { command = { "sh", "-c", "sleep 3; echo lived" }, timeout = "" },
      { session = p })
    assert.equal(200, status)
    assert.equal(0, j.exit_code)
    assert.equal("lived\n", j.stdout)
  end)

  it("30: an empty or missing command is 400", function()
    local status, j = srv:json("POST", DP .. "api/execute",
                               '{"command": []}', { session = id })
    assert.equal(400, status)
    assert.same({ error = "command cannot be empty", code = 400 }, j)
    status, j = srv:json("POST", DP .. "api/execute", { timeout = "1s" },
                         { session = id })
    assert.equal(400, status)
    assert.equal("string", type(j.error))
    assert.equal(400, j.code)
    status, j = srv:json("POST", DP .. "api/execute", "{nope",
                         { session = id })
    assert.equal(400, status)
    assert.equal(400, j.code)
  end)

  it("31: an unknown executable exits 1 with a message", function()
    local status, j = srv:exec(id, { "no-such-program" })
    assert.equal(200, status)
    assert.equal(1, j.exit_code)
    assert.truthy(#j.stderr > 0)
  end)

  it("32: cwd is /workspace, files persist, env and working_dir work",
     function()
    local _, j = srv:exec(id, { "pwd" })
    assert.equal("/workspace\n", j.stdout)
    srv:write(id, "rel.txt", "relative")
    _, j = srv:exec(id, { "cat", "rel.txt" })
    assert.equal("relative", j.stdout)
    _, j = srv:exec(id, { "printenv", "FOO" }, { env = { FOO = "bar" } })
    assert.equal("bar\n", j.stdout)
    _, j = srv:exec(id, { "pwd" }, { working_dir = "sub/dir" })
    assert.equal("/workspace/sub/dir\n", j.stdout)
    _, j = srv:exec(id, { "pwd" }, { working_dir = "/tmp" })
    assert.equal("/tmp\n", j.stdout)
    local status
    status, j = srv:exec(id, { "pwd" }, { working_dir = "../" })
    assert.equal(400, status)
    assert.matches("^Invalid working directory: access denied", j.error)
    status = srv:exec(id, { "pwd" }, { working_dir = "/etc" })
    assert.equal(400, status)
  end)

  it("keeps /tmp and the home directory across commands", function()
    srv:sh(id, "echo t > /tmp/t.txt; echo h > ~/h.txt")
    local out = srv:sh(id, "cat /tmp/t.txt ~/h.txt; echo $HOME")
    assert.equal("t\nh\n/home/sandbox\n", out)
  end)

  it("runs python3 and bash scripts", function()
    srv:write(id, "s.py", "import sys\nprint(sum(range(10)), sys.version_info[0])\n")
    local _, j = srv:exec(id, { "python3", "s.py" })
    assert.equal("45 3\n", j.stdout)
    srv:write(id, "s.sh", "for i in 1 2 3; do echo -n $i; done\n")
    _, j = srv:exec(id, { "bash", "s.sh" })
    assert.equal("123", j.stdout)
  end)

  it("replaces invalid UTF-8 in output instead of failing", function()
    local status, j = srv:exec(id, { "printf", "a\\377b" })
    assert.equal(200, status)
    assert.equal("a\239\191\189b", j.stdout)
    local R = "\239\191\189"            -- U+FFFD
    -- valid sequences of 2, 3 and 4 bytes pass through; overlong forms,
    -- surrogates, code points above U+10FFFF and cut sequences do not
    for _, c in ipairs{
        { "\\303\\251", "\195\169" },                     -- é
        { "\\342\\202\\254", "\226\130\172" },           -- €
        { "\\360\\237\\230\\200", "\240\159\152\128" },   -- U+1F600
        { "\\300\\257", R .. R },                           -- overlong /
        { "\\340\\200\\257", R .. R .. R },                 -- overlong /
        { "\\355\\240\\200", R .. R .. R },                 -- surrogate
        { "\\364\\220\\200\\200", R .. R .. R .. R },       -- > U+10FFFF
        { "\\342\\202x", R .. R .. "x" } } do                 -- cut short
      status, j = srv:exec(id, { "printf", "<" .. c[1] .. ">" })
      assert.equal(200, status)
      assert.equal("<" .. c[2] .. ">", j.stdout, c[1])
    end
  end)

  it("caps output and says so", function()
    local _, j = srv:exec(id, { "bash", "-c",
      "head -c 20000000 /dev/zero | tr '\\0' x" })
    assert.equal(0, j.exit_code)
    assert.equal(16 * 1024 * 1024, #j.stdout)
    assert.is_true(j.stdout_truncated)
    assert.equal(16 * 1024 * 1024, j.output_limit_bytes)
  end)

  it("rejects bad env and argument types", function()
    local status = srv:exec(id, { "true" }, { env = { ["A=B"] = "x" } })
    assert.equal(400, status)
    status = srv:exec(id, { "true", 5 })
    assert.equal(400, status)
    status = srv:exec(id, { "true" }, { env = { X = 1 } })
    assert.equal(400, status)
  end)
end)
