-- README.md is a tested artifact: every code block that is a workflow
-- (```yaml with steps), a Lua script (```lua), a C program (```c) or a
-- shell session (```sh) runs here, against a real `agentcube serve`, and
-- must succeed and leave no session behind. A block that must not run
-- says so on the line before its fence:
--
--   <!-- readme-test: skip REASON -->     not run (REASON is required)
--   <!-- readme-test: file NAME -->       saved as NAME for later blocks
--                                         (a workflow is also checked)
--
-- Blocks run in file order in one scratch directory holding data.csv and
-- data/sales.csv; `agentcube` is on PATH; a C program is built with the
-- README's own pkg-config line against a private `make install`.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "../lua/?.lua;" .. package.path
local server = require "server"
local help = require "luahelp"

local q = server.q
local root = help.root
local readme_path = root .. "/README.md"

-- The fenced blocks of text: { lang, text, line, marker, arg }.
local function blocks(text)
  local out, prev, cur = {}, "", nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local lang = line:match("^```(%S*)%s*$")
      if lang then
        local marker, arg = prev:match(
          "^<!%-%- readme%-test: (%a+)%s*(.-)%s*%-%->$")
        cur = { lang = lang, line = n, lines = {}, marker = marker,
                arg = arg }
      end
      if line:match("%S") then prev = line end
    end
  end
  for _, b in ipairs(out) do b.text = table.concat(b.lines, "\n") .. "\n" end
  return out
end

local RUNNABLE = { yaml = true, lua = true, c = true, sh = true }

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"[exit $?]\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("%[exit (%d+)%]\n$"))
  return out:gsub("%[exit %d+%]\n$", ""), code
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local text = assert(server.read_file(readme_path))
local all = blocks(text)
local srv, dir, prefix, env

setup(function()
  srv = server.start{}
  dir = server.tmpdir("agentcube-readme")
  os.execute("mkdir -p " .. q(dir .. "/data") .. " && cp " ..
             q(root .. "/workflows/data/sales.csv") .. " " ..
             q(dir .. "/data/sales.csv") .. " && cp " ..
             q(root .. "/workflows/data/sales.csv") .. " " ..
             q(dir .. "/data.csv"))
  local bindir = help.build .. ""
  env = "cd " .. q(dir) .. " && PATH=" .. q(bindir .. ":" ..
        os.getenv("PATH")) .. " WORKLOAD_MANAGER_URL=" .. q(srv.url) ..
        " ROUTER_URL=" .. q(srv.url) .. " AGENTCUBE_HOME=" ..
        q(dir .. "/home") .. " "
end)

teardown(function()
  srv:destroy()
  os.execute("rm -rf " .. q(dir))
  if prefix then os.execute("rm -rf " .. q(prefix)) end
end)

-- A private install for the C programs, made on first need.
local function install()
  if prefix then return prefix end
  prefix = server.tmpdir("agentcube-readme-prefix")
  local build = help.build:sub(#root + 2)
  local out, code = run("make -C " .. q(root) .. " --no-print-directory " ..
                        "install PREFIX=" .. q(prefix) .. " BUILD=" ..
                        q(build))
  assert(code == 0, "make install failed:\n" .. out)
  return prefix
end

local function is_workflow(b)
  return b.lang == "yaml" and (b.text:match("\nsteps:") or
                               b.text:match("^steps:")) ~= nil
end

describe("README.md", function()
  it("has runnable blocks, each either run or marked", function()
    local runnable = 0
    for _, b in ipairs(all) do
      if RUNNABLE[b.lang] then
        runnable = runnable + 1
        if b.marker == "skip" then
          assert.is_true(#b.arg > 0, "README.md:" .. b.line ..
                         ": a skipped block says why")
        else
          assert.is_true(b.marker == nil or b.marker == "file",
                         "README.md:" .. b.line .. ": unknown marker")
          if b.lang == "yaml" and b.marker ~= "file" then
            assert.truthy(is_workflow(b), "README.md:" .. b.line ..
                          ": a YAML block that is not a workflow must be "
                          .. "marked")
          end
        end
      end
    end
    assert.is_true(runnable >= 8)
  end)

  for i, b in ipairs(all) do
    if RUNNABLE[b.lang] and b.marker == "skip" then
      pending(("block %d (README.md:%d, %s): %s"):format(i, b.line, b.lang,
                                                         b.arg))
    elseif RUNNABLE[b.lang] then
      it(("block %d (README.md:%d, %s) runs"):format(i, b.line, b.lang),
         function()
        local name = b.marker == "file" and b.arg or
                     ("block%d.%s"):format(i, b.lang)
        local path = dir .. "/" .. name
        write(path, b.text)
        local out, code
        if b.marker == "file" then
          if b.lang == "yaml" then
            out, code = run(env .. "agentcube check " .. q(name))
          else
            return
          end
        elseif b.lang == "yaml" then
          out, code = run(env .. "agentcube run " .. q(name))
        elseif b.lang == "lua" and b.text:match("^return {") then
          out, code = run(env .. "agentcube run " .. q(name))
        elseif b.lang == "lua" then
          out, code = run(env .. "agentcube " .. q(name))
        elseif b.lang == "sh" then
          out, code = run(env .. "sh -e " .. q(name))
        elseif b.lang == "c" then
          local pc = install() .. "/lib/pkgconfig"
          local bin = name:gsub("%.c$", "")
          out, code = run(env .. "PKG_CONFIG_PATH=" .. q(pc) ..
                          " LD_LIBRARY_PATH=" .. q(prefix .. "/lib") ..
                          " sh -ec " .. q("cc -o " .. bin .. " " .. name ..
                          " $(pkg-config --cflags --libs agentcube) && ./" ..
                          bin))
        end
        assert.equal(0, code, ("README.md:%d:\n%s"):format(b.line, out))
        assert.same({}, help.session_ids(srv))
      end)
    end
  end
end)
