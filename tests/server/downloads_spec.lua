-- Downloads are read on workers, one chunk at a time: a file that shrinks
-- while it is downloaded ends the answer short (never a spinning server),
-- and a slow reader holds up nobody.
local server = require "server"
local DP = server.DP

describe("downloads", function()
  local srv, id
  setup(function()
    srv = server.start{ config = "default: { warmPoolSize: 0 }\n" }
    id = srv:create()
  end)
  teardown(function() srv:destroy() end)

  local function curl_bg(path, out)
    return io.popen(("(curl -s --limit-rate 2M -o /dev/null -w '%%{http_code}" ..
      " %%{size_download}\\n' -H %s %s; echo \"exit $?\""):format(
      server.q("x-agentcube-session-id: " .. id),
      server.q(srv.url .. DP .. "api/files/" .. path)) .. ") > " ..
      server.q(out) .. " 2>&1 &")
  end

  it("a file that shrinks mid-download ends it short; others are served",
     function()
    srv:sh(id, "head -c 64M /dev/zero > big.bin")
    local out = server.tmpdir() .. "/curl.out"
    curl_bg("big.bin", out):close()
    os.execute("sleep 1")
    -- meanwhile the server answers others at once
    local status = srv:json("GET", "/health")
    assert.equal(200, status)
    srv:sh(id, "truncate -s 1M big.bin")
    local text
    for _ = 1, 300 do
      text = server.read_file(out) or ""
      if text:match("exit") then break end
      os.execute("sleep 0.1")
    end
    -- curl 18: partial file (Content-Length promised 64 MiB)
    assert.matches("^200 %d+\nexit 18", text)
    local got = tonumber(text:match("^200 (%d+)"))
    assert.is_true(got < 64 * 1024 * 1024, text)
    -- the server is idle again: no thread left spinning on the file (the
    -- CPU time it uses over a second stays small)
    local function cpu_ticks()
      local st = server.read_file("/proc/" .. srv.pid .. "/stat")
      local fields = {}
      for f in st:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
      return tonumber(fields[12]) + tonumber(fields[13])
    end
    local c0 = cpu_ticks()
    os.execute("sleep 1")
    assert.is_true(cpu_ticks() - c0 < 50, "the server keeps spinning")
    assert.equal(200, (srv:json("GET", "/health")))
    -- positive control: the same download of an unchanging file is whole
    srv:sh(id, "head -c 4M /dev/zero > ok.bin")
    out = out .. ".control"
    curl_bg("ok.bin", out):close()
    for _ = 1, 300 do
      text = server.read_file(out) or ""
      if text:match("exit") then break end
      os.execute("sleep 0.1")
    end
    assert.matches("^200 4194304\nexit 0", text)
  end)
end)
