-- Streamed execute (Accept: application/x-ndjson) and cancellation of a
-- command whose client goes away, streamed or buffered.
local server = require "server"
local cjson = require "cjson"

local RAW = "python3 tests/helpers/rawconn.py "
local DP = server.DP

describe("streaming execute", function()
  local srv, id, host, port
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
    host, port = srv.url:match("^http://([^:]+):(%d+)$")
  end)
  teardown(function() srv:destroy() end)

  local function hdrs()
    return server.q("x-agentcube-session-id: " .. id ..
                    "|Content-Type: application/json")
  end

  -- Runs argv streamed; returns the head line and the events with their
  -- arrival times.
  local function stream(body)
    local p = io.popen(RAW .. "stream " .. host .. " " .. port .. " " ..
                       server.q(DP .. "api/execute") .. " " .. hdrs() ..
                       " " .. server.q(cjson.encode(body)))
    local head = p:read("l")
    local events = {}
    for line in p:lines() do
      local at, json = line:match("^at ([%d.]+) (.*)$")
      if at then
        local ev = cjson.decode(json)
        ev.at = tonumber(at)
        events[#events + 1] = ev
      end
    end
    p:close()
    return head, events
  end

  it("sends each chunk as it is written, then the exit", function()
    local head, ev = stream{ command = { "sh", "-c",
                                         "echo a; sleep 1; echo b" } }
    assert.equal("status 200 type application/x-ndjson", head)
    assert.equal(3, #ev)
    assert.same({ "stdout", "a\n", 0 }, { ev[1].type, ev[1].data,
                                          ev[1].offset })
    assert.same({ "stdout", "b\n", 2 }, { ev[2].type, ev[2].data,
                                          ev[2].offset })
    assert.equal("exit", ev[3].type)
    assert.equal(0, ev[3].exit_code)
    assert.is_false(ev[3].timed_out)
    assert.is_true(ev[3].duration >= 1)
    assert.truthy(ev[3].start_time and ev[3].end_time)
    -- the first chunk came long before the second (generous bound: load)
    assert.is_true(ev[2].at - ev[1].at > 0.6,
                   ("a at %.3f, b at %.3f"):format(ev[1].at, ev[2].at))
  end)

  it("tells stderr from stdout; offsets count both", function()
    local _, ev = stream{ command = { "sh", "-c",
      "printf out; sleep 0.2; printf err >&2; sleep 0.2; printf x" } }
    assert.same({ "stdout", "out", 0 }, { ev[1].type, ev[1].data,
                                          ev[1].offset })
    assert.same({ "stderr", "err", 3 }, { ev[2].type, ev[2].data,
                                          ev[2].offset })
    assert.same({ "stdout", "x", 6 }, { ev[3].type, ev[3].data,
                                        ev[3].offset })
  end)

  it("never splits a UTF-8 sequence; invalid bytes go as b64", function()
    local _, ev = stream{ command = { "bash", "-c",
      [[printf '\xc3'; sleep 0.3; printf '\xa9\n'; sleep 0.3; ]] ..
      [[printf '\xff\xfe']] } }
    assert.same({ "stdout", "\195\169\n" }, { ev[1].type, ev[1].data })
    assert.equal("//4=", ev[2].b64)
    assert.is_nil(ev[2].data)
    assert.equal(3, ev[2].offset)
  end)

  it("reports a timeout in the exit event", function()
    local _, ev = stream{ command = { "sleep", "30" }, timeout = "1s" }
    local last = ev[#ev]
    assert.equal("exit", last.type)
    assert.equal(124, last.exit_code)
    assert.is_true(last.timed_out)
  end)

  it("answers validation errors before any stream, as JSON", function()
    local head = stream{ command = {} }
    assert.equal("status 400 type application/json; charset=utf-8", head)
  end)

  it("without Accept answers the usual buffered JSON", function()
    local status, j, h = srv:exec(id, { "sh", "-c", "echo a; echo b" })
    assert.equal(200, status)
    assert.equal("a\nb\n", j.stdout)
    assert.equal("application/json; charset=utf-8", h["content-type"])
  end)

  for _, streamed in ipairs({ true, false }) do
    it(("kills the whole tree when the client disconnects (%s)"):format(
         streamed and "streamed" or "buffered"), function()
      local tag = streamed and "1" or "2"
      local body = cjson.encode{ command = { "bash", "-c",
        ("(setsid sleep 40%s.5 &); (sleep 41%s.5 &); sleep 42%s.5"):format(
          tag, tag, tag) }, timeout = "120s" }
      local h = "x-agentcube-session-id: " .. id ..
                "|Content-Type: application/json"
      if streamed then h = h .. "|Accept: application/x-ndjson" end
      local p = io.popen(RAW .. "cut " .. host .. " " .. port .. " " ..
        server.q(DP .. "api/execute") .. " " .. server.q(h) .. " " ..
        server.q(body) .. " " .. server.q("sleep 4[012]" .. tag .. "[.]5"))
      local line = p:read("l")
      p:close()
      local s = tonumber(line:match("^gone after ([%d.]+)$"))
      assert.is_true(s ~= nil and s < 5, line)
      -- positive control: the session still runs commands
      assert.equal("ok\n", (srv:sh(id, "echo ok")))
    end)
  end
end)
