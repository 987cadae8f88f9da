-- The repository's own documents: every docs/*.md that README, code or
-- tests point to exists, every relative link in README and docs/ leads to
-- a file, and nothing cites design notes the repository does not hold.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") ..
               "../lua/?.lua;" .. package.path
local help = require "luahelp"

local root = help.root

local function exists(path)
  local f = io.open(root .. "/" .. path, "r")
  if f then f:close() end
  return f ~= nil
end

-- Tracked text files: path -> contents.
local function tracked()
  local out = {}
  local p = io.popen("cd " .. help.q(root) .. " && git ls-files")
  for path in p:lines() do
    if path:match("%.[chm][dk]?$") or path:match("%.lua$") or
       path:match("%.md$") or path:match("%.yaml$") or
       path:match("Makefile$") or path:match("%.sh$") then
      out[path] = help.read_file(root .. "/" .. path) or ""
    end
  end
  p:close()
  return out
end

describe("documents", function()
  local files = tracked()

  it("cite no design notes outside the repository", function()
    local names = { "PROTOCOL", "SANDBOX", "DESIGN", "STYLE" }
    for path, text in pairs(files) do
      for _, name in ipairs(names) do
        assert.is_nil(text:find("%f[%w]" .. name .. "%.md"),
                      path .. " cites " .. name .. ".md")
      end
    end
  end)

  it("that code and tests point to exist", function()
    local n = 0
    for path, text in pairs(files) do
      for doc in text:gmatch("docs/([%w_%-]+%.md)") do
        n = n + 1
        assert.is_true(exists("docs/" .. doc), path .. " -> docs/" .. doc)
      end
    end
    assert.is_true(n >= 10)
  end)

  it("link to files that exist", function()
    for path, text in pairs(files) do
      if path:match("%.md$") then
        local dir = path:match("^(.*)/[^/]*$")
        for link in text:gmatch("%]%(([^)%s]+)%)") do
          local target = link:gsub("#.*$", "")
          if target ~= "" and not link:find("://", 1, true) then
            local full = dir and (dir .. "/" .. target) or target
            assert.is_true(exists(full), path .. " links to " .. target)
          end
        end
      end
    end
  end)
end)
