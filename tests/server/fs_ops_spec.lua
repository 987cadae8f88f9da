-- File operations of the local runtime (docs/extensions.md): remove, mkdir,
-- stat, rename, every error status of the contract, and the confinement of
-- uploads: no ../, no host paths, symlinks planted by sandboxed code and
-- /proc magic links resolve inside the session, the session's uid applies.
local server = require "server"
local DP = server.DP

describe("file operations", function()
  local srv, id
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  local function op(name, body)
    return srv:json("POST", DP .. "api/fs/" .. name, body, { session = id })
  end
  local function stat(path)
    return srv:json("GET", DP .. "api/fs/stat?path=" .. path, nil,
                    { session = id })
  end

  it("mkdir with parents, stat, and the FileInfo answers", function()
    local status, j = op("mkdir", { path = "m/n/o", parents = true })
    assert.equal(200, status)
    assert.equal("m/n/o", j.path)
    assert.equal("drwxr-xr-x", j.mode)
    status, j = stat("m/n")
    assert.equal(200, status)
    assert.same("dir", j.type)
    assert.is_true(j.is_dir)
    assert.equal("n", j.name)
    assert.equal("m/n", j.path)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", j.modified)
    srv:write(id, "m/f.txt", "hello")
    status, j = stat("/workspace/m/f.txt")
    assert.equal(200, status)
    assert.same({ "file", 5, false, "-rw-r--r--" },
                { j.type, j.size, j.is_dir, j.mode })
    -- an existing directory is fine with parents
    status = op("mkdir", { path = "m/n", parents = true })
    assert.equal(200, status)
    -- made as the session: the sandbox sees its own uid on them
    local out = srv:sh(id, "stat -c %u m/n/o; id -u")
    local a, b = out:match("^(%d+)\n(%d+)\n$")
    assert.equal(b, a)
  end)

  it("mkdir: mode, 409 and 404", function()
    local status, j = op("mkdir", { path = "md", mode = "0700" })
    assert.equal(200, status)
    assert.equal("drwx------", j.mode)
    status, j = op("mkdir", { path = "md" })
    assert.equal(409, status)
    assert.equal(409, j.code)
    assert.matches("already exists", j.error)
    srv:write(id, "plain", "x")
    status = op("mkdir", { path = "plain", parents = true })
    assert.equal(409, status)
    status, j = op("mkdir", { path = "nope/deeper" })
    assert.equal(404, status)
    assert.matches("parents", j.error)
    status = op("mkdir", { path = "md2", mode = "0999" })
    assert.equal(400, status)
  end)

  it("stat does not follow symlinks; 404 when missing", function()
    srv:sh(id, "ln -sfn /etc/hostname link")
    local status, j = stat("link")
    assert.equal(200, status)
    assert.equal("symlink", j.type)
    assert.equal("Lrwxrwxrwx", j.mode)
    status, j = stat("missing")
    assert.equal(404, status)
    assert.same({ error = "File not found", code = 404 }, j)
  end)

  it("remove: files, empty and non-empty directories", function()
    srv:sh(id, "mkdir -p r/a/b && touch r/a/b/f r/g && mkdir e")
    local status, j = op("remove", { path = "e" })
    assert.equal(200, status)
    assert.equal(1, j.removed)
    status, j = op("remove", { path = "r" })
    assert.equal(409, status)
    assert.matches("not empty", j.error)
    status, j = op("remove", { path = "r", recursive = true })
    assert.equal(200, status)
    assert.equal(5, j.removed)   -- r, a, b, f, g
    status = op("remove", { path = "r" })
    assert.equal(404, status)
    assert.equal("", (srv:sh(id, "ls -A | grep -x r || true")))
  end)

  it("rename: 409 without overwrite, replace with it", function()
    srv:write(id, "from.txt", "new")
    srv:write(id, "to.txt", "old")
    local status, j = op("rename", { from = "from.txt", to = "to.txt" })
    assert.equal(409, status)
    assert.matches("overwrite", j.error)
    assert.equal("old", (srv:sh(id, "cat to.txt")))
    status, j = op("rename", { from = "from.txt", to = "/tmp/to.txt",
                               overwrite = false })
    assert.equal(200, status)
    assert.equal("/tmp/to.txt", j.path)
    status, j = op("rename", { from = "/tmp/to.txt", to = "to.txt",
                               overwrite = true })
    assert.equal(200, status)
    assert.equal("to.txt", j.path)
    assert.equal(3, j.size)
    assert.equal("new", (srv:sh(id, "cat to.txt; test -e from.txt || :")))
    status = op("rename", { from = "gone.txt", to = "x.txt" })
    assert.equal(404, status)
    -- a directory into itself
    assert.equal(200, (op("mkdir", { path = "mv/in", parents = true })))
    status, j = op("rename", { from = "mv", to = "mv/in/mv" })
    assert.equal(400, status)
    assert.equal("cannot move 'mv' into itself", j.error)
    assert.equal(200, (stat("mv/in")))
  end)

  it("answers 400 for bad requests", function()
    local cases = {
      { "remove", {} }, { "remove", { path = "" } },
      { "remove", { path = "x", recursive = "yes" } },
      { "mkdir", { path = 3 } }, { "mkdir", { path = "x", parents = 1 } },
      { "rename", { from = "a" } }, { "rename", { to = "b" } },
      { "rename", { from = "a", to = "b", overwrite = "no" } },
      { "remove", "not json" }, { "mkdir", "[1]" },
    }
    for _, c in ipairs(cases) do
      local status, j = op(c[1], c[2])
      assert.equal(400, status, c[1] .. " " .. tostring(c[2]))
      assert.equal(400, j.code)
    end
    -- the reason, for each kind of mistake
    for _, c in ipairs{
      { "rename", "[1]", "request body must be a JSON object" },
      { "remove", nil, "a JSON body is required" },
      { "mkdir", { path = "x", mode = "0999" },
        "mode must be an octal string such as \"0755\"" },
      { "mkdir", { path = "x", mode = 493 },
        "mode must be an octal string such as \"0755\"" },
      { "mkdir", { path = "x", parents = "yes" }, "parents must be a boolean" },
      { "remove", { path = "x", recursive = 1 },
        "recursive must be a boolean" },
      { "rename", { from = "a", to = "b", overwrite = 0 },
        "overwrite must be a boolean" },
      { "rename", { from = "a" },
        "from and to are required and must be non-empty strings" },
    } do
      local status, j = op(c[1], c[2])
      assert.equal(400, status, c[3])
      assert.equal(c[3], j.error)
    end
    assert.equal(404, (stat("x")))   -- nothing was made
    local status, j = srv:json("GET", DP .. "api/fs/stat", nil,
                               { session = id })
    assert.equal(400, status)
    assert.equal("Missing 'path' query parameter", j.error)
    -- wrong method, unknown session
    status = srv:json("GET", DP .. "api/fs/remove", nil, { session = id })
    assert.equal(404, status)
    status = srv:json("POST", DP .. "api/fs/remove", { path = "x" },
                      { session = "00000000-0000-0000-0000-000000000000" })
    assert.equal(404, status)
  end)

  it("refuses paths outside the session's trees", function()
    for _, p in ipairs({ "../x", "/etc/passwd", "/etc", "/", "/proc/1",
                         "a/../../x" }) do
      local status, j = op("remove", { path = p, recursive = true })
      assert.equal(400, status, p)
      assert.matches("access denied", j.error)
      status = op("mkdir", { path = p .. "/d", parents = true })
      assert.equal(400, status, p)
      status = op("rename", { from = "to.txt", to = p })
      assert.equal(400, status, p)
    end
    local status = stat("/etc/passwd")
    assert.equal(400, status)
    -- the trees themselves cannot go
    for _, p in ipairs({ "/workspace", ".", "/tmp", "/home/sandbox" }) do
      local s, j = op("remove", { path = p, recursive = true })
      assert.equal(400, s, p)
      assert.matches("cannot be removed", j.error)
      s = op("rename", { from = p, to = "elsewhere" })
      assert.equal(400, s, p)
    end
    -- positive control: the host file is intact and the tree is still
    -- stat-able
    assert.truthy(server.read_file("/etc/passwd"):find("root:"))
    assert.equal(200, (stat("/workspace")))
  end)

  it("symlinks planted by sandboxed code resolve inside the session",
     function()
    local host = server.tmpdir()
    local f = io.open(host .. "/victim", "w")
    f:write("host data")
    f:close()
    os.execute("mkdir " .. server.q(host .. "/dir"))
    srv:sh(id, ("ln -sfn %s hostdir; ln -sfn /etc hostetc; " ..
                "ln -sfn /proc/self/root%s magic; ln -sfn ../../.. up")
               :format(host, host))
    -- through a link to a host path: resolved in the box (not found)
    local status = op("remove", { path = "hostdir/victim" })
    assert.equal(404, status)
    status = stat("hostdir/victim")
    assert.equal(404, status)
    status = op("rename", { from = "hostdir/victim", to = "stolen" })
    assert.equal(404, status)
    status = op("mkdir", { path = "hostdir/dir/evil", parents = true })
    assert.is_true(status == 400 or status == 404 or status == 200)
    status = op("rename", { from = "to.txt", to = "hostdir/dir/planted" })
    assert.is_true(status == 404 or status == 400, tostring(status))
    -- "up" climbs no higher than the box root
    status = op("remove", { path = "up/etc/passwd" })
    assert.equal(404, status)
    -- magic links are refused
    local s, j = stat("magic/victim")
    assert.is_true(s == 400 or s == 404, tostring(s))
    if s == 400 then assert.matches("magic link", j.error) end
    status = op("remove", { path = "magic/victim" })
    assert.is_true(status == 400 or status == 404)
    -- removing the links removes the links, never their targets
    for _, l in ipairs({ "hostdir", "hostetc", "magic", "up" }) do
      local st, jj = op("remove", { path = l, recursive = true })
      assert.equal(200, st, l)
      assert.equal(1, jj.removed)
    end
    -- a recursive remove does not descend through a planted link
    srv:sh(id, ("mkdir -p tree && ln -sfn %s tree/l"):format(host))
    status = op("remove", { path = "tree", recursive = true })
    assert.equal(200, status)
    -- positive control: the host files are all still there, untouched
    assert.equal("host data", server.read_file(host .. "/victim"))
    local p = io.popen("ls -A " .. server.q(host .. "/dir"))
    assert.equal(nil, p:read("l"))
    p:close()
    assert.truthy(server.read_file("/etc/passwd"):find("root:"))
    os.execute("rm -rf " .. server.q(host))
  end)

  it("acts as the session: permissions of sandboxed files apply", function()
    srv:sh(id, "mkdir -p ro && touch ro/f && chmod 500 ro")
    local status, j = op("remove", { path = "ro/f" })
    assert.equal(400, status)
    assert.matches("permission denied", j.error)
    status = op("rename", { from = "ro/f", to = "out" })
    assert.equal(400, status)
    -- positive control: once the session allows it, it works
    srv:sh(id, "chmod 700 ro")
    status = op("remove", { path = "ro", recursive = true })
    assert.equal(200, status)
  end)
end)
