-- Session networks (docs/sandbox.md §7): a session with `network:` has a
-- network namespace of its own whose only way out is its pasta, held by
-- the host's nftables rules to the template's policy. Every destination
-- is made here: listeners on the host's loopback and on the server's own
-- port, and a test network namespace joined to the host by two veth
-- pairs, one with a private address (10.x) and one with an address of the
-- benchmark range 198.18.0.0/15, the stand-in for the internet. Each
-- "cannot" has its control: the same probe that fails from a session
-- succeeds from the host, or from a session whose policy allows it.
local server = require "server"

local function capture(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local function run(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == true
end

-- Why this machine cannot run the spec, or nil.
local function unavailable()
  if capture("id -u"):match("^(%d+)") ~= "0" then
    return "needs root (session uids, namespaces, nftables)"
  end
  for _, tool in ipairs{ "bwrap", "pasta", "ip", "nft", "python3" } do
    if not run("command -v " .. tool) then
      return tool .. " is not installed"
    end
  end
  return nil
end

local SKIP = unavailable()
local TAG = ("%04x"):format(math.random(0, 0xffff))
local NS = "acnet" .. TAG
local PRIV_NET = ("10.%d.%d"):format(200 + math.random(0, 50),
                                     math.random(0, 255))
local PUB_NET = ("198.%d.%d"):format(18 + math.random(0, 1),
                                     math.random(1, 254))
local PRIV, PUB = PRIV_NET .. ".2", PUB_NET .. ".2"
local PRIV_HOST, PUB_HOST = PRIV_NET .. ".1", PUB_NET .. ".1"

-- A listener that greets every client with its token, in the test
-- namespace (ns) or on the host: returns the port and the pid.
local listeners = {}
local function listen(addr, ns)
  local script = "import socket,sys\n" ..
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n" ..
    "s.bind((sys.argv[1],0));s.listen(64)\n" ..
    "print(s.getsockname()[1],flush=True)\n" ..
    "while True:\n" ..
    "  c,_=s.accept()\n" ..
    "  try: c.sendall(b'hello-" .. TAG .. "\\n')\n" ..
    "  except OSError: pass\n" ..
    "  c.close()\n"
  local prefix = ns and ("ip netns exec " .. ns .. " ") or ""
  local p = io.popen(prefix .. "python3 -c " .. server.q(script) .. " " ..
                     server.q(addr) .. " & echo $!")
  local pid = p:read("l")
  local port = p:read("l")
  listeners[#listeners + 1] = { pid = pid, p = p }
  return assert(tonumber(port), "listener did not start"), pid
end

-- The probe: connect and read the greeting, 5 s at most.
local function probe_cmd(host, port)
  return ("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d && head -c 40 <&3' " ..
          "2>&1; true"):format(host, port)
end

local GREETING = "hello-" .. TAG

describe("session networks", function()
  local srv, ids = nil, {}
  local lo_port, any_port, priv_ok, priv_other, pub_port

  local function session(tpl)
    if ids[tpl] then return ids[tpl] end
    local id = srv:create{ name = tpl, namespace = "default" }
    ids[tpl] = id
    return id
  end

  local function from(tpl, host, port)
    local out = srv:sh(session(tpl), probe_cmd(host, port), "30s")
    return out
  end

  local function from_host(host, port)
    return capture(probe_cmd(host, port))
  end

  setup(function()
    if SKIP then return end
    -- the test namespace and its two links; teardown removes them even
    -- when a check fails
    local cmds = {
      "ip netns add " .. NS,
      "ip link add acp" .. TAG .. " type veth peer name acq" .. TAG,
      "ip link set acq" .. TAG .. " netns " .. NS,
      "ip addr add " .. PRIV_HOST .. "/24 dev acp" .. TAG,
      "ip link set acp" .. TAG .. " up",
      "ip -n " .. NS .. " addr add " .. PRIV .. "/24 dev acq" .. TAG,
      "ip -n " .. NS .. " link set acq" .. TAG .. " up",
      "ip link add acu" .. TAG .. " type veth peer name acv" .. TAG,
      "ip link set acv" .. TAG .. " netns " .. NS,
      "ip addr add " .. PUB_HOST .. "/24 dev acu" .. TAG,
      "ip link set acu" .. TAG .. " up",
      "ip -n " .. NS .. " addr add " .. PUB .. "/24 dev acv" .. TAG,
      "ip -n " .. NS .. " link set acv" .. TAG .. " up",
      "ip -n " .. NS .. " link set lo up",
    }
    for _, c in ipairs(cmds) do
      assert(run(c), "test network setup failed: " .. c)
    end
    lo_port = listen("127.0.0.1")
    any_port = listen("0.0.0.0")
    priv_ok = listen("0.0.0.0", NS)
    priv_other = listen("0.0.0.0", NS)
    pub_port = priv_ok        -- the same listener, through the other link
    srv = server.start{ config = ([[
templates:
  - name: net
    warmPoolSize: 0
    network: true
  - name: allow
    warmPoolSize: 0
    network:
      allow:
        - %s.0/24:%d
  - name: private-only
    warmPoolSize: 0
    network:
      public: false
      dns: false
      allow: [ "%s" ]
  - name: closed
    warmPoolSize: 0
  - name: unresolvable
    warmPoolSize: 0
    network: { allow: [ "no-such-host.invalid:80" ] }
]]):format(PRIV_NET, priv_ok, PRIV) }
  end)

  teardown(function()
    if srv then srv:destroy() end
    for _, l in ipairs(listeners) do
      os.execute("kill " .. l.pid .. " 2>/dev/null")
      l.p:close()
    end
    if not SKIP then
      os.execute("ip netns del " .. NS .. " 2>/dev/null; ip link del acp" ..
                 TAG .. " 2>/dev/null; ip link del acu" .. TAG ..
                 " 2>/dev/null")
    end
  end)

  local function need()
    if SKIP then pending(SKIP) return false end
    return true
  end

  it("reaches a public address (198.18/15); a session without network " ..
     "reaches nothing", function()
    if not need() then return end
    assert.matches(GREETING, from_host(PUB, pub_port), 1, true)
    assert.matches(GREETING, from("net", PUB, pub_port), 1, true)
    local closed = from("closed", PUB, pub_port)
    assert.is_nil(closed:find(GREETING, 1, true), closed)
    -- and nothing but its own loopback
    local out = srv:sh(session("closed"), "cat /proc/net/dev")
    assert.is_nil(out:find("eth0", 1, true), out)
  end)

  it("cannot reach the host's loopback (control: the host can)",
     function()
    if not need() then return end
    assert.matches(GREETING, from_host("127.0.0.1", lo_port), 1, true)
    local out = from("net", "127.0.0.1", lo_port)
    assert.is_nil(out:find(GREETING, 1, true), out)
    -- nor through the gateway pasta would map to it by default
    local route = srv:sh(session("net"), "cat /proc/net/route")
    local hex = route:match("\n%S+%s+00000000%s+(%x+)")
    local gw = hex and ("%d.%d.%d.%d"):format(tonumber(hex:sub(7, 8), 16),
      tonumber(hex:sub(5, 6), 16), tonumber(hex:sub(3, 4), 16),
      tonumber(hex:sub(1, 2), 16))
    assert.is_not_nil(gw, "the namespace has a default route")
    out = from("net", gw, lo_port)
    assert.is_nil(out:find(GREETING, 1, true), out)
  end)

  it("cannot reach the server's own API (control: the host can)",
     function()
    if not need() then return end
    local port = tonumber(srv.url:match(":(%d+)$"))
    local get = "timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d && " ..
                "printf \"GET /health HTTP/1.0\\r\\n\\r\\n\" >&3 && " ..
                "head -c 12 <&3' 2>&1; true"
    assert.matches("HTTP/1.%d 200",
                   capture(get:format("127.0.0.1", port)))
    local out = srv:sh(session("net"), get:format("127.0.0.1", port))
    assert.is_nil(out:find("HTTP/1", 1, true), out)
  end)

  it("cannot reach a host address outside the private ranges " ..
     "(control: the address behind it can be reached)", function()
    if not need() then return end
    -- PUB_HOST is the host's own end of the public-like link: a service
    -- on 0.0.0.0 answers there
    assert.matches(GREETING, from_host(PUB_HOST, any_port), 1, true)
    local out = from("net", PUB_HOST, any_port)
    assert.is_nil(out:find(GREETING, 1, true), out)
    assert.matches(GREETING, from("net", PUB, pub_port), 1, true)
  end)

  it("cannot reach a private address unless the template allows it; an " ..
     "unlisted port stays closed", function()
    if not need() then return end
    assert.matches(GREETING, from_host(PRIV, priv_ok), 1, true)
    assert.matches(GREETING, from_host(PRIV, priv_other), 1, true)
    local out = from("net", PRIV, priv_ok)
    assert.is_nil(out:find(GREETING, 1, true), out)
    assert.matches(GREETING, from("allow", PRIV, priv_ok), 1, true)
    out = from("allow", PRIV, priv_other)
    assert.is_nil(out:find(GREETING, 1, true), out)
    -- the allowlist adds to the default: public addresses still answer
    assert.matches(GREETING, from("allow", PUB, pub_port), 1, true)
  end)

  it("public: false leaves only the allowlist", function()
    if not need() then return end
    assert.matches(GREETING, from("private-only", PRIV, priv_other), 1,
                   true)
    local out = from("private-only", PUB, pub_port)
    assert.is_nil(out:find(GREETING, 1, true), out)
    assert.equal("", (srv:sh(session("private-only"),
                             "cat /etc/resolv.conf")))
  end)

  it("resolves names through the namespace's resolver (control: the " ..
     "host resolves the same name)", function()
    if not need() then return end
    assert.matches("nameserver 169.254.1.1",
                   (srv:sh(session("net"), "cat /etc/resolv.conf")))
    local name = "deb.debian.org"
    if not capture("getent hosts " .. name):match("%d") then
      pending("the host itself cannot resolve " .. name)
      return
    end
    local out = srv:sh(session("net"), "getent hosts " .. name .. "; true")
    assert.matches("%d+%.%d+%.%d+%.%d+", out)
  end)

  it("an allowed host name that does not resolve refuses the session " ..
     "with 503 and the name, leaving nothing behind", function()
    if not need() then return end
    local function boxes()
      return capture("ls " .. server.q(srv.state_dir .. "/boxes") ..
                     " | wc -l")
    end
    local before = boxes()
    local status, j = srv:json("POST", "/v1/code-interpreter",
      { name = "unresolvable", namespace = "default" })
    assert.equal(503, status)
    assert.matches("the allowed host 'no-such-host.invalid' does not " ..
                   "resolve", j.message, 1, true)
    assert.equal(before, boxes())
  end)

  it("cannot change its own network (control: the interface is there)",
     function()
    if not need() then return end
    -- a netlink socket is what `ip` needs; whether the filter lets it be
    -- opened or not, a change must fail
    local out, _, code = srv:sh(session("net"),
      "cat /proc/net/dev; ip addr add 10.9.9.9/32 dev lo; echo rc=$?; " ..
      "ip link set eth0 down; echo rc=$?; ip route del default; echo rc=$?")
    assert.equal(0, code)
    assert.matches("eth0:", out, 1, true)
    assert.is_nil(out:find("rc=0", 1, true), out)
    assert.matches(GREETING, from("net", PUB, pub_port), 1, true)
  end)

  it("its pasta runs as the session's uid and dies with the session",
     function()
    if not need() then return end
    local id = srv:create{ name = "net", namespace = "default" }
    local box = srv:box_of(id)
    local function pastas()
      return capture("pgrep -u " .. box.uid .. " -f '^pasta '; true")
    end
    assert.matches("%d", pastas())
    assert.equal(200, (srv:delete(id)))
    -- the box is torn down right after the answer
    for _ = 1, 300 do
      if pastas() == "" then break end
      os.execute("sleep 0.1")
    end
    assert.equal("", pastas())
  end)

  it("a pasta that dies takes the session's network, nothing else " ..
     "(control: the network worked before)", function()
    if not need() then return end
    local id = srv:create{ name = "net", namespace = "default" }
    local uid = srv:box_of(id).uid
    assert.matches(GREETING, srv:sh(id, probe_cmd(PUB, pub_port)), 1, true)
    local pid = capture("pgrep -u " .. uid .. " -f '^pasta '"):match("%d+")
    assert.is_not_nil(pid)
    os.execute("kill -KILL " .. pid)
    local out, _, code = srv:sh(id, probe_cmd(PUB, pub_port) .. "; echo alive")
    assert.equal(0, code)
    assert.matches("alive", out, 1, true)
    assert.is_nil(out:find(GREETING, 1, true), out)
    assert.equal(200, (srv:json("GET", "/health")))
    assert.equal(200, (srv:delete(id)))
    -- another session's network is untouched
    assert.matches(GREETING, from("net", PUB, pub_port), 1, true)
  end)

  it("after kill -9 of the server, its restart ends the old pasta and " ..
     "gives the session a new one", function()
    if not need() then return end
    local s3 = server.start{ config = [[
templates:
  - name: net
    network: true
    warmPoolSize: 0
]] }
    local id = s3:create{ name = "net", namespace = "default" }
    local uid = s3:box_of(id).uid
    local old = capture("pgrep -u " .. uid .. " -f '^pasta '"):match("%d+")
    assert.is_not_nil(old)
    s3:kill9()
    s3:launch()
    local gone = false
    for _ = 1, 300 do
      if not run("kill -0 " .. old) then gone = true break end
      os.execute("sleep 0.1")
    end
    assert.is_true(gone, "the old pasta " .. old .. " is gone")
    assert.matches(GREETING, s3:sh(id, probe_cmd(PUB, pub_port)), 1, true)
    s3:destroy()
  end)

  it("the server's exit ends every pasta and removes its nftables table",
     function()
    if not need() then return end
    local s2 = server.start{ config = [[
templates:
  - name: net
    network: true
    warmPoolSize: 1
]] }
    local id = s2:create{ name = "net", namespace = "default" }
    local uid = s2:box_of(id).uid
    local table = capture("nft list tables"):match(
      "table inet (agentcube_%x+_%d+_" .. s2.pid .. ")\n")
    assert.is_not_nil(table)
    assert.matches(table, capture("nft list tables"), 1, true)
    assert.matches("%d", capture("pgrep -u " .. uid .. " -f '^pasta '; true"))
    s2:stop()
    assert.equal("", capture("pgrep -u " .. uid .. " -f '^pasta '; true"))
    assert.is_nil(capture("nft list tables"):find(table, 1, true))
    s2:destroy()
  end)
end)

describe("network policy configuration", function()
  local function check(yaml)
    local dir = server.tmpdir()
    local f = assert(io.open(dir .. ".yaml", "w"))
    f:write(yaml)
    f:close()
    local out = capture("{ " .. server.q(server.bin) .. " serve --check " ..
      "--state-dir " .. server.q(dir) .. " --config " ..
      server.q(dir .. ".yaml") .. "; echo \"[exit $?]\"; }")
    os.execute("rm -rf " .. server.q(dir) .. " " .. server.q(dir .. ".yaml"))
    return out, tonumber(out:match("%[exit (%d+)%]"))
  end

  it("--check prints each template's policy", function()
    local out, code = check([[
templates:
  - name: web
    network:
      allow: [ 10.1.0.0/16, "192.168.1.5:8000-8100", "[fd00::1]:443",
               db.internal:5432 ]
  - name: none
]])
    assert.equal(0, code, out)
    assert.matches("web%s+public yes, dns yes, host and private addresses " ..
      "refused except 10.1.0.0/16 192.168.1.5/32:8000%-8100 " ..
      "fd00::1/128:443 db.internal:5432", out)
    assert.matches("none%s+no network", out)
  end)

  it("refuses a bad entry with its place and the reason (exit 2)",
     function()
    local cases = {
      { "10.0.0.1/8", "bits set past its prefix length" },
      { "10.0.0.0/33", "must be ADDRESS" },
      { "10.0.0.0/8:0", "bad port" },
      { "10.0.0.0/8:90-80", "bad port" },
      { "10.0.0.0/8:70000", "bad port" },
      { "300.1.2.3", "must be ADDRESS" },
      { "bad_name:80", "must be ADDRESS" },
      { "[fd00::1", "must be ADDRESS" },
    }
    for _, c in ipairs(cases) do
      local out, code = check(("templates:\n  - name: t\n    network:\n" ..
        "      allow: [ %q ]\n"):format(c[1]))
      assert.equal(2, code, c[1] .. ": " .. out)
      assert.matches(":4:16: network.allow entry '" .. c[1]:gsub("%p", "%%%0")
                     .. "' ", out)
      assert.matches(c[2], out, 1, true)
    end
    local out, code = check("templates:\n  - name: t\n    network:\n" ..
                            "      allwo: []\n")
    assert.equal(2, code)
    assert.matches("unknown key 'allwo' in network", out, 1, true)
  end)
end)
