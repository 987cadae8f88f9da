-- Listings show every entry (non-UTF-8 names escaped and flagged, names
-- that look like upload temporaries too), and an upload in progress or
-- cut by kill -9 leaves nothing the sandbox can see or that stays behind.
local server = require "server"
local q = server.q

local function by_name(files)
  local t = {}
  for _, f in ipairs(files) do t[f.name] = f end
  return t
end

describe("listings", function()
  local srv, id

  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  it("list every entry, escaping names that are not UTF-8", function()
    srv:sh(id, "mkdir l && cd l && touch plain \"$(printf 'a\\377b')\" " ..
               "\"$(printf 'c\\\\d\\376')\" 'back\\slash' " ..
               "\"$(printf '\\303\\251t\\303\\251')\" " ..
               ".agentcube-upload-hidden")
    local status, j = srv:list(id, "l")
    assert.are.equal(200, status)
    local names = by_name(j.files)
    assert.are.equal(6, #j.files)
    assert.is_true(names["a\\xffb"].name_escaped)
    assert.is_true(names["c\\\\d\\xfe"].name_escaped)
    -- valid UTF-8 names are as they are, without the flag (control)
    assert.is_nil(names["plain"].name_escaped)
    assert.is_nil(names["back\\slash"].name_escaped)
    assert.is_nil(names["\u{e9}t\u{e9}"].name_escaped)
    -- nothing the sandbox creates is hidden
    assert.truthy(names[".agentcube-upload-hidden"])
  end)
end)

describe("uploads", function()
  local srv, id, dir

  setup(function()
    dir = server.tmpdir("agentcube-up")
    os.execute("head -c 3000000 /dev/urandom > " .. q(dir .. "/big"))
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
    os.execute("rm -rf " .. q(dir))
  end)

  local function slow_upload(name)
    local url = srv.url .. server.DP .. "api/files"
    os.execute("curl -s --limit-rate 100K -H 'x-agentcube-session-id: " ..
               id .. "' -F 'path=" .. name .. "' -F 'file=@" .. dir ..
               "/big' " .. q(url) .. " >/dev/null 2>&1 & echo $! > " ..
               q(dir .. "/curl.pid"))
  end

  local function visible_leftovers()
    return srv:sh(id, "find / -xdev -name '.agentcube-upload*' " ..
                      "2>/dev/null; ls -A /workspace")
  end

  it("leave nothing a sandbox sees while in progress", function()
    slow_upload("inflight.bin")
    os.execute("sleep 2")
    local out = visible_leftovers()
    assert.is_nil(out:find("agentcube-upload", 1, true), out)
    assert.is_nil(out:find("inflight", 1, true), out)
    os.execute("kill $(cat " .. q(dir .. "/curl.pid") .. ")")
  end)

  it("cut by kill -9 of the server leave no file and no used space",
     function()
    local before = srv:sh(id, "df -k --output=used /workspace | tail -1")
    slow_upload("cut.bin")
    os.execute("sleep 2")
    srv:kill9()
    os.execute("kill $(cat " .. q(dir .. "/curl.pid") .. ") 2>/dev/null")
    srv:launch()
    local out = visible_leftovers()
    assert.is_nil(out:find("agentcube-upload", 1, true), out)
    assert.is_nil(out:find("cut.bin", 1, true), out)
    local after = srv:sh(id, "sync; df -k --output=used /workspace | tail -1")
    assert.is_true(tonumber(after) - tonumber(before) < 150,
                   "used " .. before .. " -> " .. after .. " KiB")
    -- control: a whole upload arrives and is listed
    local status = srv:request{ method = "POST", path = server.DP ..
      "api/files", session = id,
      form = { { name = "path", value = "whole.bin" },
               { name = "file", file = dir .. "/big" } } }
    assert.are.equal(200, status)
    local _, j = srv:list(id, ".")
    assert.truthy(by_name(j.files)["whole.bin"])
    assert.are.equal(3000000, by_name(j.files)["whole.bin"].size)
  end)

  it("replace an existing file whole", function()
    srv:write(id, "over.txt", "old contents")
    assert.are.equal(200, (srv:write(id, "over.txt", "new")))
    local out = srv:sh(id, "cat over.txt; ls -A | grep -c agentcube-upload")
    assert.are.equal("new0\n", out)
  end)
end)
