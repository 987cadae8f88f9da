-- The escape and abuse corpus (docs/sandbox.md §6), run through the
-- HTTP API against a real server. Every test plants its own canaries on
-- the host and asserts the safe outcome.
local server = require "server"
local images = require "images"

local function probe_lines(out)
  local r = {}
  for k, v in out:gmatch("([%w_]+): ([^\n]+)") do r[k] = v end
  return r
end

-- The whole corpus runs once per sandbox flavour: the host's /usr, and a
-- template with an image (its own /usr and /etc, setuid binaries inside).
for _, flavour in ipairs(images.variants()) do
describe("sandbox security corpus" .. flavour.label, function()
  local srv, id, other, canary_dir
  local CANARY = "agentcube-canary-" .. tostring(os.time())

  setup(function()
    canary_dir = server.tmpdir("agentcube-canary")
    -- B1/B2: a 0600 root-owned secret and a world-readable one on the host
    os.execute("echo " .. CANARY .. " > " .. canary_dir .. "/secret; " ..
               "chmod 600 " .. canary_dir .. "/secret; " ..
               "echo " .. CANARY .. " > /root/agentcube-canary 2>/dev/null; " ..
               "chmod 600 /root/agentcube-canary 2>/dev/null")
    -- the server's own environment holds a canary (E2, /proc/1/environ)
    srv = server.start(flavour.opts{ auth = true,
                                     env = { SBX_CANARY = CANARY } })
    id = srv:create()
    other = srv:create()
    local probe = server.read_file("tests/security/probe.py")
    assert.equal(200, (srv:write(id, "probe.py", probe)))
  end)

  teardown(function()
    srv:destroy()
    os.execute("rm -rf " .. server.q(canary_dir) ..
               " /root/agentcube-canary")
  end)

  local function py(args, timeout)
    local out, err, code = srv:sh(id, "python3 probe.py " .. args, timeout)
    assert.equal(0, code, err)
    return probe_lines(out)
  end

  -- the same probe on the host, outside any sandbox: the positive control
  local function host_py(args)
    local p = io.popen("python3 tests/security/probe.py " .. args .. " 2>&1")
    local out = p:read("a")
    p:close()
    return probe_lines(out)
  end

  local function host(cmd)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    return out
  end

  -- size, link count, mode and content hash of a host file, to re-read it
  -- after every attempt to write it
  local function fingerprint(path)
    return host("stat -c '%s %h %a %i' " .. server.q(path) ..
                " 2>&1; sha256sum " .. server.q(path) .. " 2>&1")
  end

  describe("B: filesystem, processes, kernel", function()
    it("B1: host files and the server's state are not there", function()
      local out = srv:sh(id, "cat /root/agentcube-canary " .. canary_dir ..
        "/secret " .. srv.state_dir .. "/token /etc/shadow 2>&1; " ..
        "ls /home /root /var /sys 2>&1; true")
      assert.is_nil(out:find(CANARY, 1, true))
      assert.is_nil(out:find(srv.token, 1, true))
      assert.matches("No such file or directory", out, 1, true)
    end)

    it("B3: /proc shows only the sandbox's own processes", function()
      local out = srv:sh(id, "ls /proc | grep -E '^[0-9]+$' | wc -l; " ..
                             "ls /proc/1/root/")
      local n = tonumber(out:match("^(%d+)"))
      assert.is_true(n <= 6, out)
      assert.is_nil(out:find("boot", 1, true))
    end)

    it("B2/E2: the sandbox is unprivileged and sees no host env", function()
      local out = srv:sh(id, "id -u; tr '\\0' '\\n' < /proc/1/environ; env; " ..
        "grep -E '^(Cap(Eff|Prm)|NoNewPrivs|Seccomp):' /proc/self/status")
      assert.is_nil(out:find(CANARY, 1, true))
      assert.matches("^1000\n", out)
      assert.matches("CapEff:%s+0000000000000000", out)
      assert.matches("NoNewPrivs:%s+1", out)
      assert.matches("Seccomp:%s+2", out)
      -- seen from the host, the command runs as an unprivileged uid
      local mark = "sleep 3." .. tostring(os.time() % 997)
      local bg = io.popen("curl -s -o /dev/null -X POST " ..
        (srv.token and ("-H 'Authorization: Bearer " .. srv.token .. "' ")
         or "") .. "-H 'x-agentcube-session-id: " .. id .. "' -d " ..
        server.q('{"command":["' .. mark:gsub(" ", '","') .. '"]}') .. " " ..
        server.q(srv.url .. server.DP .. "api/execute"))
      local uid
      for _ = 1, 50 do
        os.execute("sleep 0.1")
        local p = io.popen("ps -o uid= -p \"$(pgrep -f '^" .. mark ..
                           "$' | head -1)\" 2>/dev/null")
        uid = tonumber(p:read("a"):match("%d+"))
        p:close()
        if uid then break end
      end
      bg:close()
      assert.truthy(uid)
      assert.is_true(uid >= 200000, "host uid " .. tostring(uid))
    end)

    it("B5: system files are read-only; /proc/self/exe cannot be written",
       function()
      local py3 = host("readlink -f /usr/bin/python3"):gsub("%s+$", "")
      local site = "/usr/lib/python3/dist-packages/sitecustomize.py"
      local before = fingerprint(py3)
      assert.is_nil(before:find("No such", 1, true), before)
      assert.is_nil(host("ls " .. site .. " 2>/dev/null"):find("site", 1,
                                                              true))
      -- control: the same shell can write where writing is allowed
      assert.equal("w=0\n", (srv:sh(id, "echo x > /tmp/w; echo w=$?")))
      local out = srv:sh(id, "{ echo x >> " .. py3 .. "; } 2>&1; echo rc=$?")
      assert.is_truthy(out:find("Read-only file system", 1, true) or
                       out:find("Permission denied", 1, true), out)
      assert.matches("rc=1", out, 1, true)
      assert.equal(before, fingerprint(py3))
      out = srv:sh(id, "{ echo x > " .. site .. "; } 2>&1; echo rc=$?")
      -- read-only where the directory exists (host /usr); an image may
      -- not have the directory at all
      assert.is_truthy(out:find("Read-only file system", 1, true) or
                       out:find("No such file or directory", 1, true), out)
      assert.matches("rc=1", out, 1, true)
      assert.equal("", host("ls " .. site .. " 2>/dev/null"))
      out = srv:sh(id, "python3 -c 'open(\"/proc/self/exe\",\"r+b\")." ..
                       "write(b\"x\")' 2>&1 | tail -1; true")
      assert.is_truthy(out:find("Text file busy", 1, true) or
                       out:find("Permission denied: '/proc/self/exe'", 1,
                                true), out)
      assert.equal(before, fingerprint(py3))
    end)

    it("B7-B10, B14: dangerous syscalls are refused", function()
      local r = py("syscalls")
      for _, name in ipairs{ "unshare", "unshare_ns", "setns", "mount",
          "umount2", "pivot_root", "chroot", "keyctl", "add_key",
          "request_key", "ptrace", "perf_event_open", "bpf", "userfaultfd",
          "io_uring_setup", "kexec_load", "init_module", "open_by_handle_at",
          "name_to_handle_at", "syslog", "personality", "swapon", "reboot",
          "acct", "settimeofday", "clock_settime", "fsopen", "open_tree",
          "move_mount", "process_vm_readv", "kcmp", "pidfd_getfd", "iopl",
          "ioperm" } do
        assert.equal("EPERM", r[name], name)
      end
      assert.equal("ENOSYS", r.clone3)
    end)

    it("B9: no nested user namespaces, even through unshare(1)", function()
      local out = srv:sh(id, "unshare -Ur true 2>&1; echo rc=$?")
      assert.matches("rc=1", out, 1, true)
    end)

    it("B8: no mounts; no /sys; no cgroupfs", function()
      -- the mounts on /tmp, counted before and after (only those: other
      -- mounts may come and go meanwhile)
      local try = "n=$(grep -c ' /tmp ' /proc/self/mountinfo); " ..
        "mount -t tmpfs none /tmp 2>/dev/null; echo rc=$?; " ..
        "[ \"$(grep -c ' /tmp ' /proc/self/mountinfo)\" = \"$n\" ] && " ..
        "echo same"
      -- control: where mounting is allowed the same lines mount a tmpfs
      local ctl = host("unshare -m sh -c " .. server.q(try) .. " 2>&1")
      assert.matches("rc=0\n", ctl)
      assert.is_nil(ctl:find("same", 1, true))
      local out = srv:sh(id, try)
      assert.is_nil(out:find("rc=0\n", 1, true), out)
      assert.matches("same", out, 1, true)
      out = srv:sh(id, "ls /sys/fs/cgroup 2>&1; echo rc=$?")
      assert.is_nil(out:find("release_agent", 1, true))
      assert.matches("No such file or directory", out, 1, true)
      assert.is_nil(out:find("rc=0", 1, true))
    end)

    it("B11: devices cannot be made and host disks are absent", function()
      local out = srv:sh(id, "mknod /tmp/sda b 8 0 2>&1; ls /dev; true")
      assert.matches("Operation not permitted", out, 1, true)
      for _, dev in ipairs{ "kvm", "vda", "mem", "kmsg", "sda" } do
        assert.is_nil(out:find("\n" .. dev .. "\n", 1, true), dev)
      end
    end)

    it("B12: setuid binaries give no privilege", function()
      -- control: su is setuid root, on the host and inside
      assert.matches("^%-rwsr", host("stat -c %A /usr/bin/su"))
      assert.matches("^%-rwsr", (srv:sh(id, "stat -c %A /usr/bin/su")))
      -- the attempt: a setuid program started inside must not run as root;
      -- su would print 0 when it gets root, python reports the euid it got
      local out = srv:sh(id, "su -c 'id -u' root </dev/null 2>&1; " ..
        "echo rc=$?; cp /usr/bin/python3 /tmp/p 2>/dev/null; " ..
        "python3 -c 'import os; print(\"euid\", os.geteuid())'")
      assert.is_nil(out:find("^0\n") or out:find("\n0\n"), out)
      assert.is_nil(out:find("rc=0", 1, true), out)
      assert.matches("euid 1000\n", out, 1, true)
      -- NoNewPrivs means the kernel ignores the setuid bit on execve
      assert.matches("NoNewPrivs:%s+1", (srv:sh(id,
        "su -c true root </dev/null >/dev/null 2>&1; " ..
        "grep NoNewPrivs /proc/self/status")))
    end)

    it("B13: no controlling tty, TIOCSTI refused", function()
      local r = py("tiocsti")
      assert.matches("^notty", r.tiocsti)      -- no controlling terminal
      -- control: on the host (root) TIOCSTI on a pty of one's own works
      assert.equal("ALLOWED", host_py("tiocsti_pty").tiocsti_pty)
      -- inside, the same ioctl on a pty of the sandbox's own is refused
      assert.equal("EPERM", py("tiocsti_pty").tiocsti_pty)
    end)

    it("B14: hostname changes stay inside; kernel log is closed", function()
      local out = srv:sh(id, "hostname; hostname evil 2>/dev/null; " ..
        "echo rc=$?; hostname")
      assert.matches("^sandbox\n", out)
      -- control for the kernel log: the host's root reads it, and sees
      -- kernel addresses in kallsyms
      local kmsg = host("dmesg 2>/dev/null | head -3")
      assert.is_true(#kmsg > 0, "the host's kernel log is empty")
      assert.matches("ffffffff", host("head -1 /proc/kallsyms"))
      local dm = srv:sh(id, "dmesg 2>&1; echo rc=$?")
      assert.is_nil(dm:find(kmsg:match("^[^\n]+"), 1, true))
      assert.is_nil(dm:find("rc=0", 1, true), dm)
      local ks = srv:sh(id, "head -1 /proc/kallsyms 2>&1; true")
      assert.is_nil(ks:find("ffffffff", 1, true), ks)
      local p = io.popen("hostname")
      local hostname = p:read("l")
      p:close()
      assert.are_not.equal("evil", hostname)
    end)

    it("B15: signals cannot reach the server", function()
      srv:sh(id, "kill -9 -1; kill -STOP 1; true")
      local status, j = srv:json("GET", "/health")
      assert.equal(200, status)
      assert.equal("healthy", j.status)
      assert.equal("ok\n", (srv:sh(id, "echo ok")))
    end)

    it("B16/E3: one session cannot touch another", function()
      srv:sh(other, "echo private > secret.txt; echo x > /tmp/other")
      -- control: the owner sees its own secret
      assert.equal("private\nx\n",
                   (srv:sh(other, "cat /workspace/secret.txt /tmp/other")))
      local out = srv:sh(id, "cat /workspace/secret.txt /tmp/other 2>&1; " ..
        "ls /proc/*/root/workspace 2>&1; find / -name secret.txt " ..
        "-not -path '/proc/*' 2>/dev/null; true")
      assert.is_nil(out:find("private", 1, true))
      -- poisoning this session's home does not affect the other one
      srv:sh(id, "echo 'echo POISON' > ~/.bashrc; echo 'print(\"POISON\")' " ..
                 "> sitecustomize.py")
      -- control: the poison works in the session that planted it
      local o1 = srv:sh(id, "bash -ic true 2>/dev/null; python3 -c pass")
      assert.matches("POISON", o1, 1, true)
      local o2 = srv:sh(other, "bash -ic true 2>/dev/null; python3 -c pass")
      assert.is_nil(o2:find("POISON", 1, true))
      srv:sh(id, "rm -f ~/.bashrc sitecustomize.py")
    end)
  end)

  describe("C: network and IPC", function()
    it("C1/C2: no route out, the server and host services unreachable",
       function()
      local port = srv.url:match(":(%d+)$")
      -- a host listener on an abstract socket, for as long as the test runs
      local name = "agentcube-spec-" .. tostring(os.time()) .. "-" ..
                   tostring(math.random(1e6))
      local lst = io.popen("exec python3 -c " .. server.q(
        "import socket,sys,time\n" ..
        "s=socket.socket(socket.AF_UNIX);s.bind('\\0'+sys.argv[1])\n" ..
        "s.listen(8);print('ready',flush=True);time.sleep(120)") ..
        " " .. name .. " & echo $!")
      local lpid = lst:read("l")
      os.execute("sleep 0.5")
      -- control: from the host, the same probe reaches both listeners
      local h = host_py("connect 127.0.0.1 " .. port .. " " .. name)
      local r = py("connect 127.0.0.1 " .. port .. " " .. name)
      os.execute("kill " .. lpid)
      lst:close()
      assert.equal("ALLOWED", h.connect)
      assert.equal("ALLOWED", h.abstract)
      assert.equal("ECONNREFUSED", r.connect)
      assert.equal("ECONNREFUSED", r.abstract)
      assert.equal("EAI", r.dns)
      r = py("connect 192.0.2.1 80")   -- TEST-NET-1: never routed anywhere
      assert.equal("ENETUNREACH", r.connect)
      local out = srv:sh(id, "cat /proc/net/route | wc -l; ls /sys/class/net " ..
                             "2>&1; ip -o link 2>/dev/null | wc -l; true")
      assert.matches("^1\n", out)
    end)

    it("C5: netlink, packet and vsock sockets are refused", function()
      local r = py("sockets")
      assert.equal("EAFNOSUPPORT", r.netlink)
      assert.equal("EAFNOSUPPORT", r.packet)
      assert.equal("EAFNOSUPPORT", r.vsock)
      assert.equal("ALLOWED", r.unix)
    end)

    it("C4/C6: no host sockets, no shared SysV IPC", function()
      -- the other session holds a message queue while this one looks
      local bg = io.popen("curl -s -X POST " ..
        (srv.token and ("-H 'Authorization: Bearer " .. srv.token .. "' ")
         or "") .. "-H 'x-agentcube-session-id: " .. other .. "' -d " ..
        server.q('{"command":["sh","-c","ipcmk -Q >/dev/null && ' ..
                 'ipcs -q; sleep 4"]}') .. " " ..
        server.q(srv.url .. server.DP .. "api/execute"))
      os.execute("sleep 1.5")
      -- control: the host has sockets under /run
      assert.is_true(#host("ls /run") > 0)
      local out = srv:sh(id, "ls /run /var/run 2>&1; ipcs -q; true")
      local held = bg:read("a")
      bg:close()
      -- control: the queue existed, seen from the session that made it
      assert.matches("0x", held, 1, true)
      assert.matches("No such file or directory", out, 1, true)
      assert.is_nil(out:find("0x", 1, true))
    end)
  end)

  describe("D: resource abuse", function()
    it("D6: stdin is empty, so reading it does not hang", function()
      local out, _, code = srv:sh(id, "cat; read x; echo read=$?", "20s")
      assert.equal(0, code)
      assert.equal("read=1\n", out)
    end)

    it("D8: daemons die with their command", function()
      -- command lines no other process on this machine has
      local m = { server.marker(), server.marker(), server.marker() }
      srv:sh(id, "(setsid " .. m[1] .. " &); (nohup " .. m[2] .. " &); " ..
                 "(trap '' TERM HUP; " .. m[3] .. " &); disown -a; true")
      for _, mark in ipairs(m) do
        assert.equal("", server.capture("pgrep -f " ..
          server.q("^" .. mark .. "$")), mark)
      end
    end)

    it("D3: /dev/shm is small and charged to the session", function()
      local out = srv:sh(id, "dd if=/dev/zero of=/dev/shm/f bs=1M count=2000 " ..
                             "2>&1 | grep -v copied; rm -f /dev/shm/f")
      assert.matches("No space left on device", out, 1, true)
    end)
  end)

  describe("E: runtime and API", function()
    it("E1: argv that looks like bwrap options is just a program name",
       function()
      local status, j = srv:exec(id, { "--bind", "/", "/", "sh" })
      assert.equal(200, status)
      assert.are_not.equal(0, j.exit_code)
      status, j = srv:exec(id, { "--dev-bind", "/", "/", "cat",
                                 "/root/agentcube-canary" })
      assert.is_nil(j.stdout:find(CANARY, 1, true))
    end)

    it("E2: LD_PRELOAD and friends apply only inside", function()
      local status, j = srv:exec(id, { "/bin/sh", "-c",
                                       "echo $LD_PRELOAD,$BASH_ENV,$PATH" },
        { env = { LD_PRELOAD = "/workspace/evil.so", BASH_ENV = "/x",
                  PATH = "/workspace" } })
      assert.equal(200, status)
      -- control: the variables applied inside
      assert.equal("/workspace/evil.so,/x,/workspace\n", j.stdout)
      -- they reached neither the server nor the other session
      local env = host("tr '\\0' '\\n' < /proc/" .. srv.pid .. "/environ")
      assert.matches("SBX_CANARY=", env, 1, true)   -- control: readable
      assert.is_nil(env:find("evil.so", 1, true))
      local status2, j2 = srv:exec(other, { "sh", "-c",
        "echo [$LD_PRELOAD][$BASH_ENV]; command -v sh" })
      assert.equal(200, status2)
      assert.equal("[][]\n/usr/bin/sh\n", j2.stdout)
      local health, hj = srv:json("GET", "/health")
      assert.equal(200, health)
      assert.equal("healthy", hj.status)
    end)
  end)

  describe("A: the file API", function()
    it("A3: encoded and malformed paths are decoded once and stay inside",
       function()
      local DP = server.DP
      for _, p in ipairs{ "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                          "..%2f..%2fetc%2fpasswd",
                          "%252e%252e%252fetc%252fpasswd",
                          "..\\..\\etc\\passwd",
                          "%EF%BC%8E%EF%BC%8E%EF%BC%8Fetc",
                          "%C0%AE%C0%AE%2Fetc%2Fpasswd",
                          ("a"):rep(300) .. "/x",
                          ("a/"):rep(3000) .. "x" } do
        local status, body = srv:request{ path = DP .. "api/files/" .. p,
                                          session = id }
        assert.is_true(status == 400 or status == 404,
                       p:sub(1, 40) .. " -> " .. tostring(status))
        assert.is_nil(body:find("root:", 1, true))
      end
    end)

    it("A8: hardlinks to host files cannot be made", function()
      local before = { fingerprint("/etc/passwd"), fingerprint("/usr/bin/su") }
      -- control: hard links inside the workspace work
      assert.equal("2\n", (srv:sh(id, "echo x > f; ln f f2; stat -c %h f; " ..
                                      "rm -f f f2")))
      for i, src in ipairs{ "/etc/passwd", "/usr/bin/su" } do
        local out = srv:sh(id, "ln " .. src .. " hl 2>&1; echo rc=$?; " ..
                               "ls hl 2>&1; true")
        assert.matches("Invalid cross%-device link", out)
        assert.matches("rc=1", out, 1, true)
        assert.matches("No such file", out, 1, true)
        assert.equal(before[i], fingerprint(src))
      end
    end)

    it("A9: a FIFO, a socket or a device never hangs a download", function()
      srv:sh(id, "mkfifo result.txt; python3 -c 'import socket; " ..
                 "s=socket.socket(socket.AF_UNIX); s.bind(\"sock\")'")
      for _, p in ipairs{ "result.txt", "sock" } do
        local status = srv:request{ path = server.DP .. "api/files/" .. p,
                                    session = id, timeout = 10 }
        assert.equal(400, status, p)
      end
      local status = srv:write(id, "result.txt", "x")
      assert.equal(200, status)   -- replaces the FIFO, never blocks on it
    end)

    it("A10: a huge directory lists in bounded time", function()
      srv:sh(id, "mkdir many && cd many && seq 1 20000 | xargs touch",
             "120s")
      local status, j = srv:list(id, "many")
      assert.equal(200, status)
      assert.equal(20000, #j.files)
      srv:sh(id, "rm -rf many", "120s")
    end)
  end)
end)
end
