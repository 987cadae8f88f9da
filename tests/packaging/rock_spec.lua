-- The Lua ecosystem's front door: `luarocks make` with Debian's luarocks
-- builds the module from a clean copy of the tree against the system's
-- libraries and installs it into a private tree, where a plain lua5.4
-- finds it, checks a workflow and drives a real session.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "../lua/?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"

local q = help.q
local src, tree, srv

local function sh(cmd)
  return help.run(cmd .. " 2>&1")
end

setup(function()
  src = server.tmpdir("agentcube-rock-src")
  tree = server.tmpdir("agentcube-rock-tree")
  -- a clean copy: what git tracks, no build output
  local out, code = sh("cd " .. q(help.root) .. " && git ls-files -z | " ..
                       "tar --null -T - -cf - | tar -xf - -C " .. q(src))
  assert(code == 0, out)
  out, code = sh("cd " .. q(src) .. " && luarocks --lua-version 5.4 " ..
                 "--tree " .. q(tree) .. " make agentcube-scm-1.rockspec")
  assert(code == 0, "luarocks make failed:\n" .. out)
  srv = server.start{}
end)

teardown(function()
  if srv then srv:destroy() end
  os.execute("rm -rf " .. q(src) .. " " .. q(tree))
end)

-- Runs Lua code in a plain lua5.4 that sees only the rock tree.
local function lua(code)
  local path = tree .. "/share/lua/5.4/?.lua;" .. tree ..
               "/share/lua/5.4/?/init.lua;;"
  local cpath = tree .. "/lib/lua/5.4/?.so;;"
  return sh("env LUA_PATH=" .. q(path) .. " LUA_CPATH=" .. q(cpath) ..
            " WORKLOAD_MANAGER_URL=" .. q(srv.url) .. " ROUTER_URL=" ..
            q(srv.url) .. " lua5.4 -e " .. q(code))
end

describe("luarocks make", function()
  it("installs the module and its C part into the tree", function()
    local out, code = lua([[
      print(package.searchpath("agentcube.core", package.cpath))
      print(package.searchpath("agentcube.workflow", package.path))]])
    assert.equal(0, code, out)
    assert.equal(tree .. "/lib/lua/5.4/agentcube/core.so\n" .. tree ..
                 "/share/lua/5.4/agentcube/workflow.lua\n", out)
  end)

  it("gives a working client and workflow engine", function()
    local out, code = lua([[
      local workflow = require "agentcube.workflow"
      assert(workflow.check("]] .. help.root ..
        [[/workflows/quickstart.yaml"))
      local agentcube = require "agentcube"
      do
        local ci <close> = agentcube.CodeInterpreterClient()
        io.write(ci:run_code("python", "print(6 * 7)"))
      end]])
    assert.equal(0, code, out)
    assert.equal("42\n", out)
    assert.same({}, help.session_ids(srv))
  end)
end)
