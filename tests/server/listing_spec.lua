-- Listings show every entry (non-UTF-8 names escaped and flagged, names
-- that look like upload temporaries too), and an upload in progress,
-- replacing a file, or cut by kill -9 leaves nothing the sandbox can see
-- or that stays behind; what a crash left is swept when the server starts.
local server = require "server"
local cjson = require "cjson.safe"
local q = server.q

local function host(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

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

  -- Many overwrites while sandboxed code lists the directory as fast as
  -- it can: it must never see a name other than the file's own. The
  -- lister stops when "stop" appears, an upload of a new name after the
  -- overwrites: seeing it is the control that the lister sees new names.
  it("that replace a file never show a temporary name", function()
    srv:sh(id, "mkdir -p race && echo old > race/over.txt")
    host("printf 'new contents' > " .. q(dir .. "/small"))
    local url = srv.url .. server.DP .. "api/files"
    local curl = "curl -sf -o /dev/null -H 'x-agentcube-session-id: " ..
                 id .. "' "
    local file = " -F 'file=@" .. dir .. "/small' " .. q(url)
    os.execute("(sleep 1; i=0; while [ $i -lt 400 ]; do " .. curl ..
               "-F path=race/over.txt" .. file .. " && " ..
               "echo x >> " .. q(dir .. "/done") .. "; i=$((i+1)); done; " ..
               curl .. "-F path=race/stop" .. file .. ") " ..
               ">/dev/null 2>&1 &")
    local out = srv:sh(id, [[python3 -c '
import os, time
seen, n, t0 = set(), 0, time.time()
while time.time() - t0 < 60:
    names = os.listdir("/workspace/race")
    n += 1
    seen.update(x for x in names if x not in ("over.txt", "stop"))
    if "stop" in names:
        break
print("stop" in names, n, sorted(seen))
']], "90s")
    local done = host("wc -l < " .. q(dir .. "/done") .. " 2>/dev/null")
    assert.are.equal("400", done:match("%d+"), "overwrites that succeeded")
    local stopped, loops, foreign = out:match("^(%a+) (%d+) (.-)\n$")
    assert.are.equal("True", stopped, out)         -- the control
    assert.is_true(tonumber(loops) > 400, out)     -- it listed fast
    assert.are.equal("[]", foreign, out)
    assert.are.equal("new contents", (srv:sh(id, "cat race/over.txt")))
  end)
end)

-- Where a session's box root is on the host: the published mount of its
-- disk image (or its plain tree).
local function box_root(srv, id)
  local rec = cjson.decode(server.read_file(srv.state_dir .. "/sessions/" ..
                                            id .. ".json"))
  local bdir = srv.state_dir .. "/boxes/" .. string.format("%d", rec.slot)
  local dev = host("losetup -n -O NAME -j " .. q(bdir .. "/disk.img"))
  dev = dev:match("(%S+)")
  if dev then
    return host("findmnt -n -o TARGET " .. q(dev)):match("([^\n]+)"), bdir
  end
  return bdir .. "/root", bdir
end

describe("the sweep at server start", function()
  local srv, id

  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  it("removes what crashed uploads left, and nothing else", function()
    local used = "sync; df -k --output=used /workspace | tail -1"
    local before = tonumber((srv:sh(id, used)))
    -- What earlier versions left next to their targets: a named 0600
    -- file. With another mode, another name, or a second link, a file
    -- is the sandbox's own and stays (controls).
    srv:sh(id, [[mkdir -p a/b && cd a/b &&
      head -c 2000000 /dev/urandom > .agentcube-upload-Ab3dE6gH9jK1 &&
      chmod 600 .agentcube-upload-Ab3dE6gH9jK1 &&
      echo keep > .agentcube-upload-Ab3dE6gH9jK2 &&
      chmod 644 .agentcube-upload-Ab3dE6gH9jK2 &&
      echo keep > .agentcube-upload-short && chmod 600 .agentcube-upload-short &&
      echo keep > .agentcube-upload-Zz3dE6gH9jK1 &&
      chmod 600 .agentcube-upload-Zz3dE6gH9jK1 &&
      ln .agentcube-upload-Zz3dE6gH9jK1 linked]])
    local root, bdir = box_root(srv, id)
    assert.truthy(root, "box root found")
    local stage = root .. "/.agentcube/uploads"
    -- The staging directory: the session's, below a parent of the
    -- server's, and never in the sandbox's view.
    assert.are.equal("700 0\n", host("stat -c '%a %u' " ..
                                     q(root .. "/.agentcube")))
    assert.are.equal("700\n", host("stat -c '%a' " .. q(stage)))
    local inside = srv:sh(id, "find / -xdev -path /proc -prune -o " ..
                              "-name uploads -print 2>/dev/null; echo end")
    assert.are.equal("end\n", inside)
    -- What a kill between the link and the rename leaves.
    host("head -c 3000000 /dev/urandom > " .. q(stage .. "/.agentcube-upload-x") ..
         " && chown --reference=" .. q(stage) .. " " ..
         q(stage .. "/.agentcube-upload-x"))
    -- A box of an earlier version: no "staged" line in box.info.
    local info = server.read_file(bdir .. "/box.info")
    assert.truthy(info:find("staged 1", 1, true))
    local f = assert(io.open(bdir .. "/box.info", "w"))
    f:write((info:gsub("staged 1\n", "")))
    f:close()
    local full = tonumber((srv:sh(id, used)))
    assert.is_true(full - before > 4500, before .. " -> " .. full)

    srv:kill9()
    srv:launch()
    root = box_root(srv, id)
    assert.are.equal("", host("ls -A " .. q(root .. "/.agentcube/uploads")))
    local left = srv:sh(id, "cd a/b && ls -A")
    assert.are.equal(".agentcube-upload-Ab3dE6gH9jK2\n" ..
                     ".agentcube-upload-Zz3dE6gH9jK1\n" ..
                     ".agentcube-upload-short\nlinked\n", left)
    local after = tonumber((srv:sh(id, used)))
    assert.is_true(after - before < 150, before .. " -> " .. after)
    assert.truthy(server.read_file(bdir .. "/box.info"):find("staged 1", 1,
                                                            true))
  end)
end)
