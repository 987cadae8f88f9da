-- Kernel resources Linux counts per uid (inotify instances and watches)
-- are per session, because each session has a host uid of its own: one
-- session that takes all of its share leaves another session's and the
-- host's alone. Those counted once for the whole host are refused inside
-- the sandbox: native AIO contexts (fs.aio-max-nr) and keys (keyrings).
-- Each "cannot" has its control on the host or in the other session.
local server = require "server"
local cjson = require "cjson"
local q = server.q

local function host(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

describe("per-uid kernel resources", function()
  local srv, a, b, c, probe

  setup(function()
    srv = server.start{}
    a, b, c = srv:create(), srv:create(), srv:create()
    probe = server.read_file("tests/security/kres.py")
    for _, id in ipairs{ a, b, c } do
      assert(srv:write(id, "kres.py", probe) == 200)
    end
  end)
  teardown(function()
    srv:destroy()
  end)

  -- Runs kres.py in session id in the background (an execute from curl)
  -- and waits until it holds what it took; returns its first line.
  local function hold(id, args)
    local body = cjson.encode{ command = { "sh", "-c",
      "READY=/workspace/ready python3 kres.py " .. args } }
    os.execute("curl -s -o /dev/null -H " .. q("x-agentcube-session-id: " ..
               id) .. " -H 'Content-Type: application/json' -d " ..
               q(body) .. " " .. q(srv.url .. server.DP .. "api/execute") ..
               " &")
    for _ = 1, 600 do
      local out = srv:sh(id, "cat ready 2>/dev/null; true")
      if out ~= "" then
        srv:sh(id, "rm -f ready")
        return (out:gsub("\n$", ""))
      end
      os.execute("sleep 0.2")
    end
    error("the holder never got ready")
  end

  it("inotify instances: one session's are its own", function()
    local limit = tonumber(host("cat /proc/sys/fs/inotify/max_user_instances"))
    local held = hold(a, "instances 15")
    assert.are.equal(limit .. " EMFILE", held)
    -- while a holds all of its instances, it gets no more ...
    assert.are.equal("0 EMFILE\n", (srv:sh(a, "python3 kres.py instances 0")))
    -- ... and b, and the host, still get theirs (controls)
    assert.are.equal(limit .. " EMFILE\n",
                     (srv:sh(b, "python3 kres.py instances 0")))
    local h = host("python3 tests/security/kres.py instances 0")
    assert.is_true(tonumber(h:match("^(%d+)")) > 0, h)
  end)

  it("inotify watches: one session's are its own", function()
    local limit = tonumber(host("cat /proc/sys/fs/inotify/max_user_watches"))
    -- what watching /usr takes (b, before a takes anything) ...
    local usr = srv:sh(b, "python3 kres.py watches 0 /usr")
    local n_usr = tonumber(usr:match("^(%d+)"))
    -- ... and the files of its own c needs on top to reach the limit
    local files = limit - n_usr + 5000
    if n_usr < limit and files > 50000 then
      pending("max_user_watches is " .. limit .. ": more files than a " ..
              "session's disk holds")
      return
    end
    if n_usr < limit then
      srv:sh(c, "mkdir -p w && cd w && seq " .. files .. " | xargs touch",
             "300s")
    end
    local held = hold(c, "watches 30 /usr /workspace/w")
    assert.are.equal(limit .. " ENOSPC", held)
    assert.are.equal("0 ENOSPC\n",
                     (srv:sh(c, "python3 kres.py watches 0 /usr/bin")))
    -- controls: b gets what it got before, the host gets watches too
    assert.are.equal(usr, (srv:sh(b, "python3 kres.py watches 0 /usr")))
    local h = host("python3 tests/security/kres.py watches 0 /usr/bin")
    assert.is_true(tonumber(h:match("^(%d+)")) > 100, h)
  end)

  it("native AIO contexts, counted for the whole host, are refused",
     function()
    assert.are.equal("0 ENOSYS\n", (srv:sh(a, "python3 kres.py aio 0")))
    -- control: the same probe takes contexts on the host
    local h = host("python3 tests/security/kres.py aio 0")
    assert.is_true(tonumber(h:match("^(%d+)")) > 0, h)
  end)

  it("keyrings are refused", function()
    assert.are.equal("EPERM\n", (srv:sh(a, "python3 kres.py keyctl")))
    -- control: the same call answers on the host
    assert.matches("^id %-?%d+\n$", host("python3 tests/security/kres.py " ..
                                         "keyctl"))
  end)
end)
