-- Code contexts (docs/extensions.md): a context created with env and a
-- working_dir runs there with them, and every malformed request is a
-- 400 that says which field is wrong, before anything is started.
local server = require "server"

local DP = server.DP

describe("code context requests", function()
  local srv, id
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  local function post(path, body)
    return srv:json("POST", DP .. path, body, { session = id })
  end

  it("creates a context with env and a working_dir, and runs there",
     function()
    local status, c = post("api/contexts", { language = "bash",
      env = { GREETING = "hi there" }, working_dir = "sub/dir" })
    assert.equal(201, status)
    local _, r = post("api/contexts/" .. c.id .. "/run",
                      { code = "echo \"$GREETING\"; pwd", timeout = "20s" })
    assert.equal("hi there\n/workspace/sub/dir\n", r.stdout)
    assert.equal(200, (post("api/contexts/" .. c.id .. "/delete", {})))
  end)

  it("refuses malformed create requests with the field at fault",
     function()
    local cases = {
      { "[1]", "request body must be a JSON object" },
      { { language = "cobol" }, 'language must be "python", "bash" or "lua"' },
      { { language = "bash", env = "A=1" },
        "env must be an object of strings" },
      { { language = "bash", env = { A = 1 } },
        "env entry 'A' must be a string under a name without '='" },
      { { language = "bash", env = { ["A=B"] = "x" } },
        "env entry 'A=B' must be a string under a name without '='" },
      { { language = "bash", working_dir = 7 },
        "working_dir must be a string" },
      { { language = "bash", working_dir = "/etc" },
        "Invalid working directory: " },
    }
    for _, c in ipairs(cases) do
      local status, body = post("api/contexts", c[1])
      assert.equal(400, status, c[2])
      assert.matches(c[2], body.error, 1, true)
    end
  end)

  it("holds at most 16 contexts per session: the next one is a 429",
     function()
    local sid = srv:create()
    local function make()
      return srv:json("POST", DP .. "api/contexts", { language = "bash" },
                      { session = sid })
    end
    local ids = {}
    for i = 1, 16 do
      local status, c = make()
      assert.equal(201, status, "context " .. i)
      ids[#ids + 1] = c.id
    end
    local status, body = make()
    assert.equal(429, status)
    assert.matches("at most 16 contexts per session", body.error, 1, true)
    -- one deleted, one more fits (control)
    assert.equal(200, (srv:json("POST", DP .. "api/contexts/" .. ids[1] ..
                                "/delete", {}, { session = sid })))
    assert.equal(201, (make()))
    srv:delete(sid)
  end)

  it("refuses malformed runs and unknown contexts", function()
    local _, c = post("api/contexts", { language = "bash" })
    local cases = {
      { { timeout = "1s" }, "code is required and must be a string" },
      { { code = "true", timeout = "soon" },
        "timeout must be a positive duration string" },
      { { code = "true", timeout = "-1s" },
        "timeout must be a positive duration string" },
      { { code = "true", timeout = 5 },
        "timeout must be a positive duration string" },
    }
    for _, case in ipairs(cases) do
      local status, body = post("api/contexts/" .. c.id .. "/run", case[1])
      assert.equal(400, status, case[2])
      assert.matches(case[2], body.error, 1, true)
    end
    local status = post("api/contexts/nosuch/run", { code = "true" })
    assert.equal(404, status)
    assert.equal(404, (post("api/contexts/nosuch/delete", {})))
    -- the context itself still runs (control)
    local _, r = post("api/contexts/" .. c.id .. "/run", { code = "echo ok" })
    assert.equal("ok\n", r.stdout)
  end)
end)
