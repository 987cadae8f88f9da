-- Promises of `agentcube serve` that no other spec holds it to: SIGTERM
-- with a command in flight, --quiet, the default listener, the agent
-- runtime's 404, a template's network and openFiles, the warm pool.
-- Each "cannot" has its control next to it.
local server = require "server"
local cjson = require "cjson.safe"

local function bg_exec(srv, id, argv, tpl)
  return io.popen("curl -s -X POST -H " ..
    server.q("x-agentcube-session-id: " .. id) .. " -d " ..
    server.q(cjson.encode{ command = argv, timeout = "300s" }) .. " " ..
    server.q(srv.url .. "/v1/namespaces/default/code-interpreters/" ..
             (tpl or "my-interpreter") .. "/invocations/api/execute") ..
    "; echo; echo curl=$?")
end

local function wait_for(pred, secs)
  for _ = 1, (secs or 30) * 10 do
    if pred() then return true end
    os.execute("sleep 0.1")
  end
  return false
end

describe("serve", function()
  it("on SIGTERM with a command in flight: kills the command, exits 0 " ..
     "at once, keeps the session", function()
    local srv = server.start{}
    local id = srv:create()
    local mark = server.marker()
    local running = function()
      return server.capture("pgrep -f " .. server.q("^" .. mark .. "$")) ~= ""
    end
    local bg = bg_exec(srv, id, { "sh", "-c", "exec " .. mark })
    assert.is_true(wait_for(running), "the command runs")
    local t0 = server.monotonic()
    local code = srv:stop()
    local took = server.monotonic() - t0
    bg:close()
    assert.equal(0, code)
    assert.is_true(took < 30, ("shutdown took %.1f s"):format(took))
    assert.is_true(wait_for(function() return not running() end, 10),
                   "the command is gone")
    assert.matches("shutting down", srv:logtext(), 1, true)
    -- sessions stay: the same session works after a restart
    srv:launch()
    assert.equal("back\n", (srv:sh(id, "echo back")))
    srv:destroy()
  end)

  it("--quiet writes no access log (control: the same request logs a " ..
     "line without it)", function()
    local loud = server.start{}
    local quiet = server.start{ args = { "--quiet" } }
    for _, s in ipairs{ loud, quiet } do
      assert.equal(200, (s:json("GET", "/health")))
    end
    -- the access log line is written when the request completes, which
    -- may be a moment after the client has its answer
    local deadline = server.monotonic() + 10
    while not loud:logtext():find("GET /health 200", 1, true) and
          server.monotonic() < deadline do
      os.execute("sleep 0.05")
    end
    assert.matches("GET /health 200", loud:logtext(), 1, true)
    -- quiet: still nothing once the loud one has logged (a second request
    -- answered after the first is surely complete)
    assert.equal(200, (quiet:json("GET", "/health")))
    assert.is_nil(quiet:logtext():find("GET /health", 1, true))
    loud:destroy()
    quiet:destroy()
  end)

  it("listens on 127.0.0.1:8080 by default", function()
    -- in a network namespace of its own, so no other server's 8080 counts
    local dir = server.tmpdir()
    local out = server.capture("unshare -n sh -c " .. server.q(
      "ip link set lo up; " .. server.q(server.bin) .. " serve --no-auth " ..
      "--quiet --state-dir " .. server.q(dir) .. " >" .. server.q(dir ..
      "/url") .. " 2>&1 & pid=$!; for i in $(seq 100); do " ..
      "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/health " ..
      "&& break; sleep 0.1; done; echo; cat " .. server.q(dir .. "/url") ..
      "; kill -TERM $pid; wait $pid") .. " 2>&1")
    os.execute("rm -rf " .. server.q(dir))
    assert.matches("^[0]*200\n", out)    -- 000: not up yet, then 200
    assert.matches("http://127.0.0.1:8080", out, 1, true)
  end)

  it("listens on an IPv6 address given in brackets", function()
    local srv = server.start{ listen = "[::1]:0",
                              config = "default: { warmPoolSize: 0 }\n" }
    finally(function() srv:destroy() end)
    assert.matches("^http://%[::1%]:%d+$", srv.url)
    local status, j = srv:json("GET", "/health")
    assert.equal(200, status)
    assert.equal("healthy", j.status)
  end)

  it("answers /v1/agent-runtime with 404 (control: code-interpreter 200)",
     function()
    local srv = server.start{}
    local status, j = srv:json("POST", "/v1/agent-runtime",
      { name = "my-agent", namespace = "default" })
    assert.equal(404, status)
    assert.equal("table", type(j))
    assert.equal(200, (srv:json("POST", "/v1/code-interpreter",
      { name = "my-interpreter", namespace = "default" })))
    srv:destroy()
  end)
end)

describe("templates", function()
  local srv
  setup(function()
    srv = server.start{ config = [[
templates:
  - name: net
    warmPoolSize: 0
    network: true
    openFiles: 77
  - name: closed
    warmPoolSize: 0
  - name: pooled
    warmPoolSize: 2
    openFiles: 99
]] }
  end)
  teardown(function() srv:destroy() end)

  local function create(tpl)
    local status, j = srv:json("POST", "/v1/code-interpreter",
                               { name = tpl, namespace = "default" })
    assert.equal(200, status)
    return j.sessionId
  end

  local function sh(id, tpl, script)
    local status, j = srv:json("POST", "/v1/namespaces/default/" ..
      "code-interpreters/" .. tpl .. "/invocations/api/execute",
      { command = { "sh", "-c", script } }, { session = id })
    assert.equal(200, status)
    return j.stdout, j
  end

  it("network: true has a network of its own, which does not reach the " ..
     "host's loopback; the default has none", function()
    local lst = io.popen("exec python3 -c " .. server.q(
      "import socket,time\ns=socket.socket();s.bind(('127.0.0.1',0))\n" ..
      "s.listen(8);print(s.getsockname()[1],flush=True);time.sleep(60)") ..
      " & echo $!")
    local pid = lst:read("l")
    local port = lst:read("l")
    local probe = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port ..
                  " && echo connected' 2>/dev/null; echo rc=$?"
    local host = io.popen(probe):read("a")
    local with = sh(create("net"), "net", probe)
    local without = sh(create("closed"), "closed", probe)
    local dev_with = sh(create("net"), "net", "cat /proc/net/dev")
    local dev_without = sh(create("closed"), "closed", "cat /proc/net/dev")
    os.execute("kill " .. pid)
    lst:close()
    assert.matches("connected", host, 1, true)       -- the probe works
    assert.is_nil(with:find("connected", 1, true))
    assert.is_nil(without:find("connected", 1, true))
    assert.matches("eth0:", dev_with, 1, true)
    assert.is_nil(dev_without:find("eth0:", 1, true))
  end)

  it("openFiles sets the open-file limit (control: another template's " ..
     "differs)", function()
    assert.equal("77\n", (sh(create("net"), "net", "ulimit -n")))
    assert.are_not.equal("77\n", (sh(create("closed"), "closed",
                                     "ulimit -n")))
  end)

  it("the warm pool: pooled sandboxes are fresh, get the template's " ..
     "limits, and the pool refills", function()
    local boxes = function()
      return tonumber(server.capture("ls " .. server.q(srv.state_dir ..
        "/boxes") .. " | wc -l"))
    end
    -- the pool is there before anyone asks
    assert.is_true(wait_for(function() return boxes() >= 2 end, 60),
                   "two boxes made ahead")
    local a = create("pooled")
    sh(a, "pooled", "echo dirty > /workspace/mark; echo x > /tmp/mark")
    assert.equal("99\n", (sh(a, "pooled", "ulimit -n")))
    local b = create("pooled")
    local c = create("pooled")
    -- fresh: nothing of another session, nothing left from before
    for _, id in ipairs{ b, c } do
      assert.equal("none\n", (sh(id, "pooled",
        "ls /workspace/mark /tmp/mark 2>/dev/null || echo none")))
      assert.equal("99\n", (sh(id, "pooled", "ulimit -n")))
    end
    local rb, rc = srv:box_of(b), srv:box_of(c)
    assert.are_not.equal(rb.uid, rc.uid)
    -- refill: three in use, and two made ahead again
    assert.is_true(wait_for(function() return boxes() >= 5 end, 60),
                   "the pool refills (" .. boxes() .. " boxes)")
    for _, id in ipairs{ a, b, c } do srv:delete(id) end
  end)
end)

describe("serve's command line", function()
  local function run(args, env)
    local p = io.popen((env or "") .. " " .. server.q(server.bin) ..
                       " serve " .. args .. " 2>&1; echo \"[exit $?]\"")
    local out = p:read("a")
    p:close()
    return out:gsub("%[exit (%d+)%]\n$", ""), tonumber(out:match(
      "%[exit (%d+)%]\n$"))
  end

  it("--help prints the usage and exits 0", function()
    local out, code = run("--help")
    assert.equal(0, code)
    assert.matches("^usage: agentcube serve", out)
    assert.matches("--quiet", out, 1, true)
  end)

  it("refuses an unknown option, a stray argument and a bad " ..
     "--reap-interval-ms with exit 2 and the reason", function()
    local out, code = run("--bogus")
    assert.equal(2, code)
    assert.matches("unrecognized option '--bogus'", out, 1, true)
    assert.matches("usage: agentcube serve", out, 1, true)
    out, code = run("extra")
    assert.equal(2, code)
    assert.matches("unexpected argument 'extra'", out, 1, true)
    out, code = run("--reap-interval-ms x")
    assert.equal(2, code)
    assert.matches("--reap-interval-ms needs a positive number", out, 1,
                   true)
  end)

  it("--check reports the protections of this machine, its state in " ..
     "$AGENTCUBE_HOME by default, and the configured budgets", function()
    local home = server.tmpdir("agentcube-home")
    local cfg = home .. "/check.yaml"
    local f = assert(io.open(cfg, "w"))
    f:write("maxConnections: 77\nmaxConnectionsPerAddress: 0\n")
    f:close()
    local out, code = run("--check --config " .. server.q(cfg),
                          "AGENTCUBE_HOME=" .. server.q(home))
    assert.equal(0, code)
    assert.matches("maxConnections%s+77 %(503 beyond%)", out)
    assert.matches("maxConnectionsPerAddress%s+off\n", out)
    assert.matches("seccomp filter%s+on", out)
    if server.capture("id -u") == "0\n" then     -- root with bubblewrap
      assert.matches("\n0 protections off\n$", out)
    else
      assert.matches("\n%d+ protections? off\n$", out)
    end
    assert.matches("state " .. home, out, 1, true)
    os.execute("rm -rf " .. server.q(home))
  end)

  it("a bad --config: exit 2, the file, line, column and key; nothing " ..
     "started", function()
    local state = server.tmpdir("agentcube-badcfg")
    local cfg = state .. ".yaml"
    local f = assert(io.open(cfg, "w"))
    f:write("maxSessions: 4\ntemplates:\n  - name: t\n    warmPool: 2\n")
    f:close()
    local out, code = run("--no-auth --listen 127.0.0.1:0 --state-dir " ..
                          server.q(state) .. " --config " .. server.q(cfg))
    assert.equal(2, code)
    assert.equal("agentcube serve: " .. cfg .. ":4:5: unknown template " ..
                 "key 'warmPool'\n", out)
    out, code = run("--no-auth --listen 127.0.0.1:0 --state-dir " ..
                    server.q(state) .. " --config " ..
                    server.q(state .. "/missing.yaml"))
    assert.equal(2, code)
    assert.matches("cannot open " .. state .. "/missing.yaml", out, 1, true)
    -- nothing was started: no lock, no token, no serve.json
    assert.is_nil(server.read_file(state .. "/serve.json"))
    assert.is_nil(server.read_file(state .. "/token"))
    os.execute("rm -rf " .. server.q(state) .. " " .. server.q(cfg))
  end)

  it("--build-images with a template whose tree is missing: exit 1, the " ..
     "template and the path; nothing listens", function()
    local state = server.tmpdir("agentcube-build")
    local cfg = state .. ".yaml"
    local f = assert(io.open(cfg, "w"))
    f:write("templates:\n  - name: t\n    image: { rootfs: " .. state ..
            "/no-tree }\n")
    f:close()
    local out, code = run("--no-auth --listen 127.0.0.1:0 --state-dir " ..
                          server.q(state) .. " --config " .. server.q(cfg) ..
                          " --build-images")
    os.execute("rm -rf " .. server.q(state) .. " " .. server.q(cfg))
    assert.equal(1, code, out)
    assert.matches("building image rootfs%-%x+ of template 't'", out)
    assert.matches("agentcube serve: image rootfs " .. state ..
                   "/no-tree: No such file or directory", out, 1, true)
    assert.is_nil(out:find("listening on", 1, true))
  end)

  it("a token file that holds no token: exit 1 naming it, not a new " ..
     "token in its place", function()
    local state = server.tmpdir("agentcube-badtoken")
    local f = assert(io.open(state .. "/token", "w"))
    f:write("short\n")
    f:close()
    os.execute("chmod 600 " .. server.q(state .. "/token"))
    local out, code = run("--listen 127.0.0.1:0 --state-dir " ..
                          server.q(state))
    local kept = server.read_file(state .. "/token")
    os.execute("rm -rf " .. server.q(state))
    assert.equal(1, code, out)
    assert.equal("agentcube serve: token: " .. state .. "/token does not " ..
                 "hold a token\n", out)
    assert.equal("short\n", kept)
  end)

  it("a bad --listen: exit 1 and what is wrong with it; a port in use " ..
     "is named", function()
    local state = server.tmpdir("agentcube-listen")
    local function listen(spec)
      return run("--no-auth --state-dir " .. server.q(state) ..
                 " --listen " .. server.q(spec))
    end
    for spec, why in pairs{
      ["nocolon"] = "expected ADDR:PORT",
      ["[::1]8080"] = "expected [ADDR]:PORT",
      -- getaddrinfo would keep the low 16 bits: 99999 listened on 34463
      ["127.0.0.1:99999"] = "the port must be a number from 0 to 65535",
      ["999.1.1.1:80"] = "Name or service not known",
    } do
      local out, code = listen(spec)
      assert.equal(1, code, spec)
      assert.equal("agentcube serve: --listen " .. spec .. ": " .. why ..
                   "\n", out)
    end
    -- a port another server holds
    local srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    local port = srv.url:match(":(%d+)$")
    local out, code = listen("127.0.0.1:" .. port)
    assert.equal(0, srv:stop())   -- it made no session: nothing to tear down
    os.execute("rm -rf " .. server.q(srv.state_dir) .. " " ..
               server.q(srv.state_dir .. ".yaml") .. " " ..
               server.q(srv.state_dir .. ".log"))
    assert.equal(1, code)
    assert.matches("cannot listen on 127.0.0.1:" .. port ..
                   ": Address already in use", out, 1, true)
    assert.is_nil(server.read_file(state .. "/serve.json"))
    os.execute("rm -rf " .. server.q(state))
  end)

  it("a state directory that cannot be made: exit 1 and where", function()
    local out, code = run("--no-auth --listen 127.0.0.1:0 " ..
                          "--state-dir /proc/agentcube-nope")
    assert.equal(1, code)
    assert.matches("cannot create /proc/agentcube-nope", out, 1, true)
  end)
end)
