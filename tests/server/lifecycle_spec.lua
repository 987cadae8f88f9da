-- Session lifetime: restart persistence (also after kill -9), TTL and idle
-- reaping, crash leftovers.
local server = require "server"

local function session_count(srv)
  local _, j = srv:json("GET", "/v1/code-interpreter/sessions")
  return #j.sessions
end

describe("persistence", function()
  it("keeps sessions and their files across a graceful restart", function()
    local srv = server.start{ auth = true }
    local id = srv:create()
    srv:write(id, "keep.txt", "kept")
    srv:sh(id, "echo t > /tmp/t; echo h > ~/h")
    local token = srv.token
    srv:restart()
    assert.equal(token, srv.token)
    local status, body = srv:download(id, "keep.txt")
    assert.equal(200, status)
    assert.equal("kept", body)
    assert.equal("t\nh\n", (srv:sh(id, "cat /tmp/t ~/h")))
    srv:destroy()
  end)

  it("keeps sessions after kill -9 and still deletes them", function()
    local srv = server.start{}
    local a, b = srv:create(), srv:create()
    srv:write(a, "a.txt", "A")
    srv:kill9()
    srv:launch()
    local _, body = srv:download(a, "a.txt")
    assert.equal("A", body)
    assert.equal(0, select(3, srv:sh(b, "true")))
    assert.equal(200, srv:delete(a))
    assert.equal(200, srv:delete(b))
    assert.equal(0, session_count(srv))
    srv:destroy()
  end)

  it("removes what a crash left half-made", function()
    local srv = server.start{}
    local id, lost = srv:create(), srv:create()
    srv:stop()
    local dir = srv.state_dir
    -- a record whose box is not there: dropped (its own box, no longer
    -- named by any record, goes as a leftover)
    local rec = server.read_file(dir .. "/sessions/" .. lost .. ".json")
    local moved = rec:gsub('"slot":%s*%d+', '"slot": 60000')
    assert.are_not.equal(rec, moved)
    local f = io.open(dir .. "/sessions/" .. lost .. ".json", "w")
    f:write(moved)
    f:close()
    -- a record that was never renamed into place, and an unreadable one
    f = io.open(dir .. "/sessions/" .. id .. ".json.123.tmp", "w")
    f:write("{")
    f:close()
    f = io.open(dir .. "/sessions/11111111-1111-4111-8111-111111111111.json",
                "w")
    f:write("not json")
    f:close()
    -- JSON that is no session record, and a record planted as a symlink
    -- (to a good record elsewhere: never followed)
    f = io.open(dir .. "/sessions/22222222-2222-4222-8222-222222222222.json",
                "w")
    f:write('{"sessionId": "22222222-2222-4222-8222-222222222222"}')
    f:close()
    local outside = dir .. ".outside.json"
    f = io.open(outside, "w")
    f:write((rec:gsub(lost, "33333333-3333-4333-8333-333333333333")))
    f:close()
    os.execute("ln -s " .. server.q(outside) .. " " .. server.q(dir ..
      "/sessions/33333333-3333-4333-8333-333333333333.json"))
    -- a box directory no record names
    os.execute("mkdir -p " .. server.q(dir .. "/boxes/999/root"))
    srv:launch()
    local p = io.popen("ls " .. server.q(dir .. "/sessions") .. " " ..
                       server.q(dir .. "/boxes"))
    local listing = p:read("a")
    p:close()
    assert.is_nil(listing:find(".tmp", 1, true))
    assert.is_nil(listing:find("11111111", 1, true))
    assert.is_nil(listing:find("999", 1, true))
    assert.is_nil(listing:find(lost, 1, true))
    assert.is_nil(listing:find("22222222", 1, true))
    assert.is_nil(listing:find("33333333", 1, true))
    assert.truthy(server.read_file(outside), "the link's target is left")
    os.remove(outside)
    assert.equal(1, session_count(srv))
    assert.equal(0, select(3, srv:sh(id, "true")))
    assert.matches("session " .. lost .. " cannot be restored: ",
                   srv:logtext(), 1, true)
    assert.matches(dir .. "/boxes/60000: No such file or directory",
                   srv:logtext(), 1, true)
    assert.equal(404, (srv:json("GET", "/v1/code-interpreter/sessions/" ..
                                lost)))
    srv:destroy()
  end)

  it("keeps a session whose template left the configuration, on the " ..
     "default template; new ones of it are refused", function()
    local srv = server.start{ config = "strict: true\ndefault: " ..
      "{ warmPoolSize: 0 }\ntemplates:\n  - name: a\n  - name: gone\n" ..
      "    sessionTimeout: 1h\n" }
    local id = srv:create{ name = "gone", namespace = "default" }
    srv:stop()
    local f = io.open(srv.config_path, "w")
    f:write("strict: true\ndefault: { warmPoolSize: 0 }\n" ..
            "templates:\n  - name: a\n")
    f:close()
    srv:launch()
    local status, j = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    assert.equal(200, status)
    assert.equal("gone", j.name)
    assert.equal(0, select(3, srv:sh(id, "true")))
    status = srv:json("POST", "/v1/code-interpreter",
                      { name = "gone", namespace = "default" })
    assert.equal(404, status)
    -- control: the template still configured creates
    assert.truthy(srv:create{ name = "a", namespace = "default" })
    srv:destroy()
  end)

  it("refuses a second server on the same state directory", function()
    local srv = server.start{}
    local p = io.popen(server.q(server.bin) .. " serve --no-auth --listen " ..
                       "127.0.0.1:0 --state-dir " .. server.q(srv.state_dir) ..
                       " 2>&1; echo exit=$?")
    local out = p:read("a")
    p:close()
    assert.matches("another agentcube server uses", out, 1, true)
    assert.matches("exit=1", out, 1, true)
    srv:destroy()
  end)
end)

describe("reaping", function()
  local srv
  setup(function()
    srv = server.start{ reap_ms = 100, config = [[
templates:
  - name: brief
    sessionTimeout: 2s
    maxSessionDuration: 1h
    warmPoolSize: 0
  - name: short
    sessionTimeout: 1h
    maxSessionDuration: 2s
    warmPoolSize: 0
]] }
  end)
  teardown(function() srv:destroy() end)

  local function create(name, ttl)
    local _, j = srv:json("POST", "/v1/code-interpreter",
                          { name = name, namespace = "default", ttl = ttl })
    return j.sessionId
  end

  local function gone(id)
    local status = srv:json("GET", "/v1/code-interpreter/sessions/" .. id)
    return status == 404
  end

  it("reaps an idle session, but not one kept busy", function()
    local idle, busy = create("brief"), create("brief")
    for _ = 1, 6 do
      os.execute("sleep 0.5")
      srv:sh(busy, "true")
    end
    assert.is_true(gone(idle))
    assert.is_false(gone(busy))
    local status = srv:exec(idle, { "true" })
    assert.equal(404, status)
    assert.equal(404, srv:delete(idle))
  end)

  it("never reaps an idle timeout under a running command", function()
    local id = create("brief")
    local status, j = srv:exec(id, { "sleep", "4" }, { timeout = "20s" })
    assert.equal(200, status)
    assert.equal(0, j.exit_code)
    assert.is_false(gone(id))
  end)

  it("reaps at maxSessionDuration even when busy", function()
    local id = create("short")
    for _ = 1, 8 do
      os.execute("sleep 0.5")
      srv:exec(id, { "true" })
    end
    assert.is_true(gone(id))
  end)

  it("honours a ttl shorter than the template's maximum", function()
    local id = create("my-interpreter", 1)
    os.execute("sleep 2.2")
    assert.is_true(gone(id))
  end)

  -- what the box holds on the host, proven present first (the control),
  -- then gone: directory, mount, loop device, cgroups, processes
  -- what the box holds on the host, proven present first (the control)
  local function held(id)
    assert.equal(0, select(3, srv:sh(id, "true")))
    local r = srv:box_of(id)
    assert.truthy(r.uid, "session uid")
    assert.truthy(r.loop, "loop device")
    assert.truthy(r.mount, "published mount")
    assert.is_true(#r.cgroups > 0, "box cgroups")
    return r
  end

  it("frees the sandbox of a reaped session: directory, mount, loop " ..
     "device, cgroups", function()
    local id = create("brief")
    local r = held(id)
    os.execute("sleep 3")
    assert.is_true(gone(id))
    -- the reaper ran: no record on disk
    local f = io.open(srv.state_dir .. "/sessions/" .. id .. ".json")
    assert.is_nil(f)
    assert.same({}, server.wait_box_gone(r, 30))
  end)

  it("frees the sandbox of a deleted session: mount, loop device, " ..
     "cgroups, processes", function()
    local id = create("brief")
    local r = held(id)
    -- a command in flight, running as the session's uid
    r.marker = server.marker()
    local bg = io.popen("curl -s -o /dev/null -X POST -H " ..
      server.q("x-agentcube-session-id: " .. id) .. " -d " ..
      server.q('{"command":["sh","-c","exec ' .. r.marker ..
               '"],"timeout":"300s"}') .. " " ..
      server.q(srv.url .. "/v1/namespaces/default/code-interpreters/" ..
               "brief/invocations/api/execute"))
    local running = false
    for _ = 1, 100 do
      running = server.capture("pgrep -f " .. server.q("^" .. r.marker ..
                                                       "$")) ~= ""
      if running then break end
      os.execute("sleep 0.1")
    end
    assert.is_true(running, "the command runs")
    assert.equal(200, (srv:delete(id)))
    assert.same({}, server.wait_box_gone(r, 30))
    bg:close()
  end)

  it("gives two sessions distinct uids on the host", function()
    local a, b = create("brief"), create("brief")
    local ra, rb = srv:box_of(a), srv:box_of(b)
    assert.truthy(ra.uid)
    assert.truthy(rb.uid)
    assert.are_not.equal(ra.uid, rb.uid)
    -- and the files each writes are owned by its own uid
    srv:sh(a, "echo a > mine")
    srv:sh(b, "echo b > mine")
    assert.equal(tostring(ra.uid) .. "\n", server.capture("stat -c %u " ..
      server.q(ra.mount .. "/workspace/mine")))
    assert.equal(tostring(rb.uid) .. "\n", server.capture("stat -c %u " ..
      server.q(rb.mount .. "/workspace/mine")))
    srv:delete(a)
    srv:delete(b)
  end)
end)

describe("process", function()
  it("shuts down cleanly on SIGTERM and logs one line per request",
     function()
    local srv = server.start{}
    local id = srv:create()
    srv:exec(id, { "true" })
    local code = srv:stop()
    assert.equal(0, code)
    local log = srv:logtext()
    assert.matches("POST /v1/code%-interpreter 200 [%d.]+ms session=" ..
                   id:gsub("%-", "%%-"), log)
    assert.matches("POST /v1/namespaces/default/code%-interpreters/" ..
                   "my%-interpreter/invocations/api/execute 200 [%d.]+ms " ..
                   "session=", log)
    assert.matches("shutting down", log, 1, true)
    srv:launch()
    assert.equal(0, select(3, srv:sh(id, "true")))
    srv:destroy()
  end)

  it("--daemon returns once the server is ready and writes serve.json",
     function()
    local dir = server.tmpdir()
    local p = io.popen(server.q(server.bin) .. " serve --daemon --no-auth " ..
                       "--listen 127.0.0.1:0 --state-dir " .. server.q(dir))
    local url = p:read("l")
    assert.is_true(p:close())
    assert.matches("^http://127%.0%.0%.1:%d+$", url)
    local info = require("cjson").decode(server.read_file(dir .. "/serve.json"))
    assert.equal(url, info.url)
    local httpc = require "httpc"
    local status = httpc.request{ url = url .. "/health" }
    assert.equal(200, status)
    os.execute("kill -TERM " .. math.tointeger(info.pid))
    for _ = 1, 50 do
      if not server.read_file(dir .. "/serve.json") then break end
      os.execute("sleep 0.1")
    end
    assert.is_nil(server.read_file(dir .. "/serve.json"))
    assert.matches("listening on", server.read_file(dir .. "/serve.log"), 1,
                   true)
    os.execute("rm -rf " .. server.q(dir))
  end)

  it("--daemon reports a start-up failure with a non-zero exit", function()
    local dir = server.tmpdir()
    local blocker = server.start{}
    local port = blocker.url:match(":(%d+)$")
    local p = io.popen(server.q(server.bin) .. " serve --daemon --no-auth " ..
                       "--listen 127.0.0.1:" .. port .. " --state-dir " ..
                       server.q(dir) .. " 2>&1")
    local out = p:read("a")
    local ok, _, code = p:close()
    assert.is_falsy(ok)
    assert.equal(1, code)
    assert.matches("cannot listen on 127.0.0.1:" .. port, out, 1, true)
    blocker:destroy()
    os.execute("rm -rf " .. server.q(dir))
  end)
end)
