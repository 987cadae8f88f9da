-- What a remote path names, the same in every file operation: every
-- operation x every kind of path, once through the Lua binding (with
-- explicit URLs, as against a cluster) and once as raw requests to the
-- server, against one real `agentcube serve`. Each (operation, kind) has
-- one outcome in both: it acts on the expected absolute file, or it is
-- refused (the client: EACCESS naming the path and the session, before
-- anything is sent; the server: 400 "access denied").
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"
local b64 = require "b64"
local agentcube = require "agentcube"

local srv, ci, tmp, dp

-- abs: the file the path names; nil: refused. url: how the path appears
-- after "api/files/" in a raw download (default: the path as is).
local kinds = {
  { name = "relative", path = "k/f.txt", abs = "/workspace/k/f.txt" },
  { name = "/workspace/...", path = "/workspace/k/f.txt",
    abs = "/workspace/k/f.txt" },
  { name = "'//' before /workspace", path = "//workspace/k/f.txt",
    abs = "/workspace/k/f.txt" },
  { name = "'..' that stays inside", path = "k/x/../f.txt",
    abs = "/workspace/k/f.txt" },
  -- the SDK's URL form "api/files/tmp/k/f.txt" means /tmp/k/f.txt to the
  -- local runtime (the SDK drops the '/' of "/tmp/..."): the client sends
  -- the absolute path instead once it knows the runtime is local
  { name = "relative, named like a tree", path = "tmp/k/f.txt",
    abs = "/workspace/tmp/k/f.txt", url = "/workspace/tmp/k/f.txt" },
  { name = "/tmp/...", path = "/tmp/k/f.txt", abs = "/tmp/k/f.txt" },
  { name = "/etc/...", path = "/etc/k/f.txt" },
  { name = "'//' before /etc", path = "//etc/k/f.txt" },
  { name = "/opt/...", path = "/opt/k/f.txt" },
  -- curl would resolve a literal ".." in a URL before sending it
  { name = "'..' out of a relative path", path = "../k/f.txt",
    url = "%2E%2E/k/f.txt" },
  { name = "'..' out of /workspace", path = "/workspace/../etc/k/f.txt" },
  { name = "'..' deep", path = "k/../../../etc/k/f.txt",
    url = "k/%2E%2E/%2E%2E/%2E%2E/etc/k/f.txt" },
}

local function dirname(p) return p:match("^(.*)/[^/]*$") end

local function sh(script)
  return ci:execute_command({ "sh", "-c", script })
end

-- A fresh file at kind.abs holding content (nothing for a refused kind).
local function prepare(kind, content)
  sh("rm -rf /workspace/k /workspace/tmp /tmp/k")
  if kind.abs then
    sh("mkdir -p " .. dirname(kind.abs) .. " && printf %s " ..
       help.q(content) .. " > " .. kind.abs)
  end
end

local function exists(abs)
  return sh("test -e " .. abs .. " && echo y || echo n") == "y\n"
end

local function cat(abs)
  return sh("cat " .. abs .. " 2>/dev/null || true")
end

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

local function local_file(data)
  local p = tmp .. "/up.txt"
  help.write_file(p, data)
  return p
end

-- Each operation: lua(kind) and raw(kind) do it, check(kind, result)
-- says whether it had its effect on kind.abs; named(kind) is the path its
-- errors name (default: kind.path).
local ops = {
  { name = "write_file",
    lua = function(k) ci:write_file("written", k.path) end,
    raw = function(k)
      return srv:json("POST", dp .. "api/files",
                      { path = k.path, content = b64.encode("written"),
                        mode = "0644" }, { session = ci.session_id })
    end,
    check = function(k) assert.equal("written", cat(k.abs)) end },
  { name = "upload_file",
    lua = function(k) ci:upload_file(local_file("uploaded"), k.path) end,
    raw = function(k)
      return srv:request{ method = "POST", path = dp .. "api/files",
        session = ci.session_id,
        form = { { name = "path", value = k.path },
                 { name = "file", file = local_file("uploaded") } } }
    end,
    check = function(k) assert.equal("uploaded", cat(k.abs)) end },
  { name = "read_file",
    lua = function(k) return ci:read_file(k.path) end,
    raw = function(k)
      return srv:request{ path = dp .. "api/files/" .. (k.url or k.path),
                          session = ci.session_id }
    end,
    check = function(_, got) assert.equal("before", got) end },
  { name = "download_file",
    lua = function(k)
      os.remove(tmp .. "/down.txt")
      ci:download_file(k.path, tmp .. "/down.txt")
      return help.read_file(tmp .. "/down.txt")
    end,
    check = function(_, got) assert.equal("before", got) end },
  { name = "list_files",
    lua = function(k)
      local names = {}
      for _, f in ipairs(ci:list_files(dirname(k.path))) do
        names[#names + 1] = f.name
      end
      return table.concat(names, ",")
    end,
    raw = function(k)
      local status, j = srv:json("GET", dp .. "api/files?path=" ..
                                 enc(dirname(k.path)), nil,
                                 { session = ci.session_id })
      if status ~= 200 then return status, j end
      local names = {}
      for _, f in ipairs(j.files) do names[#names + 1] = f.name end
      return status, table.concat(names, ",")
    end,
    check = function(_, got) assert.equal("f.txt", got) end,
    named = function(k) return dirname(k.path) end },
  { name = "stat",
    lua = function(k) return ci:stat(k.path).size end,
    raw = function(k)
      local status, j = srv:json("GET", dp .. "api/fs/stat?path=" ..
                                 enc(k.path), nil, { session = ci.session_id })
      return status, status == 200 and j.size or j
    end,
    check = function(_, got) assert.equal(#"before", got) end },
  { name = "remove",
    lua = function(k) ci:remove(k.path) end,
    raw = function(k)
      return srv:json("POST", dp .. "api/fs/remove", { path = k.path },
                      { session = ci.session_id })
    end,
    check = function(k) assert.is_false(exists(k.abs)) end },
  { name = "mkdir",
    lua = function(k) ci:mkdir(k.path .. ".d") end,
    raw = function(k)
      return srv:json("POST", dp .. "api/fs/mkdir", { path = k.path .. ".d" },
                      { session = ci.session_id })
    end,
    check = function(k)
      assert.equal("y\n", sh("test -d " .. k.abs .. ".d && echo y"))
    end },
  { name = "rename (from)",
    lua = function(k) ci:rename(k.path, "k2.txt") end,
    raw = function(k)
      return srv:json("POST", dp .. "api/fs/rename",
                      { from = k.path, to = "k2.txt", overwrite = true },
                      { session = ci.session_id })
    end,
    check = function(k)
      assert.is_false(exists(k.abs))
      assert.equal("before", cat("/workspace/k2.txt"))
      sh("rm -f /workspace/k2.txt")
    end },
  { name = "rename (to)",
    lua = function(k)
      sh("printf moved > /workspace/src.txt")
      ci:rename("src.txt", k.path, { overwrite = true })
    end,
    raw = function(k)
      sh("printf moved > /workspace/src.txt")
      return srv:json("POST", dp .. "api/fs/rename",
                      { from = "src.txt", to = k.path, overwrite = true },
                      { session = ci.session_id })
    end,
    check = function(k) assert.equal("moved", cat(k.abs)) end },
}

setup(function()
  srv = server.start{}
  tmp = server.tmpdir("agentcube-paths")
  ci = agentcube.CodeInterpreterClient(help.opts(srv.url))
  dp = server.DP
end)

teardown(function()
  if ci then ci:stop() end
  srv:destroy()
  os.execute("rm -rf " .. help.q(tmp))
end)

for _, op in ipairs(ops) do
  describe(op.name, function()
    for _, k in ipairs(kinds) do
      it((k.abs and "acts on %s for a path %s" or "refuses a path %s%s")
           :format(k.abs or "", k.name), function()
        -- through the binding
        prepare(k, "before")
        local ok, got = pcall(op.lua, k)
        if k.abs then
          assert.is_true(ok, tostring(got))
          op.check(k, got)
        else
          assert.is_false(ok, "no error for " .. k.path)
          assert.is_true(agentcube.is_error(got), tostring(got))
          assert.equal("EACCESS", got.code)
          assert.equal("PermissionError", got.kind)
          local named = op.named and op.named(k) or k.path
          assert.truthy(got.message:find(named, 1, true), got.message)
          assert.truthy(got.message:find(ci.session_id, 1, true),
                        got.message)
        end
        -- the same, straight to the server
        if op.raw then
          prepare(k, "before")
          local status, body = op.raw(k)
          if k.abs then
            assert.equal(200, status, tostring(body))
            op.check(k, body)
          else
            assert.equal(400, status)
            local text = type(body) == "table" and body.error or body
            assert.matches("access denied", text)
          end
        end
      end)
    end
  end)
end

describe("the SDK's URL form", function()
  it("reads a first component 'tmp' as /tmp, as it always did", function()
    -- what the official SDK sends for download_file("/tmp/k/f.txt")
    sh("rm -rf /workspace/tmp /tmp/k; mkdir -p /tmp/k /workspace/tmp/k;" ..
       " printf root > /tmp/k/f.txt; printf ws > /workspace/tmp/k/f.txt")
    local status, body = srv:request{ path = dp .. "api/files/tmp/k/f.txt",
                                      session = ci.session_id }
    assert.equal(200, status)
    assert.equal("root", body)
    -- and the client's relative "tmp/k/f.txt" is the workspace's
    assert.equal("ws", ci:read_file("tmp/k/f.txt"))
    assert.equal("root", ci:read_file("/tmp/k/f.txt"))
  end)
end)
