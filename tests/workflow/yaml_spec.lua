-- agentcube.yaml: values, positions of every node, errors with
-- FILE:LINE:COL, and the limits (depth, alias expansion).
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "?.lua;" .. package.path
local help = require "wfhelp"
local yaml = help.cmodule("agentcube.yaml")

local function load(text)
  local v, m = yaml.load(text, "t.yaml")
  assert(v ~= nil, m)
  return v, m
end

local function err(text)
  local v, msg = yaml.load(text, "t.yaml")
  assert.is_nil(v)
  return msg
end

describe("scalars (YAML 1.2 core schema)", function()
  it("keeps yes/no/on/off as strings and resolves the core forms",
     function()
    local v = load([[
on: push
yes: no
off: y
n: 12
neg: -7
f: 1.5
e: 1e3
h: 0x1F
o: 0o17
inf: .inf
t: true
F: False
s: "12"
q: 'true'
b: |
  text
]])
    assert.equal("push", v.on)
    assert.equal("no", v.yes)
    assert.equal("y", v.off)
    assert.equal(12, v.n)
    assert.equal("integer", math.type(v.n))
    assert.equal(-7, v.neg)
    assert.equal(1.5, v.f)
    assert.equal("float", math.type(v.e))
    assert.equal(1000.0, v.e)
    assert.equal(31, v.h)
    assert.equal(15, v.o)
    assert.equal(math.huge, v.inf)
    assert.is_true(v.t)
    assert.is_false(v.F)
    assert.equal("12", v.s)
    assert.equal("true", v.q)
    assert.equal("text\n", v.b)
  end)

  it("gives null as yaml.null, kept as a value", function()
    local v = load("a:\nb: ~\nc: null\n")
    assert.equal(yaml.null, v.a)
    assert.equal(yaml.null, v.b)
    assert.equal(yaml.null, v.c)
    assert.equal(require("agentcube").null, yaml.null)
  end)

  it("turns a decimal too big for 64 bits into a float", function()
    local v = load("big: 123456789012345678901234\n")
    assert.equal("float", math.type(v.big))
  end)

  it("honours !!str and refuses a bad !!int or an unknown tag", function()
    assert.equal("12", load("a: !!str 12\n").a)
    assert.equal(3.0, load("a: !!float 3\n").a)
    assert.equal("t.yaml:1:4: 'abc' is not a valid !!int",
                 err("a: !!int abc\n"))
    assert.equal("t.yaml:1:4: unsupported tag !foo on a scalar",
                 err("a: !foo abc\n"))
  end)

  it("reads the float forms: hex under !!float, .nan, -.inf, exponents",
     function()
    local v = load("h: !!float 0x10\nn: .nan\ni: -.inf\ne: 1.5e-3\n"
                   .. "p: +.5\nx: 1e+\no: 0o777777777777777777777\n")
    assert.equal(16.0, v.h)
    assert.equal("float", math.type(v.h))
    assert.is_true(v.n ~= v.n)
    assert.equal(-math.huge, v.i)
    assert.equal(0.0015, v.e)
    assert.equal(0.5, v.p)
    assert.equal("1e+", v.x)                   -- no digits: text
    assert.equal(math.maxinteger, v.o)
  end)

  it("names the type a tagged scalar is not", function()
    assert.equal("t.yaml:1:4: 'abc' is not a valid !!float",
                 err("a: !!float abc\n"))
    assert.equal("t.yaml:1:4: 'maybe' is not a valid !!bool",
                 err("a: !!bool maybe\n"))
    assert.equal("t.yaml:1:4: 'x' is not a valid !!null", err("a: !!null x\n"))
    assert.equal("t.yaml:2:3: 'x' is not a valid !!int",
                 err("- 1\n- !!int x\n"))
    assert.equal("t.yaml:1:4: a NUL byte in a !!int scalar",
                 err('a: !!int "1\\0"\n'))
    -- control: as text a NUL byte is kept
    assert.equal("1\0", load('a: "1\\0"\n').a)
  end)

  it("refuses a core tag on the wrong kind of node, as written", function()
    assert.equal("t.yaml:1:4: unsupported tag !!str on a sequence",
                 err("a: !!str [1]\n"))
    assert.equal("t.yaml:1:4: unsupported tag !!map on a scalar",
                 err("a: !!map x\n"))
    assert.same({ b = 1 }, load("a: !!map {b: 1}\n").a)
  end)

  it("reads an empty text as null", function()
    local v = yaml.load("", "e.yaml")
    assert.equal(yaml.null, v)
  end)
end)

describe("positions", function()
  local text = [[
name: demo
steps:
  - id: a
    exec: [ls, -l]
  - id: b
    run:
      code: |
        print(1)
]]

  it("marks every mapping and sequence, with key and value positions",
     function()
    local v, m = load(text)
    assert.same({ line = 1, col = 1 }, { line = m[v].line, col = m[v].col })
    assert.same({ line = 1, col = 1 }, m[v].k.name)
    assert.same({ line = 1, col = 7 }, m[v].v.name)
    assert.same({ line = 2, col = 1 }, m[v].k.steps)
    local steps = v.steps
    assert.same({ line = 3, col = 5 }, m[steps].v[1])
    assert.same({ line = 5, col = 5 }, m[steps].v[2])
    local a = steps[1]
    assert.same({ line = 3, col = 5 }, m[a].k.id)
    assert.same({ line = 3, col = 9 }, m[a].v.id)
    assert.same({ line = 4, col = 11 }, m[a].v.exec)
    assert.same({ line = 4, col = 16 }, m[a.exec].v[2])
    assert.is_nil(m[a.exec].k)         -- a sequence has no keys
    assert.same({ line = 7, col = 13 }, m[steps[2].run].v.code)
  end)

  it("counts columns in characters, not bytes", function()
    local v, m = load("é: ü\nx: 1\n")
    assert.same({ line = 1, col = 4 }, m[v].v["é"])
  end)
end)

describe("errors", function()
  it("adds the hint a person needs to libyaml's words", function()
    assert.equal("t.yaml:3:9: could not find expected ':' (while scanning "
                 .. "a simple key at 2:1); a mapping entry is 'key: value': "
                 .. "is the ':' missing?",
                 err("name: x\nsteps\n  - exec: ls\n"))
    assert.equal("t.yaml:3:1: found unexpected end of stream (while "
                 .. "scanning a quoted scalar at 2:11); the quoted string "
                 .. "is never closed", err("steps:\n  - exec: \"ls\n"))
  end)

  it("reports syntax errors as FILE:LINE:COL", function()
    assert.equal("t.yaml:2:1: did not find expected ',' or ']' (while "
                 .. "parsing a flow sequence at 1:4)", err("a: [1, 2\n"))
    assert.equal("t.yaml:1:5: mapping values are not allowed in this "
                 .. "context; a value that contains ': ' must be quoted",
                 err("a: b: c\n"))
  end)

  it("rejects duplicate keys, naming the first", function()
    assert.equal("t.yaml:3:1: duplicate key 'a' (first at 1:1)",
                 err("a: 1\nb: 2\na: 3\n"))
  end)

  it("rejects non-scalar and null keys", function()
    assert.equal("t.yaml:1:3: a mapping key must be a scalar, not a "
                 .. "sequence", err("? [1]\n: 2\n"))
    assert.equal("t.yaml:1:1: a mapping key must not be null",
                 err("~: 2\n"))
    assert.equal("t.yaml:1:1: a mapping key must not be NaN",
                 err(".nan: 2\n"))
  end)

  it("rejects unknown and recursive aliases", function()
    assert.equal("t.yaml:1:3: unknown alias *x", err("- *x\n"))
    assert.equal("t.yaml:1:8: alias *x refers to a node that contains it",
                 err("a: &x [*x]\n"))
  end)

  it("allows one document only", function()
    assert.equal("t.yaml:2:1: only one YAML document is allowed here",
                 err("a: 1\n---\nb: 2\n"))
  end)

  it("reports invalid UTF-8 at its position", function()
    assert.equal("t.yaml:2:6: invalid leading UTF-8 octet",
                 err("a: 1\nb: \"x\255\"\n"))
  end)

  it("strips Lua's @ and = from the chunk name", function()
    local _, m1 = yaml.load("a: b: c", "@f.yaml")
    local _, m2 = yaml.load("a: b: c", "=g")
    assert.matches("^f%.yaml:1:", m1)
    assert.matches("^g:1:", m2)
  end)
end)

describe("limits", function()
  it("allows 1000 levels of nesting and refuses 1001", function()
    local v = load(string.rep("[", 1000) .. string.rep("]", 1000))
    local depth = 0
    while type(v) == "table" do
      depth = depth + 1
      v = v[1]
    end
    assert.equal(1000, depth)
    assert.equal("t.yaml:1:1001: nesting deeper than 1000 levels",
                 err(string.rep("[", 1001) .. string.rep("]", 1001)))
  end)

  it("keeps hundreds of anchors apart", function()
    local parts = {}
    for i = 1, 300 do parts[#parts + 1] = ("k%d: &a%d %d"):format(i, i, i) end
    for i = 1, 300 do parts[#parts + 1] = ("r%d: *a%d"):format(i, i) end
    local v = load(table.concat(parts, "\n"))
    for i = 1, 300 do assert.equal(i, v["r" .. i]) end
  end)

  it("shares aliased collections instead of copying them", function()
    local v, m = load("a: &x {k: 1}\nb: *x\n")
    assert.equal(v.a, v.b)
    assert.same({ line = 2, col = 4 }, m[v].v.b)
  end)

  it("refuses a billion laughs", function()
    local lines = { "a: &a [x, x, x, x, x, x, x, x, x, x]" }
    for i = 2, 9 do
      local p, c = string.char(95 + i), string.char(96 + i)
      lines[i] = ("%s: &%s [%s]"):format(c, c,
        string.rep("*" .. p .. ", ", 9) .. "*" .. p)
    end
    local msg = err(table.concat(lines, "\n"))
    assert.equal("t.yaml:6:4: more than 1000000 nodes once aliases are "
                 .. "expanded", msg)
  end)

  -- the same loop in a child lua5.4 under valgrind: a definite leak or a
  -- memory error in the loader fails it
  local PREFIXES = [=[
local yaml = require("agentcube.workflow.load").cmodule("agentcube.yaml")
local text = "a: &x [1, {b: 'c', d: \"e\"}]\nf: *x\ng: |\n  h\n"
for i = 0, #text do
  local v, m = yaml.load(text:sub(1, i), "p.yaml")
  assert(v ~= nil or type(m) == "string", "prefix " .. i)
end
print("prefixes done")
]=]

  it("survives every prefix of a document (no crash, no leak)", function()
    local dir = help.tmpdir()
    local f = assert(io.open(dir .. "/prefixes.lua", "w"))
    f:write(PREFIXES)
    f:close()
    local p = io.popen("valgrind -q --leak-check=full " ..
      "--errors-for-leak-kinds=definite --error-exitcode=99 lua5.4 " ..
      help.q(dir .. "/prefixes.lua") .. " 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. help.q(dir))
    assert.matches("prefixes done\nrc=0\n$", out)
  end)
end)
