-- agentcube(1): `make install` installs a man page that renders cleanly
-- and says everything --help and run --help say, because it is built
-- from them.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "../lua/?.lua;" .. package.path
local help = require "luahelp"
local server = require "server"

local q = help.q
local prefix

setup(function()
  prefix = server.tmpdir("agentcube-man")
  local build = help.build:sub(#help.root + 2)
  local out, code = help.run("make -C " .. q(help.root) ..
                             " --no-print-directory install-man PREFIX=" ..
                             q(prefix) .. " BUILD=" .. q(build) .. " 2>&1")
  assert(code == 0, "make install-man failed:\n" .. out)
end)

teardown(function()
  os.execute("rm -rf " .. q(prefix))
end)

local function render()
  return help.run("MANWIDTH=200 man --warnings -l " ..
                  q(prefix .. "/share/man/man1/agentcube.1") ..
                  " 2>&1 | col -b")
end

describe("agentcube(1)", function()
  it("is installed and renders without warnings", function()
    local out, code = render()
    assert.equal(0, code, out)
    assert.matches("^AGENTCUBE%(1%)", out)
    assert.is_nil(out:find("warning", 1, true), out)
    for _, section in ipairs{ "NAME", "SYNOPSIS", "EXIT STATUS",
                              "ENVIRONMENT", "FILES" } do
      assert.matches("\n" .. section .. "\n", out, 1, true)
    end
  end)

  it("says every line --help, run --help and serve --help say", function()
    local page = render():gsub("[ \t]+", " ")
    for _, args in ipairs{ "--help", "run --help", "serve --help" } do
      local text = help.run(q(help.bin) .. " " .. args .. " 2>&1")
      for line in text:gmatch("[^\n]+") do
        local l = line:gsub("[ \t]+", " "):gsub("^ ", "")
        assert.matches(l, page, 1, true)
      end
    end
  end)
end)
