-- The SDK's run_code writes its code to script_<ms>.py|.sh (JSON write)
-- and executes [python3|bash, that name]; the local runtime removes the
-- file once the command has ended, when the pair is exactly that, and
-- leaves every other file alone.
local server = require "server"
local DP = server.DP

describe("run_code's script", function()
  local srv, id, n
  setup(function()
    srv = server.start{}
    id = srv:create()
    n = 1733500000000
  end)
  teardown(function() srv:destroy() end)

  local function name(ext)
    n = n + 1
    return ("script_%d.%s"):format(n, ext)
  end

  local function exists(f)
    return srv:sh(id, "test -e " .. f .. " && echo y || echo n") == "y\n"
  end

  local function exec(argv, headers)
    return srv:json("POST", DP .. "api/execute",
                    { command = argv, timeout = "60s" },
                    { session = id, headers = headers })
  end

  it("is removed after the SDK's execute, its output answered", function()
    local f = name("py")
    assert.equal(200, (srv:write(id, f, "print(6 * 7)")))
    local status, j = exec({ "python3", f })
    assert.equal(200, status)
    assert.equal("42\n", j.stdout)
    assert.is_false(exists(f))
  end)

  it("is removed for bash, after a failing run, and when streamed",
     function()
    local f = name("sh")
    assert.equal(200, (srv:write(id, f, "echo hi; exit 3")))
    local status, j = exec({ "bash", f })
    assert.equal(200, status)
    assert.equal(3, j.exit_code)
    assert.is_false(exists(f))
    f = name("py")
    assert.equal(200, (srv:write(id, f, "print(1)")))
    local st, text = exec({ "python3", f },
                          { Accept = "application/x-ndjson" })
    assert.equal(200, st)
    assert.matches('"type":%s*"exit"', text)
    assert.is_false(exists(f))
  end)

  it("exists while the script runs", function()
    local f = name("py")
    srv:write(id, f, "import os, sys; print(os.path.exists(sys.argv[0]))")
    local _, j = exec({ "python3", f })
    assert.equal("True\n", j.stdout)
  end)

  it("is kept when anything differs from the SDK's pair", function()
    -- another command line
    local a = name("py")
    srv:write(id, a, "print(1)")
    exec({ "python3", "-B", a })
    -- the interpreter of the other extension
    local b = name("py")
    srv:write(id, b, "echo 1")
    exec({ "bash", b })
    -- a name not of the SDK's shape
    local c = "script_1.py"
    srv:write(id, c, "print(1)")
    exec({ "python3", c })
    -- in a directory
    srv:sh(id, "mkdir -p sub")
    local d = "sub/" .. name("py")
    srv:write(id, d, "print(1)")
    exec({ "python3", d })
    -- the script changed itself while it ran
    local e = name("py")
    srv:write(id, e, "open(__file__, 'a').write('# more\\n')")
    exec({ "python3", e })
    -- written by the multipart upload, not the SDK's JSON write
    local f = name("py")
    local src = server.tmpdir() .. "/s.py"
    local h = assert(io.open(src, "w"))
    h:write("print(1)")
    h:close()
    srv:request{ method = "POST", path = DP .. "api/files", session = id,
                 form = { { name = "path", value = f },
                          { name = "file", file = src } } }
    exec({ "python3", f })
    os.remove(src)
    for _, kept in ipairs{ a, b, c, d, e, f } do
      assert.is_true(exists(kept), kept .. " was removed")
    end
    -- positive control: the same session still removes the SDK's pair
    local g = name("py")
    srv:write(id, g, "print(1)")
    exec({ "python3", g })
    assert.is_false(exists(g))
  end)

  it("is kept when another script was written since", function()
    local first, second = name("py"), name("py")
    srv:write(id, first, "print(1)")
    srv:write(id, second, "print(2)")
    exec({ "python3", first })
    assert.is_true(exists(first))
    exec({ "python3", second })
    assert.is_false(exists(second))
  end)
end)
