-- `make install PREFIX=DIR`: the layout, a plain lua5.4 requiring the
-- installed module, the installed module finding the installed server, and
-- the C library through pkg-config.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"

local prefix, home

local function lua_env()
  return {
    LUA_PATH = prefix .. "/share/lua/5.4/?.lua;" .. prefix ..
               "/share/lua/5.4/?/init.lua;;",
    LUA_CPATH = prefix .. "/lib/lua/5.4/?.so;;",
  }
end

setup(function()
  prefix = server.tmpdir("agentcube-prefix")
  local build = help.build:sub(#help.root + 2)   -- relative, as make uses it
  local out, code = help.run("make -C " .. help.q(help.root) ..
                             " --no-print-directory install PREFIX=" ..
                             help.q(prefix) .. " BUILD=" .. help.q(build) ..
                             " 2>&1")
  assert(code == 0, "make install failed:\n" .. out)
end)

teardown(function()
  os.execute("rm -rf " .. help.q(prefix))
end)

describe("make install", function()
  it("lays out the module, the library, the headers and the server",
     function()
    for _, f in ipairs{ "lib/lua/5.4/agentcube/core.so",
                        "share/lua/5.4/agentcube/init.lua",
                        "include/agentcube.h", "include/agentcube/ac_error.h",
                        "include/agentcube/errors.def", "lib/libagentcube.a",
                        "lib/libagentcube.so", "lib/pkgconfig/agentcube.pc",
                        "bin/agentcube" } do
      assert.is_true(help.exists(prefix .. "/" .. f), f)
    end
  end)

  it("lets a plain lua5.4 require 'agentcube'", function()
    local out, code = help.lua([[
      local agentcube = require "agentcube"
      print(package.searchpath("agentcube.core", package.cpath))
      print(package.searchpath("agentcube", package.path))
      print(agentcube.VERSION, type(agentcube.CodeInterpreterClient.new))
    ]], lua_env(), { prefix = "env -u LUA_PATH -u LUA_CPATH" })
    assert.equal(0, code, out)
    assert.matches(prefix:gsub("%p", "%%%0") ..
                   "/lib/lua/5.4/agentcube/core.so\n", out)
    assert.matches("/share/lua/5.4/agentcube/init.lua\n", out)
    assert.matches("0.1.0\tfunction", out)
  end)

  it("starts the installed agentcube for the local runtime", function()
    home = server.tmpdir("agentcube-home")
    local env = lua_env()
    env.AGENTCUBE_HOME = home
    env.PATH = "/usr/bin:/bin"               -- no agentcube on PATH
    local out, code = help.lua([[
      local agentcube = require "agentcube"
      local ci <close> = agentcube.CodeInterpreterClient()
      io.write(ci:execute_command("echo installed"))
    ]], env, { prefix = "env -u LUA_PATH -u LUA_CPATH -u AGENTCUBE_BIN " ..
                        "-u WORKLOAD_MANAGER_URL -u ROUTER_URL" })
    local st = help.read_file(home .. "/serve.json") or ""
    local pid = st:match('"pid":%s*(%d+)')
    local exe = pid and help.run("readlink /proc/" .. pid .. "/exe") or ""
    help.stop_local(home)
    assert.equal(0, code, out)
    assert.equal("installed\n", out)
    assert.equal(prefix .. "/bin/agentcube\n", exe)
  end)

  it("builds C programs through pkg-config", function()
    local dir = server.tmpdir("agentcube-pc")
    finally(function() os.execute("rm -rf " .. help.q(dir)) end)
    help.write_file(dir .. "/t.c", [[
#include <agentcube.h>
#include <stdio.h>
int main(void) {
  char **argv;
  size_t n;
  struct ac_error e;
  if (ac_shlex_split("ls 'a b'", &argv, &n, &e) != AC_OK)
    return 1;
  printf("%zu %s %s\n", n, argv[1], ac_codename(AC_ETIMEOUT));
  ac_argv_free(argv);
  return 0;
}
]])
    local pc = "PKG_CONFIG_PATH=" .. help.q(prefix .. "/lib/pkgconfig")
    local out, code = help.run("cd " .. help.q(dir) .. " && " .. pc ..
      " cc -std=c11 -Wall -Werror t.c $(" .. pc ..
      " pkg-config --cflags --libs agentcube) -o t 2>&1 && " ..
      "LD_LIBRARY_PATH=" .. help.q(prefix .. "/lib") .. " ./t 2>&1")
    assert.equal(0, code, out)
    assert.equal("2 a b ETIMEOUT\n", out)
    out, code = help.run("cd " .. help.q(dir) .. " && " .. pc ..
      " cc -std=c11 $(" .. pc .. " pkg-config --cflags agentcube) t.c " ..
      help.q(prefix .. "/lib/libagentcube.a") ..
      -- libagentcube.a with the shared system libraries it requires
      " $(pkg-config --libs $(" .. pc .. " pkg-config " ..
      "--print-requires-private agentcube)) -lpthread -lm " ..
      -- an instrumented build (make coverage) needs its runtime too
      (os.getenv("AGENTCUBE_TEST_LDFLAGS") or "") .. " -o ts 2>&1 && " ..
      "./ts")
    assert.equal(0, code, out)
    assert.equal("2 a b ETIMEOUT\n", out)
  end)
end)
