-- Sandbox images: building (mmdebstrap, rootfs:, oci: with umoci), the
-- store's guarantees (cache hits, in-use refusal, concurrent builds,
-- nothing left by a failed build) and sessions on an image.
local server = require "server"
local images = require "images"
local q, sh = server.q, server.sh

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() end
  return f ~= nil
end

local function listdir(dir)
  local p = io.popen("ls -A " .. q(dir) .. " 2>/dev/null")
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return table.concat(t, "\n")
end

-- A tiny tree of no particular distribution: the host's cat and ls with
-- the libraries they load, and a marker file.
local function make_tree(dir, marker)
  sh("mkdir -p " .. q(dir) .. "/usr/bin " .. q(dir) .. "/usr/share " ..
     q(dir) .. "/etc && ln -s usr/bin " .. q(dir) .. "/bin")
  for _, b in ipairs{ "/usr/bin/cat", "/usr/bin/ls" } do
    sh("cp " .. b .. " " .. q(dir) .. "/usr/bin/")
    sh("for l in $(ldd " .. b .. " | grep -o '/[^ ]*'); do " ..
       "mkdir -p " .. q(dir) .. "$(dirname $l); cp -L $l " .. q(dir) ..
       "$l; done")
  end
  local f = assert(io.open(dir .. "/usr/share/marker", "w"))
  f:write(marker)
  f:close()
end

-- A server stopped even when the test fails half-way.
local function start(opts)
  local srv = server.start(opts)
  finally(function() if srv.proc then srv:destroy() end end)
  return srv
end

describe("sandbox images", function()
  local tmp

  setup(function()
    tmp = server.tmpdir("agentcube-images")
  end)

  teardown(function()
    sh("rm -rf " .. q(tmp))
  end)

  describe("a Debian image (mmdebstrap)", function()
    local srv, id

    setup(function()
      images.ensure()
      srv = server.start(images.server_opts{
        config = "templates:\n  - name: plain\n    image: null\n" ..
                 "  - name: net\n    network: true\n" })
      id = srv:create()
    end)

    teardown(function()
      if srv then srv:destroy() end
    end)

    it("a second build is a no-op", function()
      local t0 = os.time()
      local code, out = images.cli("build", images.config)
      assert.equal(0, code, out)
      assert.matches("up to date", out, 1, true)
      assert.is_nil(out:find("built in", 1, true))
      assert.is_true(os.time() - t0 < 30)
    end)

    it("sessions on it run python and see only the image's packages",
       function()
      local out, err, code = srv:sh(id, "python3 -c 'import sys, ctypes; " ..
        "print(sys.version_info[:2])'; cat /etc/debian_version; " ..
        "dpkg-query -W | wc -l; ls /usr/bin/gcc /usr/bin/curl /usr/bin/lua5.4 " ..
        "2>&1; true")
      assert.equal(0, code, err)
      assert.matches("^%(3, %d+%)\n", out)
      assert.matches("No such file or directory", out, 1, true)
      local npkg = tonumber(out:match("\n(%d+)\n"))
      assert.truthy(npkg, out)
      -- positive control: the host has those programs, and far more
      -- packages, and a session of a template without image sees them
      assert.is_true(exists("/usr/bin/gcc") and exists("/usr/bin/curl"))
      local p = io.popen("dpkg-query -W | wc -l")
      local host = tonumber(p:read("l"))
      p:close()
      assert.is_true(npkg < host, npkg .. " vs " .. host)
      assert.is_true(npkg < 120, tostring(npkg))
      local other = srv:create{ name = "plain", namespace = "default" }
      local o2 = srv:sh(other, "ls /usr/bin/gcc")
      assert.equal("/usr/bin/gcc\n", o2)
    end)

    it("/etc is the image's, with the runtime's users and hosts", function()
      local out = srv:sh(id, "cat /etc/passwd /etc/hosts; ls /etc/shadow " ..
                             "2>&1; id -un; cat /etc/os-release | head -1")
      assert.matches("^root:x:0:0:root:/root:/usr/sbin/nologin\n", out)
      assert.matches("127.0.1.1\tsandbox", out, 1, true)
      assert.matches("No such file or directory", out, 1, true)
      assert.matches("\nsandbox\n", out, 1, true)
      assert.matches("Debian", out, 1, true)
    end)

    it("with network: true, /etc/resolv.conf names the session's own " ..
       "resolver; without, it is empty", function()
      local net = srv:create{ name = "net", namespace = "default" }
      assert.equal("nameserver 169.254.1.1\n",
                   (srv:sh(net, "cat /etc/resolv.conf")))
      assert.equal("", (srv:sh(id, "cat /etc/resolv.conf")))
    end)

    it("is bound read-only and nosuid; its setuid binaries give nothing",
       function()
      local out = srv:sh(id, "grep -E ' /(usr|etc) ' /proc/self/mountinfo; " ..
        "stat -c %A /usr/bin/su; su -c id root 2>&1; id -u; " ..
        "grep NoNewPrivs /proc/self/status; touch /usr/x 2>&1; true")
      -- positive control: the image does carry a setuid su
      assert.matches("%-rws", out)
      for line in out:gmatch("[^\n]* /usr [^\n]*") do
        assert.matches("[ ,]ro[ ,]", line)
        assert.matches("nosuid", line)
      end
      assert.matches("NoNewPrivs:%s+1", out)
      assert.matches("Read%-only file system", out)
      assert.matches("\n1000\n", out)
    end)

    it("is shared, never copied per session", function()
      local a = srv:sh(id, "stat -c %i /usr/bin/python3.11")
      local other = srv:create()
      local b = srv:sh(other, "stat -c %i /usr/bin/python3.11")
      assert.equal(a, b)
      local p = io.popen("stat -c %i " .. q(images.dir .. "/" ..
                         images.id() .. "/rootfs/usr/bin/python3.11"))
      local host = p:read("a")
      p:close()
      assert.equal(host, a)
    end)

    it("image ls shows the image, its template and its sessions", function()
      local code, out = images.cli("ls", images.config)
      assert.equal(0, code, out)
      assert.matches("debian%-%x+%s+[%d.]+M%s+%d+%-%d+%-%d+ [%d:]+%s+%d+%s+default",
                     out)
    end)
  end)

  describe("an image that is not built", function()
    it("refuses sessions and names the command that builds it", function()
      local store = tmp .. "/empty-store"
      local srv = start{ config = "templates:\n  - name: nb\n" ..
        "    image: { rootfs: " .. tmp .. "/nothing-here }\n",
        args = { "--image-dir", store } }
      local status, j = srv:json("POST", "/v1/code-interpreter",
                                 { name = "nb", namespace = "default" })
      local _, list = srv:json("GET", "/v1/code-interpreter/sessions")
      srv:destroy()
      assert.equal(503, status)
      local msg = type(j) == "table" and (j.message or j.error) or tostring(j)
      assert.matches("template 'nb': image rootfs%-%x+ is not built; run: " ..
                     "agentcube image build %-%-config [^ ]+ %-%-image%-dir " ..
                     "[^ ]+ nb", tostring(msg))
      assert.equal(0, #list.sessions)
    end)

    it("is built first, and again on demand, with --build-images",
       function()
      local tree, store = tmp .. "/ondemand", tmp .. "/ondemand-store"
      make_tree(tree, "on demand\n")
      local cfg = "templates:\n  - name: od\n    warmPoolSize: 0\n" ..
                  "    image: { rootfs: " .. tree .. " }\n"
      local srv = start{ config = cfg,
                         args = { "--image-dir", store, "--build-images" } }
      assert.matches("rootfs%-%x+\n", listdir(store))   -- before any session
      local id = srv:create{ name = "od", namespace = "default" }
      local _, j = srv:exec(id, { "cat", "/usr/share/marker" })
      assert.equal("on demand\n", j.stdout)
      srv:delete(id)
      -- removed while the server runs: the next session builds it again
      local rc, rm
      for _ = 1, 50 do
        rc, rm = images.cli("rm od", cfg, store)
        if rc == 0 then break end
        os.execute("sleep 0.1")
      end
      assert.equal(0, rc, rm)
      id = srv:create{ name = "od", namespace = "default" }
      _, j = srv:exec(id, { "cat", "/usr/share/marker" })
      assert.equal("on demand\n", j.stdout)
    end)
  end)

  describe("rootfs: and oci:", function()
    it("a rootfs: tree runs sessions; image rm is refused while in use",
       function()
      local tree, store = tmp .. "/tree", tmp .. "/store-rootfs"
      make_tree(tree, "from a tree\n")
      local cfg = "templates:\n  - name: tree\n    warmPoolSize: 0\n" ..
                  "    image: { rootfs: " .. tree .. " }\n"
      local code, out = images.cli("build", cfg, store)
      assert.equal(0, code, out)
      assert.matches("built in", out, 1, true)
      local srv = start{ config = cfg, args = { "--image-dir", store } }
      local id = srv:create{ name = "tree", namespace = "default" }
      local _, j = srv:exec(id, { "cat", "/usr/share/marker" })
      assert.equal("from a tree\n", j.stdout)
      local _, l = srv:exec(id, { "ls", "/usr/bin" })
      assert.equal("cat\nls\n", l.stdout)
      -- in use: refused, exit 3
      local rc, rm = images.cli("rm tree", cfg, store)
      assert.equal(3, rc, rm)
      assert.matches("in use by 1 session", rm, 1, true)
      assert.matches("rootfs%-%x+\n", listdir(store))
      -- the session gone, rm works
      srv:delete(id)
      srv:destroy()
      rc, rm = images.cli("rm tree", cfg, store)
      assert.equal(0, rc, rm)
      assert.is_nil(listdir(store):find("rootfs%-%x+\n"))
      assert.is_nil(listdir(store):find("rootfs%-%x+$"))
    end)

    it("prune keeps what templates name or sessions use", function()
      local store = tmp .. "/store-prune"
      local t1, t2 = tmp .. "/prune1", tmp .. "/prune2"
      make_tree(t1, "one\n")
      make_tree(t2, "two\n")
      local both = "templates:\n  - name: one\n    image: { rootfs: " ..
                   t1 .. " }\n  - name: two\n    image: { rootfs: " ..
                   t2 .. " }\n"
      local only1 = "templates:\n  - name: one\n    image: { rootfs: " ..
                    t1 .. " }\n"
      local code, out = images.cli("build", both, store)
      assert.equal(0, code, out)
      local _, ls = images.cli("ls", both, store)
      local id1 = ls:match("(rootfs%-%x+) [^\n]* one ")
      local id2 = ls:match("(rootfs%-%x+) [^\n]* two ")
      assert.truthy(id1 and id2, ls)
      -- what a build killed with -9 left: swept by prune
      sh("mkdir -p " .. q(store .. "/.build-" .. id2 .. "-999999/rootfs"))
      code, out = images.cli("prune", only1, store)
      assert.equal(0, code, out)
      assert.equal("removed " .. id2 .. "\n", out)
      local entries = listdir(store)
      assert.truthy(entries:find(id1 .. "\n", 1, true), entries)
      assert.is_nil(entries:find(id2 .. "\n", 1, true), entries)
      assert.is_nil(entries:find(".build-", 1, true), entries)
      -- a session's image is kept even when no template names it
      local srv = start{ config = only1, args = { "--image-dir", store } }
      local id = srv:create{ name = "one", namespace = "default" }
      code, out = images.cli("prune", "", store)
      assert.equal(0, code, out)
      assert.truthy(listdir(store):find(id1 .. "\n", 1, true))
      srv:delete(id)
      srv:destroy()
      code, out = images.cli("prune", "", store)
      assert.equal(0, code, out)
      assert.equal("removed " .. id1 .. "\n", out)
    end)

    it("an oci: layout made with umoci runs sessions", function()
      local layout, bundle = tmp .. "/layout", tmp .. "/bundle"
      local store = tmp .. "/store-oci"
      assert.is_true(sh("umoci init --layout " .. q(layout) ..
        " && umoci new --image " .. q(layout .. ":v1") ..
        " && umoci unpack --image " .. q(layout .. ":v1") .. " " ..
        q(bundle)))
      make_tree(bundle .. "/rootfs", "from oci\n")
      assert.is_true(sh("umoci repack --image " .. q(layout .. ":v1") ..
                        " " .. q(bundle)))
      local cfg = "templates:\n  - name: oci\n    warmPoolSize: 0\n" ..
                  "    image: { oci: " .. layout .. ":v1 }\n"
      local code, out = images.cli("build", cfg, store)
      assert.equal(0, code, out)
      local srv = start{ config = cfg, args = { "--image-dir", store } }
      local id = srv:create{ name = "oci", namespace = "default" }
      local _, j = srv:exec(id, { "cat", "/usr/share/marker" })
      srv:destroy()
      assert.equal("from oci\n", j.stdout)
      -- a new manifest is a new image
      sh("umoci unpack --image " .. q(layout .. ":v1") .. " " ..
         q(bundle .. "2") .. " && echo changed > " ..
         q(bundle .. "2/rootfs/usr/share/marker") .. " && umoci repack " ..
         "--image " .. q(layout .. ":v1") .. " " .. q(bundle .. "2"))
      local _, ls1 = images.cli("ls", cfg, store)
      assert.matches("%(not built%)", ls1)
    end)

    it("two concurrent builds of one image make it once", function()
      local tree, store = tmp .. "/tree2", tmp .. "/store-conc"
      make_tree(tree, "concurrent\n")
      -- some bulk, so that the two builds overlap
      sh("dd if=/dev/urandom of=" .. q(tree) .. "/usr/share/bulk bs=1M " ..
         "count=64 2>/dev/null")
      local cfg = tmp .. "/conc.yaml"
      local f = assert(io.open(cfg, "w"))
      f:write("templates:\n  - name: c\n    image: { rootfs: " .. tree ..
              " }\n")
      f:close()
      local cmd = q(images.bin) .. " image build --config " .. q(cfg) ..
                  " --image-dir " .. q(store)
      assert.is_true(sh("(" .. cmd .. " > " .. q(tmp .. "/b1") ..
        " 2>&1 & " .. cmd .. " > " .. q(tmp .. "/b2") .. " 2>&1 & " ..
        "wait %1 && wait %2)"))
      local o1 = server.read_file(tmp .. "/b1")
      local o2 = server.read_file(tmp .. "/b2")
      local built = select(2, (o1 .. o2):gsub("built in", ""))
      local fresh = select(2, (o1 .. o2):gsub("up to date", ""))
      assert.equal(1, built, o1 .. o2)
      assert.equal(1, fresh, o1 .. o2)
      local entries = listdir(store)
      assert.is_nil(entries:find(".build-", 1, true), entries)
      local p = io.popen("cmp " .. q(tree .. "/usr/share/bulk") .. " " ..
                         q(store) .. "/rootfs-*/rootfs/usr/share/bulk " ..
                         "&& echo same")
      assert.equal("same", p:read("l"))
      p:close()
    end)
  end)

  describe("the data example", function()
    it("workflows/pandas-chart.yaml charts a CSV with pandas and matplotlib",
       function()
      local root = images.bin:gsub("/[^/]*/[^/]*$", "")
      local cfg = server.read_file(root .. "/workflows/templates/pydata.yaml")
      local _, ls = images.cli("ls", cfg)
      if ls:find("not built", 1, true) and
         os.getenv("AGENTCUBE_TEST_DATA_IMAGE") ~= "1" then
        pending("the pandas image is not in " .. images.dir .. " (make " ..
                "bench builds it; AGENTCUBE_TEST_DATA_IMAGE=1 builds it here)")
        return
      end
      local srv = start{ config = cfg, args = { "--image-dir", images.dir,
                                                "--build-images" } }
      local out = tmp .. "/chart"
      local p = io.popen("WORKLOAD_MANAGER_URL=" .. q(srv.url) ..
        " ROUTER_URL=" .. q(srv.url) .. " " .. q(images.bin) .. " run " ..
        q(root .. "/workflows/pandas-chart.yaml") .. " --json --set out=" ..
        q(out) .. " 2>&1")
      local text = p:read("a")
      p:close()
      local rep = require("cjson").decode(text:match("{.*}"))
      assert.equal("success", rep.status, text)
      assert.equal(12, rep.outputs.rows)
      -- the same sums, computed here from the CSV
      local sums, best = {}, nil
      for region, amount in server.read_file(root ..
          "/workflows/data/sales.csv"):gmatch("\n[^,]+,(%w+),[^,]+,[^,]+,([%d.]+)") do
        sums[region] = (sums[region] or 0) + tonumber(amount)
        if best == nil or sums[region] > sums[best] then best = region end
      end
      for r, v in pairs(sums) do
        if v > sums[best] then best = r end
      end
      assert.equal(best, rep.outputs.best)
      local png = server.read_file(out .. "/chart.png")
      assert.equal("\137PNG\r\n\26\n", png:sub(1, 8))
      assert.is_true(#png > 5000)
      assert.matches("^region,count,sum,mean\r?\n",
                     server.read_file(out .. "/by_region.csv"))
    end)
  end)

  describe("the image command's mistakes", function()
    -- `agentcube image ...` without --config/--image-dir: the raw command
    local function run(args)
      local out = os.tmpname()
      local ok, _, code = os.execute(q(images.bin) .. " image " .. args ..
                                     " >" .. q(out) .. " 2>&1")
      local text = server.read_file(out) or ""
      os.remove(out)
      return ok and 0 or code, text
    end

    it("usage errors exit 2 and say what is wrong; --help exits 0",
       function()
      local store = tmp .. "/store-usage"
      local code, out = run("")
      assert.equal(2, code, out)
      assert.matches("usage: agentcube image build", out, 1, true)
      code, out = run("--help")
      assert.equal(0, code, out)
      assert.matches("usage: agentcube image build", out, 1, true)
      code, out = run("bulid")
      assert.equal(2, code, out)
      assert.matches("unknown command 'bulid'", out, 1, true)
      code, out = images.cli("rm", "", store)
      assert.equal(2, code, out)
      assert.matches("usage:", out, 1, true)
      code, out = images.cli("ls extra", "", store)
      assert.equal(2, code, out)
      code, out = images.cli("prune extra", "", store)
      assert.equal(2, code, out)
      code, out = images.cli("build --bogus", "", store)
      assert.equal(2, code, out)
      assert.matches("usage:", out, 1, true)
      -- control: the same store lists fine
      code, out = images.cli("ls", "", store)
      assert.equal(0, code, out)
      assert.matches("^IMAGE ", out)
    end)

    it("a bad configuration, an unknown template or none with an image " ..
       "exit 2 and name it", function()
      local store = tmp .. "/store-cfg"
      local code, out = images.cli("ls", "templates:\n  - nmae: x\n", store)
      assert.equal(2, code, out)
      assert.matches("agentcube image: [^\n]*:2:5: unknown template key " ..
                     "'nmae'", out)
      code, out = images.cli("build nosuch", "templates:\n  - name: t\n",
                             store)
      assert.equal(2, code, out)
      assert.matches("no template 'nosuch' with an image in ", out, 1, true)
      code, out = images.cli("build", "templates:\n  - name: t\n", store)
      assert.equal(2, code, out)
      assert.matches("no template has an image in ", out, 1, true)
      -- rm of an image that is not there: exit 1 and which
      code, out = images.cli("rm rootfs-0123456789abcdef", "", store)
      assert.equal(1, code, out)
      assert.matches("no image rootfs-0123456789abcdef in ", out, 1, true)
    end)
  end)

  describe("failed and interrupted builds", function()
    it("a bad package name reports apt's error and leaves nothing",
       function()
      local store = tmp .. "/store-bad"
      local cfg = "templates:\n  - name: bad\n    image: { packages: " ..
                  "[python3-minimal, agentcube-no-such-package] }\n"
      local code, out = images.cli("build", cfg, store)
      assert.equal(1, code, out)
      assert.matches("Unable to locate package agentcube%-no%-such%-package",
                     out)
      assert.matches("building debian%-%x+ for template 'bad'", out)
      local entries = listdir(store)
      assert.is_nil(entries:find("debian%-%x+\n"), entries)
      assert.is_nil(entries:find("debian%-%x+$"), entries)
      assert.is_nil(entries:find(".build-", 1, true), entries)
      local _, ls = images.cli("ls", cfg, store)
      assert.matches("%(not built%)", ls)
    end)

    it("an interrupted build leaves nothing under the image's name",
       function()
      local tree, store = tmp .. "/tree3", tmp .. "/store-int"
      make_tree(tree, "interrupted\n")
      sh("dd if=/dev/zero of=" .. q(tree) .. "/usr/share/bulk bs=1M " ..
         "count=1500 2>/dev/null")
      local cfg = tmp .. "/int.yaml"
      local f = assert(io.open(cfg, "w"))
      f:write("templates:\n  - name: i\n    image: { rootfs: " .. tree ..
              " }\n")
      f:close()
      local p = io.popen(q(images.bin) .. " image build --config " ..
        q(cfg) .. " --image-dir " .. q(store) .. " >/dev/null 2>&1 & " ..
        "pid=$!; sleep 0.5; kill -INT $pid; wait $pid; echo $?")
      local status = tonumber(p:read("l"))
      p:close()
      local entries = listdir(store)
      assert.is_nil(entries:find(".build-", 1, true), entries)
      if status == 130 then
        assert.is_nil(entries:find("rootfs%-%x+\n"), entries)
        assert.is_nil(entries:find("rootfs%-%x+$"), entries)
      else
        -- the copy won the race: then the image is complete
        assert.equal(0, status)
        local _, ls = images.cli("ls", "templates:\n  - name: i\n    " ..
          "image: { rootfs: " .. tree .. " }\n", store)
        assert.is_nil(ls:find("not built", 1, true), ls)
      end
    end)
  end)
end)
