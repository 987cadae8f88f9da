-- What a sandbox must not see of the host: /proc entries masked like runc
-- masks them (and more), nothing in mountinfo that names the server's
-- paths or pid; and a session answers only under its own namespace/name.
local server = require "server"

local MASKED_FILES = {
  "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
  "/proc/sysrq-trigger", "/proc/cmdline", "/proc/config.gz", "/proc/locks",
  "/proc/key-users", "/proc/kallsyms", "/proc/latency_stats",
  "/proc/timer_stats",
}
local MASKED_DIRS = {
  "/proc/acpi", "/proc/asound", "/proc/scsi", "/proc/bus", "/proc/fs",
  "/proc/irq", "/proc/driver",
}

local function host_has(path)
  return os.execute("test -e " .. server.q(path))
end

describe("sandbox masking", function()
  local srv, id

  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  it("masked /proc files read nothing; ordinary ones do not", function()
    local checked = 0
    for _, f in ipairs(MASKED_FILES) do
      if host_has(f) then
        -- empty, or not even openable (a nodev bind of /dev/null)
        local out, _, code = srv:sh(id, "head -c 64 " .. f ..
                                    " 2>/dev/null | wc -c")
        assert.are.equal(0, code, f)
        assert.are.equal("0", out:match("^(%d+)"), f .. " shows data")
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 5, "too few masked files exist on this host")
    -- positive control: the same reads see real data where nothing masks
    local out = srv:sh(id, "head -c 64 /proc/meminfo | wc -c; " ..
                           "head -c 64 /proc/self/status | wc -c")
    assert.are.same({ "64", "64" }, { out:match("^(%d+)\n(%d+)") })
    -- and on the host /proc/cmdline is not empty
    local f = io.open("/proc/cmdline")
    assert.is_true(#f:read("a") > 0)
    f:close()
  end)

  it("masked /proc directories are empty and refuse writes", function()
    local checked = 0
    for _, d in ipairs(MASKED_DIRS) do
      if host_has(d) then
        local out = srv:sh(id, "ls -A " .. d .. " | wc -l; touch " .. d ..
                               "/x 2>&1 || echo refused")
        assert.matches("^0\n", out, 1, false)
        assert.matches("refused", out)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 2)
    -- positive control: an unmasked directory lists entries
    local out = srv:sh(id, "ls -A /proc/self | wc -l")
    assert.is_true(tonumber(out:match("%d+")) > 5)
  end)

  it("/proc/sys cannot be written", function()
    local out = srv:sh(id, "echo 1 > /proc/sys/kernel/sysrq 2>&1 || " ..
                           "echo refused; cat /proc/sys/kernel/ostype")
    assert.matches("refused", out)
    assert.matches("Linux", out)   -- positive control: still readable
  end)

  it("mountinfo names neither the server's paths nor its pid", function()
    local out = srv:sh(id, "cat /proc/self/mountinfo /proc/self/mounts")
    assert.is_nil(out:find("/run/agentcube", 1, true), out)
    assert.is_nil(out:find(srv.state_dir, 1, true), out)
    assert.is_nil(out:find("etc." .. srv.pid, 1, true), out)
    assert.is_nil(out:find("%f[%d]" .. srv.pid .. "%f[%D]"), out)
    -- positive control: the mounts themselves are listed
    assert.matches(" /workspace ", out)
    assert.matches(" /etc ", out)
  end)
end)

describe("data-plane URLs", function()
  local srv, id

  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  local function exec_under(ns, name)
    return srv:json("POST", "/v1/namespaces/" .. ns .. "/code-interpreters/" ..
                    name .. "/invocations/api/execute",
                    { command = { "true" } }, { session = id })
  end

  it("a session answers only under its own namespace and name", function()
    local status, j = exec_under("default", "my-interpreter")
    assert.are.equal(200, status)
    assert.are.equal(0, j.exit_code)
    for _, pair in ipairs{ { "other", "my-interpreter" },
                           { "default", "other-interpreter" },
                           { "kube-system", "x" } } do
      status, j = exec_under(pair[1], pair[2])
      assert.are.equal(404, status, pair[1] .. "/" .. pair[2])
      assert.matches("not found", j.error)
    end
    status = srv:request{ path = "/v1/namespaces/other/code-interpreters/" ..
                          "my-interpreter/invocations/api/files?path=.",
                          session = id }
    assert.are.equal(404, status)
  end)
end)
