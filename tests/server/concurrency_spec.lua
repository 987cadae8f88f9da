-- Many sessions and many requests at once: nothing blocks, nothing fails.
local server = require "server"

describe("concurrency", function()
  local srv
  setup(function() srv = server.start{} end)
  teardown(function() srv:destroy() end)

  it("runs 64 overlapping 4 s commands at once and answers another " ..
     "session while they run", function()
    local SLEEP = 4
    local ids = {}
    for i = 1, 8 do ids[i] = srv:create() end
    local lone = srv:create()
    local url = srv.url .. server.DP .. "api/execute"
    local dir = server.tmpdir()
    local script = dir .. "/fan.sh"
    local f = io.open(script, "w")
    -- 64 long commands across 8 sessions, all in flight together
    for i = 1, 64 do
      f:write(("curl -s -X POST -H 'x-agentcube-session-id: %s' -d " ..
               "'{\"command\":[\"sh\",\"-c\",\"sleep %d; echo %d\"]}' %s " ..
               "> %s.%d &\n"):format(ids[(i % 8) + 1], SLEEP, i, url,
                                    script, i))
    end
    f:write("wait\necho done\n")
    f:close()
    local t0 = server.monotonic()
    local fan = io.popen("sh " .. server.q(script))
    -- while those run, a request on another session is answered at once:
    -- well before one of the sleeps could have ended
    os.execute("sleep 1")
    local q0 = server.monotonic()
    local status, j = srv:exec(lone, { "echo", "lone" })
    local q1 = server.monotonic()
    assert.equal(200, status)
    assert.equal("lone\n", j.stdout)
    local running = tonumber(io.popen(
      "pgrep -c -f '^sleep " .. SLEEP .. "$'"):read("a")) or 0
    assert.equal("done\n", fan:read("a"))
    fan:close()
    local elapsed = server.monotonic() - t0
    local okc = 0
    for i = 1, 64 do
      local out = server.read_file(script .. "." .. i) or ""
      if out:find('"stdout":"' .. i .. '\\n"', 1, true) and
         out:find('"exit_code":0', 1, true) then
        okc = okc + 1
      end
    end
    assert.equal(64, okc)
    print(("# 64 x %d s in %.1f s; the other session answered in %.2f s " ..
           "with %d sleeps running"):format(SLEEP, elapsed, q1 - q0, running))
    -- the other request was not queued behind a sleep
    assert.is_true(q1 - q0 < SLEEP - 1, ("answered in %.2f s"):format(q1 - q0))
    assert.is_true(running >= 32, running .. " sleeps were running")
    -- 64 x 4 s run together: serially they take 256 s, eight at a time
    -- (one per session) 32 s; this bound fails unless more than eight
    -- commands overlap on average
    assert.is_true(elapsed < 8 * SLEEP - 4, ("took %.1f s"):format(elapsed))
    os.execute("rm -rf " .. server.q(dir))
    for _, id in ipairs(ids) do srv:delete(id) end
    srv:delete(lone)
  end)

  it("creates and deletes many sessions concurrently", function()
    local url = srv.url .. "/v1/code-interpreter"
    local p = io.popen(([[
for i in $(seq 1 24); do
  ( id=$(curl -s -X POST -d '{"name":"my-interpreter","namespace":"default"}' %s |
         sed 's/.*"sessionId":"\([^"]*\)".*/\1/')
    curl -s -o /dev/null -w '%%{http_code}\n' -X POST \
      -H "x-agentcube-session-id: $id" -d '{"command":["true"]}' %s
    curl -s -o /dev/null -w '%%{http_code}\n' -X DELETE %s/sessions/$id ) &
done
wait]]):format(url, srv.url .. server.DP .. "api/execute", url))
    local out = p:read("a")
    p:close()
    local n200 = select(2, out:gsub("200", ""))
    assert.equal(48, n200, out)
    local _, j = srv:json("GET", "/v1/code-interpreter/sessions")
    assert.equal(0, #j.sessions)
  end)
end)
