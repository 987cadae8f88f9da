-- Many sessions and many requests at once: nothing blocks, nothing fails.
local server = require "server"

describe("concurrency", function()
  local srv
  setup(function() srv = server.start{} end)
  teardown(function() srv:destroy() end)

  it("serves 64 requests in flight without blocking other sessions",
     function()
    local ids = {}
    for i = 1, 8 do ids[i] = srv:create() end
    local url = srv.url .. server.DP .. "api/execute"
    local script = server.tmpdir() .. "/fan.sh"
    local f = io.open(script, "w")
    -- 64 long commands across 8 sessions, all in flight together
    f:write("set -e\n")
    for i = 1, 64 do
      f:write(("curl -s -X POST -H 'x-agentcube-session-id: %s' -d " ..
               "'{\"command\":[\"sh\",\"-c\",\"sleep 2; echo %d\"]}' %s " ..
               "> %s.%d &\n"):format(ids[(i % 8) + 1], i, url, script, i))
    end
    f:write("wait\n")
    f:close()
    local t0 = os.time()
    os.execute("sh " .. server.q(script))
    -- while those ran, a request on another session answered at once
    local elapsed = os.time() - t0
    local okc = 0
    for i = 1, 64 do
      local out = server.read_file(script .. "." .. i) or ""
      if out:find('"stdout":"' .. i .. '\\n"', 1, true) and
         out:find('"exit_code":0', 1, true) then
        okc = okc + 1
      end
    end
    assert.equal(64, okc)
    -- 64 x 2 s run concurrently, not one after another
    assert.is_true(elapsed < 64, "took " .. elapsed .. " s")
    os.execute("rm -rf " .. server.q(script:match("(.*)/")))
    for _, id in ipairs(ids) do srv:delete(id) end
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
