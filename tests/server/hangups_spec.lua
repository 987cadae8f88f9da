-- Clients that hang up while their request is worked on: the request ends
-- while a worker hands it back to the event loop, and the server must
-- neither touch what it freed nor lose the next request. Under the
-- sanitizer build a use after free aborts the server, and any build
-- that corrupts its heap dies on it sooner or later.
local server = require "server"
local b64 = require "b64"

local RAW = "python3 tests/helpers/rawconn.py "
local DP = server.DP
local ROUNDS = 150

local function hostport(srv)
  return srv.url:match("^http://([^:]+):(%d+)$")
end

describe("clients that hang up", function()
  local srv, id
  setup(function()
    srv = server.start{}
    id = srv:create()
  end)
  teardown(function()
    srv:destroy()
  end)

  local function hang_up(path, headers, body)
    local host, port = hostport(srv)
    local p = io.popen(RAW .. "hangups " .. ROUNDS .. " " .. host .. " " ..
      port .. " POST " .. server.q(DP .. path) .. " " ..
      server.q("x-agentcube-session-id: " .. id .. "|" .. headers) .. " " ..
      server.q(body))
    local said = p:read("l")
    p:close()
    return said
  end

  local function still_serving(name)
    -- positive control: the same server still writes and reads a file
    local status, j = srv:write(id, name, "after")
    assert.equal(200, status, type(j) == "table" and j.error or j)
    assert.equal("after", (srv:sh(id, "cat " .. name)))
    local log = server.read_file(srv.log) or ""
    assert.is_nil(log:match("AddressSanitizer"), log)
    assert.is_nil(log:match("malloc%(%)"), log)
  end

  it("JSON uploads cut right after they are sent", function()
    local body = '{"path":"cut.txt","content":"' ..
                 b64.encode(string.rep("j", 4096)) .. '"}'
    assert.equal("sent " .. ROUNDS,
                 hang_up("api/files", "Content-Type: application/json", body))
    still_serving("after-json.txt")
  end)

  it("multipart uploads cut right after they are sent", function()
    local b = "hangupboundary"
    local body = "--" .. b .. "\r\n" ..
      'Content-Disposition: form-data; name="path"\r\n\r\ncut.bin\r\n' ..
      "--" .. b .. "\r\n" ..
      'Content-Disposition: form-data; name="file"; filename="cut.bin"\r\n' ..
      "Content-Type: application/octet-stream\r\n\r\n" ..
      string.rep("m", 4096) .. "\r\n--" .. b .. "--\r\n"
    assert.equal("sent " .. ROUNDS,
                 hang_up("api/files", "Content-Type: multipart/form-data; " ..
                         "boundary=" .. b, body))
    still_serving("after-multipart.txt")
  end)
end)
