-- An exec command line with ${{ }} in it: split like the SDK splits a
-- command (POSIX shlex) before anything is evaluated, so that a value
-- stays inside the argument it was written in.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
require "wfhelp"
local expr = require "agentcube.workflow.expr"
local words = require "agentcube.workflow.words"

local env = expr.env{
  inputs = expr.strict({ p = "a b", q = "it's \"x\"", n = 3 }, "input"),
}

local function argv(line)
  local out, err = words.expand(line, env)
  assert(out, err)
  return out
end

describe("an exec command line", function()
  it("takes the quotes and escapes of a POSIX shell", function()
    assert.same({ "echo", 'a "q" \\ $ ` b', "c d", "e f", "x\\y", "gh" },
                argv([[echo "a \"q\" \\ \$ \` b" c\ d 'e f' "x\y" g\h]]))
  end)

  it("keeps each value inside its argument, quotes and blanks too",
     function()
    assert.same({ "grep", "a b", "--q=it's \"x\"", "3" },
                argv("grep ${{ inputs.p }} --q=${{ inputs.q }} ${{ inputs.n }}"))
    assert.same({ "echo", "x a by" },
                argv("echo 'x '${{ inputs.p }}y"))
  end)

  it("refuses what cannot be split, with the reason", function()
    for line, msg in pairs{
      ["echo 'a"] = "unterminated ' in the command line",
      ['echo "a'] = 'unterminated " in the command line',
      ["echo a\\"] = "a command line cannot end with \\",
      ["echo \1"] = "control characters \\1 and \\2 in a command line",
      ["echo ${{ x"] = "unterminated '${{' (no closing '}}')",
    } do
      local out, err = words.expand(line, env)
      assert.is_nil(out, line)
      assert.equal(msg, err, line)
    end
  end)

  it("fails when a value fails or leaves nothing to run", function()
    local out, err = words.expand("echo ${{ inputs.zz }}", env)
    assert.is_nil(out)
    assert.matches("no input 'zz'", err, 1, true)
    out, err = words.expand("  ", env)
    assert.is_nil(out)
    assert.equal("the command line is empty", err)
  end)
end)
