-- AGENTCUBE_LUA_COVERAGE: the host counts the lines it runs of its own
-- Lua modules (make coverage), in the format tests/coverage/report reads;
-- unset, it counts nothing. lua5.4 gets the same counter as a C module.
local server = require "server"

local BIN, q = server.bin, server.q
local ROOT = (function()
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local p = io.popen("cd " .. q(here .. "/../..") .. " && pwd")
  local r = p:read("l")
  p:close()
  return r
end)()
local WORDS = "agentcube/workflow/words.lua"

-- Runs the host on a Lua chunk with env (a shell prefix); returns the exit
-- status.
local function host(env, chunk)
  local ok, _, code = os.execute(env .. " " .. q(BIN) .. " -e " .. q(chunk) ..
                                 " >/dev/null 2>&1")
  return ok and 0 or code
end

local function ls(dir)
  local p = io.popen("ls -A " .. q(dir))
  local names = {}
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  return names
end

-- { source = { [line] = true } } of every .hits file in dir
local function hits_in(dir)
  local t = {}
  for _, name in ipairs(ls(dir)) do
    for line in io.lines(dir .. "/" .. name) do
      local src, n = line:match("^(.-)\t(%d+)$")
      assert.is_truthy(src, "a line of " .. name .. ": " .. line)
      t[src] = t[src] or {}
      t[src][tonumber(n)] = true
    end
  end
  return t
end

-- The number of the line of file that holds text (plain).
local function line_of(file, text)
  local n = 0
  for l in io.lines(ROOT .. "/lua/" .. file) do
    n = n + 1
    if l:find(text, 1, true) then return n end
  end
  error(text .. " not in " .. file)
end

-- The lines of file luac lists instructions for.
local function code_lines(file)
  local p = io.popen("luac5.4 -p -l -l " .. q(ROOT .. "/lua/" .. file))
  local t = {}
  for l in p:lines() do
    local n = l:match("^%s*%d+%s+%[(%d+)%]")
    if n then t[tonumber(n)] = true end
  end
  p:close()
  return t
end

describe("AGENTCUBE_LUA_COVERAGE", function()
  local dir
  before_each(function() dir = server.tmpdir("agentcube-luacov") end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("writes the lines the host ran of its modules, and only those", function()
    local split = "require('agentcube.workflow.words').split(\"a 'b c'\")"
    assert.equal(0, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), split))
    local files = ls(dir)
    assert.equal(1, #files)
    assert.matches("^%d+%.[%w]+%.hits$", files[1])
    local hits = hits_in(dir)
    local words = hits[WORDS]
    assert.is_table(words)
    -- the single-quote branch ran, the double-quote one did not
    assert.is_true(words[line_of(WORDS, [[local j = s:find("'", i + 1]])])
    local dq = line_of(WORDS, [[if d == '"' then break end]])
    assert.is_nil(words[dq])
    -- every line counted holds code
    local code = code_lines(WORDS)
    for n in pairs(words) do assert.is_true(code[n], "line " .. n) end
    -- the module the host loads first is there too; the chunk of -e is not
    assert.is_table(hits["agentcube/init.lua"])
    for src in pairs(hits) do assert.matches("^agentcube/.*%.lua$", src) end

    -- another run that takes the other branch adds its own file
    local split2 = "require('agentcube.workflow.words').split('x \"y\"')"
    assert.equal(0, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), split2))
    assert.equal(2, #ls(dir))
    assert.is_true(hits_in(dir)[WORDS][dq])
  end)

  it("counts the development copies of AGENTCUBE_LUA_DIR by path", function()
    assert.equal(0, host("AGENTCUBE_LUA_DIR=" .. q(ROOT .. "/lua") ..
                         " AGENTCUBE_LUA_COVERAGE=" .. q(dir),
                         "require('agentcube.workflow.words').split('a')"))
    local hits = hits_in(dir)
    assert.is_table(hits[ROOT .. "/lua/" .. WORDS])
    assert.is_nil(hits[WORDS])
  end)

  it("writes its counts on os.exit too", function()
    assert.equal(3, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), "os.exit(3)"))
    assert.is_table(hits_in(dir)["agentcube/init.lua"])
  end)

  it("keeps the Lua code's own hooks working, and counts under them",
     function()
    -- what the engine does around an expression or a lua step: set a
    -- count hook, run, restore what debug.gethook gave
    local chunk = [[
      local fired = 0
      local function mine() fired = fired + 1 end
      local h0 = debug.gethook()
      assert(h0 == nil, "the counter shows through debug.gethook")
      debug.sethook(mine, "", 100)
      local h, m, c = debug.gethook()
      assert(h == mine and m == "" and c == 100, "gethook: " .. tostring(h))
      require("agentcube.workflow.words").split("x \"y\"")
      debug.sethook(h0)
      assert(fired > 0, "the count hook never fired")
      local lines = 0
      debug.sethook(function(ev, l)
        assert(ev == "line" and math.type(l) == "integer")
        lines = lines + 1
      end, "l")
      local _ = 1
      debug.sethook()
      assert(lines >= 1, "a line hook saw no line")
      assert(debug.gethook() == nil)
      local co = coroutine.create(function()
        require("agentcube.workflow.words").split("'z'")
      end)
      assert(coroutine.resume(co))
    ]]
    assert.equal(0, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), chunk))
    local words = hits_in(dir)[WORDS]
    -- the double-quote branch ran only under the chunk's count hook
    assert.is_true(words[line_of(WORDS, [[if d == '"' then break end]])])
    -- the single-quote branch ran only in a coroutine
    assert.is_true(words[line_of(WORDS, [[local j = s:find("'", i + 1]])])
  end)

  it("counts lua5.4's lines through the module LUA_INIT_5_4 loads",
     function()
    local so = BIN:match("^(.*)/[^/]*$") .. "/tests/lua/lua_lines.so"
    local init = ("local f = package.loadlib(%q, 'luaopen_lua_lines') " ..
                  "if f then f() end"):format(so)
    local cmd = "LUA_INIT_5_4=" .. q(init) .. " AGENTCUBE_LUA_COVERAGE=" ..
                q(dir) .. " LUA_PATH=" .. q(ROOT .. "/lua/?.lua;;") ..
                " lua5.4 -e " .. q([[
      local n = 0
      debug.sethook(function() n = n + 1 end, "", 10)
      require("agentcube.workflow.words").split("x \"y\"")
      debug.sethook()
      assert(n > 0, "the chunk's count hook never fired")
      os.exit(0)]]) .. " >/dev/null 2>&1"
    assert.is_true(os.execute(cmd))
    local words = hits_in(dir)[ROOT .. "/lua/" .. WORDS]
    assert.is_table(words)
    assert.is_true(words[line_of(WORDS, [[if d == '"' then break end]])])
  end)

  -- what tests/coverage/report leaves out of the lines to count
  it("never sees a vararg header nor the RETURN after a tail call",
     function()
    local EXPR = "agentcube/workflow/expr.lua"
    local chunk = [[
      local expr = require("agentcube.workflow.expr")
      expr.strict({}, "x")
      assert(expr.expand("${{ format('{0}', 1) }}", expr.env{}) == true)
    ]]
    assert.equal(0, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), chunk))
    local hits = hits_in(dir)[EXPR]
    local header = line_of(EXPR, "local function format(fmt, ...)")
    assert.is_nil(hits[header])
    assert.is_true(hits[header + 1])           -- its body ran
    local strict = line_of(EXPR, "function M.strict(t, what)")
    local n, close = 0, nil
    for l in io.lines(ROOT .. "/lua/" .. EXPR) do
      n = n + 1
      if n > strict and l == "  })" then close = n break end
    end
    -- the tail call ran, the RETURN after it, alone on its line, never
    assert.is_true(hits[strict + 1])
    assert.is_nil(hits[close])
    local code = code_lines(EXPR)
    assert.is_true(code[header] and code[close])    -- luac lists them
  end)

  it("installs nothing when unset or empty", function()
    -- lua5.4's own debug.sethook keeps its hooks in the registry field
    -- _HOOKKEY; the counter's keeps them elsewhere
    local chunk = "debug.sethook(function() end, 'l'); " ..
                  "assert(debug.getregistry()._HOOKKEY, 'not the standard')"
    assert.equal(0, host("env -u AGENTCUBE_LUA_COVERAGE", chunk))
    assert.equal(0, host("AGENTCUBE_LUA_COVERAGE=", chunk))
    -- positive control: set, debug.sethook is the counter's
    assert.is_not.equal(0, host("AGENTCUBE_LUA_COVERAGE=" .. q(dir), chunk))
  end)
end)
