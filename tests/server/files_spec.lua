-- Sandbox file API conformance (docs/protocol.md §5.2-§5.6, §7) with the
-- local runtime's path rules: relative paths are under /workspace, absolute
-- paths must be in /workspace, /tmp or /home/sandbox.
local server = require "server"
local b64 = require "b64"
local DP = server.DP

describe("files", function()
  local srv, id, tmp
  setup(function()
    srv = server.start{}
    id = srv:create()
    tmp = server.tmpdir()
  end)
  teardown(function()
    srv:destroy()
    os.execute("rm -rf " .. server.q(tmp))
  end)

  it("33: JSON upload creates parent directories", function()
    local status, j = srv:write(id, "a/b.txt", "hi")
    assert.equal(200, status)
    assert.equal("a/b.txt", j.path)
    assert.equal(2, j.size)
    assert.equal("-rw-r--r--", j.mode)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", j.modified)
    local out = srv:sh(id, "cat a/b.txt; stat -c %a a")
    assert.equal("hi755\n", out)
  end)

  it("34: /workspace/... is the workspace; paths report relative", function()
    local status, j = srv:write(id, "/workspace/x/y.txt", "xy")
    assert.equal(200, status)
    assert.equal("x/y.txt", j.path)
    assert.equal("xy", (srv:sh(id, "cat /workspace/x/y.txt")))
  end)

  it("writes to /tmp and /home/sandbox with absolute paths", function()
    local status, j = srv:write(id, "/tmp/value.txt", "42")
    assert.equal(200, status)
    assert.equal("/tmp/value.txt", j.path)
    assert.equal("42", (srv:sh(id, "cat /tmp/value.txt")))
    status, j = srv:write(id, "/home/sandbox/.rc", "rc")
    assert.equal(200, status)
    assert.equal("/home/sandbox/.rc", j.path)
  end)

  it("35: traversal is refused; a/../b.txt is fine", function()
    for _, p in ipairs{ "../x", "a/../../x", "/etc/passwd", "/usr/x",
                        "/workspace/../etc/x" } do
      local status, j = srv:write(id, p, "no")
      assert.equal(400, status, p)
      assert.matches("^access denied", j.error, nil, false)
      assert.equal(400, j.code)
    end
    local status, j = srv:write(id, "a/../b.txt", "ok")
    assert.equal(200, status)
    assert.equal("b.txt", j.path)
  end)

  it("36: invalid base64 is 400; empty content makes an empty file",
     function()
    local status, j = srv:json("POST", DP .. "api/files",
      { path = "bad.txt", content = "***" }, { session = id })
    assert.equal(400, status)
    assert.matches("^Invalid base64 content", j.error)
    status, j = srv:json("POST", DP .. "api/files",
      { path = "empty.txt", content = "" }, { session = id })
    assert.equal(200, status)
    assert.equal(0, j.size)
    status = srv:json("POST", DP .. "api/files", { path = "", content = "" },
                      { session = id })
    assert.equal(400, status)
  end)

  it("37: modes apply to new files; bad modes give 0644", function()
    local _, j = srv:write(id, "run.sh", "#!/bin/sh\n", "0755")
    assert.equal("-rwxr-xr-x", j.mode)
    for _, m in ipairs{ "abc", "0778", "10000", "-1" } do
      _, j = srv:write(id, "m" .. m .. ".txt", "x", m)
      assert.equal("-rw-r--r--", j.mode, m)
    end
    -- an existing file keeps its mode
    _, j = srv:write(id, "run.sh", "#!/bin/sh\necho\n", "0600")
    assert.equal("-rwxr-xr-x", j.mode)
  end)

  it("38: multipart upload with path, mode and file", function()
    local src = tmp .. "/up.bin"
    local f = io.open(src, "wb")
    f:write(("0123456789"):rep(1000))
    f:close()
    local status, text = srv:request{ method = "POST", path = DP .. "api/files",
      session = id, form = { { name = "path", value = "up/load.bin" },
                             { name = "mode", value = "0600" },
                             { name = "file", file = src } } }
    assert.equal(200, status, text)
    local j = require("cjson").decode(text)
    assert.equal("up/load.bin", j.path)
    assert.equal(10000, j.size)
    assert.equal("-rw-------", j.mode)
    local _, body = srv:download(id, "up/load.bin")
    assert.equal(("0123456789"):rep(1000), body)
  end)

  it("38: multipart errors: no path, no file; empty file is fine", function()
    local src = tmp .. "/empty.bin"
    io.open(src, "wb"):close()
    local status, text = srv:request{ method = "POST", path = DP .. "api/files",
      session = id, form = { { name = "file", file = src } } }
    assert.equal(400, status)
    assert.equal("Missing 'path' field", require("cjson").decode(text).error)
    status, text = srv:request{ method = "POST", path = DP .. "api/files",
      session = id, form = { { name = "path", value = "nofile.txt" } } }
    assert.equal(400, status)
    assert.equal("Failed to get file: http: no such file",
                 require("cjson").decode(text).error)
    status, text = srv:request{ method = "POST", path = DP .. "api/files",
      session = id, form = { { name = "path", value = "empty.bin" },
                             { name = "file", file = src } } }
    assert.equal(200, status, text)
    assert.equal(0, require("cjson").decode(text).size)
  end)

  it("39: bodies over the limit are 413 before anything is written",
     function()
    local small = server.start{ config = "maxJsonBytes: 1Ki\n" ..
                                         "maxUploadBytes: 8Ki\n" }
    local sid = small:create()
    local status, j = small:write(sid, "big.txt", ("x"):rep(4096))
    assert.equal(413, status)
    assert.equal("request body too large", j.error)
    assert.equal("maximum allowed size is 1024 bytes", j.detail)
    -- sent chunked, without a Content-Length to refuse up front: the same
    -- 413 once the body passes the limit, and nothing written
    local body = tmp .. "/chunked.json"
    local f = io.open(body, "w")
    f:write('{"path": "chunked.txt", "content": "' .. ("QUJD"):rep(1024) ..
            '"}')
    f:close()
    local out = server.capture("curl -s -m 60 -w '\\n%{http_code}' -X POST " ..
      "-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' " ..
      "-H 'x-agentcube-session-id: " .. sid .. "' --data-binary @" ..
      server.q(body) .. " " .. server.q(small.url .. DP .. "api/files"))
    assert.matches("\n413$", out)
    assert.matches("maximum allowed size is 1024 bytes", out, 1, true)
    assert.equal(404, (small:download(sid, "chunked.txt")))
    -- a multipart upload sent chunked past maxUploadBytes: cut off as it
    -- streams, the part written so far removed. Twice: libmicrohttpd
    -- called again with the next chunk before the last one was written,
    -- which crashed the server.
    local big = tmp .. "/big.bin"
    f = io.open(big, "wb")
    f:write(("z"):rep(256 * 1024))
    f:close()
    for _ = 1, 2 do
      out = server.capture("curl -s -m 60 -w '\\n%{http_code}' " ..
        "-H 'Transfer-Encoding: chunked' -H 'x-agentcube-session-id: " ..
        sid .. "' -F path=big.bin -F file=@" .. server.q(big) .. " " ..
        server.q(small.url .. DP .. "api/files"))
      assert.matches("\n413$", out)
      assert.matches("the upload exceeds the server's maxUploadBytes", out,
                     1, true)
    end
    assert.equal(404, (small:download(sid, "big.bin")))
    -- control: a small one passes
    f = io.open(big, "wb")
    f:write("small")
    f:close()
    out = server.capture("curl -s -m 60 -w '\\n%{http_code}' " ..
      "-H 'Transfer-Encoding: chunked' -H 'x-agentcube-session-id: " .. sid ..
      "' -F path=big.bin -F file=@" .. server.q(big) .. " " ..
      server.q(small.url .. DP .. "api/files"))
    assert.matches("\n200$", out)
    small:destroy()
  end)

  it("40: download returns the bytes and attachment headers", function()
    srv:write(id, "dl/data.csv", "a,b\n1,2\n")
    local status, body, h = srv:download(id, "dl/data.csv")
    assert.equal(200, status)
    assert.equal("a,b\n1,2\n", body)
    assert.equal('attachment; filename="data.csv"', h["content-disposition"])
    assert.equal("text/csv", h["content-type"])
    assert.truthy(h["last-modified"])
    status, body = srv:download(id, "/tmp/value.txt")
    assert.equal(200, status)
    assert.equal("42", body)
  end)

  it("40: SDK-style downloads name the tree without the leading /",
     function()
    -- the SDK strips every leading '/' of download paths
    local status, body = srv:download(id, "workspace/dl/data.csv")
    assert.equal(200, status)
    assert.equal("a,b\n1,2\n", body)
    status, body = srv:download(id, "tmp/value.txt")
    assert.equal(200, status)
    assert.equal("42", body)
    status, body = srv:download(id, "home/sandbox/.rc")
    assert.equal(200, status)
    assert.equal("rc", body)
  end)

  it("40: downloads binary content and index.html intact", function()
    local bin = {}
    for i = 0, 255 do bin[#bin + 1] = string.char(i) end
    srv:write(id, "bin/all.bin", table.concat(bin))
    local _, body = srv:download(id, "bin/all.bin")
    assert.equal(table.concat(bin), body)
    srv:write(id, "site/index.html", "<p>")
    local status
    status, body = srv:download(id, "site/index.html")
    assert.equal(200, status)
    assert.equal("<p>", body)
  end)

  it("41: missing files are 404, directories 400", function()
    local status, body = srv:download(id, "missing.txt")
    assert.equal(404, status)
    assert.same({ error = "File not found", code = 404 },
                require("cjson").decode(body))
    status, body = srv:download(id, "a")
    assert.equal(400, status)
    assert.same({ error = "Path is a directory, not a file", code = 400 },
                require("cjson").decode(body))
    status = srv:download(id, "")
    assert.equal(400, status)
  end)

  it("42: listing has exactly the PicoD fields, sorted", function()
    srv:sh(id, "mkdir -p l/sub && echo -n 12345 > l/b.txt && " ..
               "echo > l/.dot && ln -s b.txt l/link && mkdir l/empty")
    local status, j = srv:list(id, "l")
    assert.equal(200, status)
    local names = {}
    for _, f in ipairs(j.files) do
      names[#names + 1] = f.name
      local keys = {}
      for k in pairs(f) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "is_dir", "mode", "modified", "name", "size" }, keys)
    end
    assert.same({ ".dot", "b.txt", "empty", "link", "sub" }, names)
    assert.equal(5, j.files[2].size)
    assert.is_true(j.files[5].is_dir)
    assert.matches("^drwx", j.files[5].mode)
    assert.matches("^L", j.files[4].mode)
    assert.is_false(j.files[4].is_dir)
    local text
    status, text = srv:request{ path = DP .. "api/files?path=l/empty",
                                session = id }
    assert.equal(200, status)
    assert.equal('{"files":[]}', text)
  end)

  it("43: list needs a path; a missing directory is 404", function()
    local status, j = srv:json("GET", DP .. "api/files", nil,
                               { session = id })
    assert.equal(400, status)
    assert.same({ error = "Missing 'path' query parameter", code = 400 }, j)
    status, j = srv:list(id, "nope")
    assert.equal(404, status)
    assert.same({ error = "Directory not found", code = 404 }, j)
  end)

  it("44: symlinks never lead out of the session", function()
    srv:sh(id, "ln -sf /etc/passwd pw; ln -sf ../../../../../.. up; " ..
               "ln -sf /proc/self/root/etc/hostname magic; ln -sf /etc etcdir")
    for _, p in ipairs{ "pw", "up/etc/passwd", "magic", "etcdir/passwd" } do
      local status, body = srv:download(id, p)
      assert.is_true(status == 404 or status == 400, p)
      assert.is_nil(body:find("root:", 1, true), p)
    end
    local status = srv:list(id, "etcdir")
    assert.is_true(status == 404 or status == 400)
    -- writing through a planted link replaces the link, never the target
    srv:sh(id, "ln -sf /home/sandbox/.keep target.txt; echo keep > ~/.keep")
    status = srv:write(id, "target.txt", "new")
    assert.equal(200, status)
    local out = srv:sh(id, "cat ~/.keep; cat target.txt; " ..
                           "test -L target.txt && echo link || echo file")
    assert.equal("keep\nnewfile\n", out)
  end)

  it("45: responses are identity-encoded", function()
    local status, _, h = srv:request{ path = DP .. "api/files?path=.",
      session = id, headers = { ["Accept-Encoding"] = "gzip" } }
    assert.equal(200, status)
    assert.is_nil(h["content-encoding"])
  end)

  it("write_file content is base64 of the exact bytes", function()
    local s = "line1\nünïcödé\0nul"
    srv:json("POST", DP .. "api/files", { path = "u.txt",
             content = b64.encode(s) }, { session = id })
    local _, body = srv:download(id, "u.txt")
    assert.equal(s, body)
  end)

  -- Found by fuzz_multipart: libmicrohttpd hands a part without a name
  -- over with a NULL name, which crashed the server (SIGSEGV).
  it("skips a multipart part without a name, as Go does", function()
    local body = "--XyZ\r\nContent-Disposition: form-data; nam=\"path\"" ..
      "\r\n\r\nignored\r\n--XyZ\r\nContent-Disposition: form-data; " ..
      "name=\"path\"\r\n\r\nnameless.txt\r\n--XyZ\r\n" ..
      "Content-Disposition: form-data; filename=\"x\"\r\n\r\nno name" ..
      "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; " ..
      "filename=\"n\"\r\n\r\ncontent\r\n--XyZ--\r\n"
    local status, j = srv:request{ method = "POST", path = server.DP ..
      "api/files", session = id,
      headers = { ["Content-Type"] = "multipart/form-data; boundary=XyZ" },
      body = body }
    assert.equal(200, status, tostring(j))
    local _, got = srv:download(id, "nameless.txt")
    assert.equal("content", got)
    -- the server is still there (control: it answers)
    assert.equal(200, (srv:request{ path = "/health" }))
  end)
  it("JSON upload: a bad body is 400 with the reason, and writes nothing",
     function()
    local function up(body)
      local status, j = srv:json("POST", DP .. "api/files", body,
                                 { session = id })
      return status, type(j) == "table" and j.error or tostring(j)
    end
    local cases = {
      { "[1]", "request body must be a JSON object with path and content" },
      { "{", "request body must be a JSON object with path and content: " },
      { { path = "bj1.txt" }, "content is required and must be a base64 " ..
        "string" },
      { { path = "bj1.txt", content = 5 }, "content is required and must " ..
        "be a base64 string" },
      { { path = "bj1.txt", content = "", mode = 644 }, "mode must be a " ..
        "string such as \"0644\"" },
      { { path = 7, content = "" }, "path is required and must be a " ..
        "non-empty string" },
      -- base64 that stops in the middle of a group, and data after the
      -- padding: refused like Go's decoder, never a truncated file
      { { path = "bj1.txt", content = "QUJ" }, "Invalid base64 content: " ..
        "illegal base64 data at input byte 3" },
      { { path = "bj1.txt", content = "QQ==QUJD" }, "Invalid base64 " ..
        "content: illegal base64 data" },
    }
    for _, c in ipairs(cases) do
      local status, why = up(c[1])
      assert.equal(400, status, why)
      assert.equal(c[2], why:sub(1, #c[2]))
    end
    assert.equal(404, (srv:download(id, "bj1.txt")))
    -- control: the same upload with good content is written
    local status = up({ path = "bj1.txt", content = "QUJD" })
    assert.equal(200, status)
    local _, got = srv:download(id, "bj1.txt")
    assert.equal("ABC", got)
  end)

  it("multipart: an over-long field, a refused path and a body without " ..
     "a boundary are 400 with the reason", function()
    local function multipart(parts, ctype)
      local b = {}
      for _, p in ipairs(parts) do
        b[#b + 1] = "--XyZ\r\nContent-Disposition: form-data; name=\"" ..
          p[1] .. "\"" .. (p[1] == "file" and "; filename=\"f\"" or "") ..
          "\r\n\r\n" .. p[2] .. "\r\n"
      end
      b[#b + 1] = "--XyZ--\r\n"
      local status, text = srv:request{ method = "POST", path = DP ..
        "api/files", session = id, body = table.concat(b),
        headers = { ["Content-Type"] = ctype or
                    "multipart/form-data; boundary=XyZ" } }
      local j = require("cjson.safe").decode(text)
      return status, type(j) == "table" and j.error or text
    end
    local status, why = multipart{ { "path", ("p"):rep(9000) },
                                   { "file", "x" } }
    assert.equal(400, status)
    assert.equal("path is too long", why)
    status, why = multipart{ { "path", "mp1.txt" }, { "mode", ("7"):rep(9000) },
                             { "file", "x" } }
    assert.equal(400, status)
    assert.equal("mode is too long", why)
    -- a path outside the session's trees, with content and empty
    for _, content in ipairs{ "x", "" } do
      status, why = multipart{ { "path", "../mp-out.txt" },
                               { "file", content } }
      assert.equal(400, status, why)
      assert.matches("mp%-out", why)
    end
    status, why = multipart({ { "path", "mp1.txt" }, { "file", "x" } },
                            "multipart/form-data")
    assert.equal(400, status)
    assert.equal("malformed multipart request", why)
    assert.equal(404, (srv:download(id, "mp1.txt")))
    -- control: the same upload with a boundary is written
    status, why = multipart{ { "path", "mp1.txt" }, { "file", "x" } }
    assert.equal(200, status, why)
    local _, got = srv:download(id, "mp1.txt")
    assert.equal("x", got)
  end)
end)
