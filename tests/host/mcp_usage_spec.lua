-- `agentcube mcp` usage errors: each one exits 2 before anything starts,
-- with a message that names the option and the value at fault.
local server = require "server"

local BIN, q = server.bin, server.q

-- Runs `agentcube mcp ARGS` (env: a shell prefix) with stdin closed;
-- returns the output (stdout and stderr) and the exit status.
local function mcp(args, env)
  local p = io.popen((env or "") .. " " .. q(BIN) .. " mcp " .. args ..
                     " </dev/null 2>&1; echo \"[exit $?]\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("%[exit (%d+)%]\n$"))
  return out:gsub("%[exit %d+%]\n$", ""), code
end

describe("agentcube mcp", function()
  it("prints its usage with --help", function()
    local out, code = mcp("--help")
    assert.equal(0, code)
    assert.matches("^usage: agentcube mcp %[%-%-transport stdio|http%]", out)
  end)

  it("refuses bad numbers, naming the option and the value", function()
    local cases = {
      { "--ttl 0", "--ttl needs a whole number >= 1, not '0'" },
      { "--ttl 5s", "--ttl needs a whole number >= 1, not '5s'" },
      { "--idle-timeout x",
        "--idle-timeout needs a whole number >= 1, not 'x'" },
    }
    for _, c in ipairs(cases) do
      local out, code = mcp(c[1])
      assert.equal(2, code, c[1])
      assert.matches("agentcube mcp: " .. c[2], out, 1, true)
    end
    local out, code = mcp("", "CODE_INTERPRETER_SESSION_TTL=soon")
    assert.equal(2, code)
    assert.matches("CODE_INTERPRETER_SESSION_TTL needs a whole number >= 1"
                   .. ", not 'soon'", out, 1, true)
  end)

  it("refuses unknown options, stray arguments and missing values",
     function()
    local out, code = mcp("--bogus 1")
    assert.equal(2, code)
    assert.matches("agentcube mcp: unknown option --bogus\nusage:", out, 1,
                   true)
    out, code = mcp("stray")
    assert.equal(2, code)
    assert.matches("agentcube mcp: unexpected argument\nusage:", out, 1,
                   true)
    out, code = mcp("--keep --template")
    assert.equal(2, code)
    assert.matches("agentcube mcp: missing value\nusage:", out, 1, true)
  end)

  it("refuses a transport other than stdio or http", function()
    local out, code = mcp("--transport ws")
    assert.equal(2, code)
    assert.matches("--transport must be stdio or http, not 'ws'", out, 1,
                   true)
    out, code = mcp("", "MCP_TRANSPORT=sse")
    assert.equal(2, code)
    assert.matches("not 'sse'", out, 1, true)
  end)

  it("refuses a --files-dir that is not a directory", function()
    local dir = server.tmpdir("agentcube-mcp-usage")
    local out, code = mcp("--files-dir " .. q(dir .. "/missing"))
    os.execute("rm -rf " .. q(dir))
    assert.equal(2, code)
    assert.equal("agentcube mcp: --files-dir " .. dir .. "/missing: No "
                 .. "such file or directory\n", out)
  end)
end)
