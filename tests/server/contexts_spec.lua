-- Stateful code contexts (docs/extensions.md): state kept between runs,
-- the value of a final expression, structured errors, interrupts on
-- timeout, one run at a time, streamed runs.
local server = require "server"
local cjson = require "cjson"

local DP = server.DP

describe("code contexts", function()
  local srv, id
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  local function create(lang)
    return srv:json("POST", DP .. "api/contexts", { language = lang },
                    { session = id })
  end
  local function run(cid, code, timeout, headers)
    return srv:json("POST", DP .. "api/contexts/" .. cid .. "/run",
                    { code = code, timeout = timeout },
                    { session = id, headers = headers })
  end

  it("python keeps state; the last expression is the value", function()
    local status, c = create("python")
    assert.equal(201, status)
    assert.same({ "python", "idle" }, { c.language, c.state })
    local _, r = run(c.id, "x = 1\nimport math")
    assert.equal(cjson.null, r.value)
    assert.equal(cjson.null, r.error)
    _, r = run(c.id, "print('hi')\nx + 1")
    assert.equal("2", r.value)
    assert.equal("hi\n", r.stdout)
    _, r = run(c.id, "'a' * 2")
    assert.equal("'aa'", r.value)
    _, r = run(c.id, "1 / 0")
    assert.equal("ZeroDivisionError", r.error.name)
    assert.equal("division by zero", r.error.message)
    assert.matches("Traceback", r.error.traceback)
    -- still alive after an error
    _, r = run(c.id, "x")
    assert.equal("1", r.value)
  end)

  it("interrupts a run that times out; the context survives", function()
    local _, c = create("python")
    run(c.id, "y = 41")
    local status, r = run(c.id, "import time\ntime.sleep(30)", "1s")
    assert.equal(200, status)
    assert.is_true(r.timed_out)
    assert.equal("TimeoutError", r.error.name)
    _, r = run(c.id, "y + 1")
    assert.equal("42", r.value)
  end)

  it("bash and lua contexts keep state too", function()
    local _, b = create("bash")
    run(b.id, "cd /tmp; V=7")
    local _, r = run(b.id, "echo $V $PWD")
    assert.equal("7 /tmp\n", r.stdout)
    assert.equal(cjson.null, r.value)
    _, r = run(b.id, "false")
    assert.equal("ExitStatus", r.error.name)
    local _, l = create("lua")
    run(l.id, "n = 20")
    _, r = run(l.id, "return n + 1, 'x'")
    assert.equal("21\tx", r.value)
  end)

  it("one run at a time; lists, deletes, 404s", function()
    local _, c = create("python")
    local p = io.popen(("curl -s -H %s -H 'Content-Type: application/json' " ..
      "-d %s %s"):format(server.q("x-agentcube-session-id: " .. id),
      server.q('{"code":"import time; time.sleep(2)"}'),
      server.q(srv.url .. DP .. "api/contexts/" .. c.id .. "/run")) ..
      " >/dev/null &")
    p:close()
    os.execute("sleep 0.5")
    local status = run(c.id, "1")
    assert.equal(409, status)
    local _, list = srv:json("GET", DP .. "api/contexts", nil,
                             { session = id })
    assert.truthy(#list.contexts >= 1)
    status = srv:json("POST", DP .. "api/contexts/" .. c.id .. "/delete",
                      nil, { session = id })
    assert.equal(200, status)
    assert.equal(404, (run(c.id, "1")))
    assert.equal(400, (create("cobol")))
    assert.equal(404, (run("c999", "1")))
  end)

  it("a streamed run ends with its result event", function()
    local _, c = create("python")
    local status, text = srv:request{ method = "POST",
      path = DP .. "api/contexts/" .. c.id .. "/run", session = id,
      headers = { Accept = "application/x-ndjson",
                  ["Content-Type"] = "application/json" },
      body = cjson.encode{ code = "print(1)\n2 + 2" } }
    assert.equal(200, status)
    local ev, out = {}, {}
    for line in text:gmatch("[^\n]+") do ev[#ev + 1] = cjson.decode(line) end
    for i = 1, #ev - 1 do
      assert.equal("stdout", ev[i].type)
      out[#out + 1] = ev[i].data
    end
    assert.equal("1\n", table.concat(out))
    assert.same({ "result", "4" }, { ev[#ev].type, ev[#ev].value })
    -- streamed: the output went out as events, not again in the result
    assert.is_nil(ev[#ev].stdout)
  end)
end)
