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
      local out = srv:sh(id, "{ echo x > /usr/bin/python3; } 2>&1; " ..
        "{ echo x > /usr/lib/python3/dist-packages/sitecustomize.py; } " ..
        "2>&1; python3 -c 'open(\"/proc/self/exe\",\"r+b\")' 2>&1 | " ..
        "tail -1; true")
      assert.matches("Read%-only file system", out)
      assert.is_truthy(out:find("Text file busy", 1, true) or
                       out:find("Permission denied: '/proc/self/exe'", 1,
                                true))
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
      local out = srv:sh(id, "mount -t tmpfs none /tmp 2>&1; " ..
        "ls /sys/fs/cgroup 2>&1; echo done")
      assert.is_nil(out:find("release_agent", 1, true))
      assert.matches("No such file or directory", out, 1, true)
    end)

    it("B11: devices cannot be made and host disks are absent", function()
      local out = srv:sh(id, "mknod /tmp/sda b 8 0 2>&1; ls /dev; true")
      assert.matches("Operation not permitted", out, 1, true)
      for _, dev in ipairs{ "kvm", "vda", "mem", "kmsg", "sda" } do
        assert.is_nil(out:find("\n" .. dev .. "\n", 1, true), dev)
      end
    end)

    it("B12: setuid binaries give no privilege", function()
      local out = srv:sh(id, "su -c id root 2>&1; ping -c1 127.0.0.1 2>&1; " ..
                             "id -u")
      assert.matches("1000\n$", out)
    end)

    it("B13: no controlling tty, TIOCSTI refused", function()
      local r = py("tiocsti")
      assert.matches("^notty", r.tiocsti)
    end)

    it("B14: hostname changes stay inside; kernel log is closed", function()
      local out = srv:sh(id, "hostname; hostname evil 2>&1; dmesg 2>&1 | " ..
                             "head -1; cat /proc/kallsyms 2>/dev/null | head -1")
      assert.matches("^sandbox\n", out)
      assert.is_nil(out:find("ffffffff", 1, true))
      local p = io.popen("hostname")
      local host = p:read("l")
      p:close()
      assert.are_not.equal("evil", host)
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
      local out = srv:sh(id, "cat /workspace/secret.txt /tmp/other 2>&1; " ..
        "ls /proc/*/root/workspace 2>&1; find / -name secret.txt " ..
        "-not -path '/proc/*' 2>/dev/null; true")
      assert.is_nil(out:find("private", 1, true))
      -- poisoning this session's home does not affect the other one
      srv:sh(id, "echo 'echo POISON' > ~/.bashrc; echo 'print(\"POISON\")' " ..
                 "> sitecustomize.py")
      local o2 = srv:sh(other, "bash -ic true 2>/dev/null; python3 -c pass")
      assert.is_nil(o2:find("POISON", 1, true))
    end)
  end)

  describe("C: network and IPC", function()
    it("C1/C2: no route out, the server and host services unreachable",
       function()
      local port = srv.url:match(":(%d+)$")
      local r = py("connect 127.0.0.1 " .. port)
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
      srv:sh(other, "python3 -c 'import sysv_ipc' 2>/dev/null; ipcmk -Q; true")
      local out = srv:sh(id, "ls /run /var/run 2>&1; ipcs -q; true")
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
      srv:sh(id, "(setsid sleep 1000 &); (nohup sleep 1001 &); " ..
                 "(trap '' TERM HUP; sleep 1002 &); disown -a; true")
      local p = io.popen("pgrep -f 'sleep 100[012]' | wc -l")
      local n = tonumber(p:read("l"))
      p:close()
      assert.equal(0, n)
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
      local status, j = srv:exec(id, { "sh", "-c", "echo $LD_PRELOAD" },
        { env = { LD_PRELOAD = "/workspace/evil.so", BASH_ENV = "/x",
                  PATH = "/workspace" } })
      assert.equal(200, status)
      local health = srv:json("GET", "/health")
      assert.equal(200, health)
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
      local out = srv:sh(id, "ln /etc/passwd hl 2>&1; ln /usr/bin/su su2 " ..
                             "2>&1; true")
      assert.matches("Invalid cross%-device link", out)
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
