-- The state directory is checked before the server trusts anything in it:
-- a directory another user created or can write, or symlinks planted in
-- it, are refused with a message naming the path and what is wrong.
local server = require "server"
local q = server.q

-- Runs `agentcube serve` on dir and returns its exit status and stderr;
-- a server that starts is stopped at once (and counts as status 0).
local function try_serve(dir, extra)
  local log = os.tmpname()
  local cmd = "timeout -s TERM 20 " .. q(server.bin) ..
              " serve --listen 127.0.0.1:0 --no-auth --state-dir " .. q(dir) ..
              " " .. (extra or "") .. " >/dev/null 2>" .. q(log) ..
              " & pid=$!; sleep 1.5; kill -TERM $pid 2>/dev/null; wait $pid"
  local _, _, code = os.execute(cmd)
  local text = server.read_file(log) or ""
  os.remove(log)
  return code, text
end

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local function mode_of(path)
  local p = io.popen("stat -c %a " .. q(path))
  local m = p:read("l")
  p:close()
  return m
end

describe("the state directory", function()
  local base

  before_each(function()
    base = server.tmpdir("agentcube-statedir")
  end)
  after_each(function()
    os.execute("rm -rf " .. q(base))
  end)

  it("is created 0700 when absent, and a server starts there", function()
    local dir = base .. "/new/state"
    local code, log = try_serve(dir)
    assert.are.equal(0, code, log)
    assert.are.equal("700", mode_of(dir))
    assert.truthy(server.read_file(dir .. "/serve.lock"))
  end)

  it("is refused when another user owns it", function()
    local dir = base .. "/state"
    sh("mkdir -m 700 " .. q(dir) .. " && chown 65534:65534 " .. q(dir))
    local code, log = try_serve(dir)
    assert.are_not.equal(0, code)
    assert.matches(dir:gsub("%p", "%%%0") .. " is owned by another user",
                   log)
  end)

  it("is refused when others can write it", function()
    local dir = base .. "/state"
    sh("mkdir " .. q(dir) .. " && chmod 777 " .. q(dir))
    local code, log = try_serve(dir)
    assert.are_not.equal(0, code)
    assert.matches("writable by other users", log)
    assert.matches("mode 0777", log)
  end)

  it("is refused when a directory above it is writable by others", function()
    sh("mkdir -m 777 " .. q(base .. "/open"))
    sh("chmod 777 " .. q(base .. "/open"))
    local dir = base .. "/open/state"
    local code, log = try_serve(dir)
    assert.are_not.equal(0, code)
    assert.matches("is inside " .. (base .. "/open"):gsub("%p", "%%%0") ..
                   ", which is writable by other users", log)
    -- a sticky directory (like /tmp) is fine: positive control
    sh("chmod 1777 " .. q(base .. "/open"))
    code, log = try_serve(dir)
    assert.are.equal(0, code, log)
  end)

  it("is refused when it is a symlink", function()
    sh("mkdir -m 700 " .. q(base .. "/real") .. " && ln -s real " ..
       q(base .. "/link"))
    local code, log = try_serve(base .. "/link")
    assert.are_not.equal(0, code)
    assert.matches("is a symbolic link", log)
    code, log = try_serve(base .. "/link/")
    assert.are_not.equal(0, code)
    assert.matches("is a symbolic link", log)
  end)

  it("never follows a planted symlink among its entries", function()
    local dir = base .. "/state"
    local victim = base .. "/victim"
    sh("mkdir -m 700 " .. q(dir))
    for _, name in ipairs{ "token", "serve.json", "serve.lock", "serve.log",
                           "sessions", "boxes" } do
      sh("printf keep > " .. q(victim) .. " && ln -sfn " .. q(victim) ..
         " " .. q(dir .. "/" .. name))
      local code, log = try_serve(dir, "--daemon")
      assert.are_not.equal(0, code, name)
      assert.matches(name:gsub("%p", "%%%0") .. " is a symbolic link", log)
      assert.are.equal("keep", server.read_file(victim), name)
      os.remove(dir .. "/" .. name)
    end
  end)

  it("refuses a token another user planted", function()
    local dir = base .. "/state"
    sh("mkdir -m 700 " .. q(dir))
    sh("printf '%064d' 0 > " .. q(dir .. "/token") .. " && chmod 600 " ..
       q(dir .. "/token") .. " && chown 65534 " .. q(dir .. "/token"))
    local log = os.tmpname()
    local _, _, code = os.execute("timeout 20 " .. q(server.bin) ..
      " serve --listen 127.0.0.1:0 --state-dir " .. q(dir) ..
      " >/dev/null 2>" .. q(log))
    local text = server.read_file(log) or ""
    os.remove(log)
    assert.are_not.equal(0, code)
    assert.matches("token is owned by uid 65534", text)
    -- positive control: the same token, ours, is accepted
    sh("chown 0 " .. q(dir .. "/token"))
    local srv = server.start{ state_dir = dir, auth = true }
    assert.are.equal(("0"):rep(64), srv.token)
    local status = srv:json("GET", "/v1/code-interpreter/sessions")
    srv:stop()
    assert.are_not.equal(401, status)
  end)
end)
