#!/usr/bin/env python3
"""Session networks, measured in one run (bench/bench_network.sh).

1. The two user-mode network helpers Debian ships, side by side on the
   same namespace setup the server uses (a user+network namespace owned
   by an unprivileged uid, a private /dev/net/tun): time until the
   namespace is configured, and 100 MB (32 in the short mode) over TCP from the namespace to a
   listener in a test network namespace behind a veth pair, against the
   same transfer from the host (the baseline).
2. agentcube serve: session create + first command with network against
   the same without (the baseline), and the 100 MB transfer from a
   networked session.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

AGENTCUBE = os.environ["AGENTCUBE_BIN"]
UID = 61000 + os.getpid() % 1000
TAG = "%04x" % (os.getpid() % 0xffff)
NS = "acbench" + TAG
HOST_IP, NS_IP = "198.18.77.1", "198.18.77.2"
SHORT = os.environ.get("AGENTCUBE_BENCH_SHORT") == "1"   # CI: a quick look
MB = 32 if SHORT else 100
ROUNDS = int(os.environ.get("NET_BENCH_ROUNDS", "4" if SHORT else "10"))


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True).stdout


def setup_ns():
    sh(f"ip netns add {NS}")
    sh(f"ip link add acb{TAG} type veth peer name acc{TAG}")
    sh(f"ip link set acc{TAG} netns {NS}")
    sh(f"ip addr add {HOST_IP}/24 dev acb{TAG}; ip link set acb{TAG} up")
    sh(f"ip -n {NS} addr add {NS_IP}/24 dev acc{TAG}")
    sh(f"ip -n {NS} link set acc{TAG} up; ip -n {NS} link set lo up")


def cleanup_ns():
    sh(f"ip netns del {NS}; ip link del acb{TAG}", check=False)


SINK = r"""
import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    c.sendall(b"%d\n" % n); c.close()
"""

SEND = r"""
import socket, sys, time
host, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
t = time.monotonic()
c = socket.create_connection((host, port), timeout=60)
for _ in range(mb): c.sendall(buf)
c.shutdown(socket.SHUT_WR)
r = b""
while not r.endswith(b"\n"):
    b = c.recv(64)
    if not b: break
    r += b
got = int(r.split(b"\n")[0] or b"0")
d = time.monotonic() - t
print("%d %.6f" % (got, d))
"""


def start_sink():
    p = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", SINK],
                         stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def parse_send(out):
    got, secs = out.split()[-2:]
    if int(got) != MB << 20:
        raise RuntimeError("transfer incomplete: %r" % out[-200:])
    return MB / float(secs)


def holder():
    """A user+network namespace owned by UID, kept by a sleeping process."""
    p = subprocess.Popen(["setpriv", "--reuid", str(UID), "--regid",
                          str(UID), "--clear-groups", "unshare", "--user",
                          "--net", "sleep", "600"])
    for _ in range(1000):
        try:
            if os.readlink(f"/proc/{p.pid}/ns/net") != \
               os.readlink("/proc/self/ns/net"):
                return p
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError("namespace holder did not start")


def helper_cmd(kind, pid, ready):
    priv = ("mount -t tmpfs -o mode=0755 none /dev/net && "
            "mknod -m 0600 /dev/net/tun c 10 200 && "
            f"chown {UID}:{UID} /dev/net/tun && exec setpriv --reuid {UID} "
            f"--regid {UID} --clear-groups ")
    if kind == "pasta":
        tool = (f"pasta --config-net --userns /proc/{pid}/ns/user --netns "
                f"/proc/{pid}/ns/net --no-netns-quit -f -q --no-map-gw "
                f"-t none -u none -T none -U none -P {ready}")
    else:
        tool = (f"slirp4netns --configure --mtu=65520 "
                f"--disable-host-loopback --netns-type=path "
                f"--userns-path=/proc/{pid}/ns/user /proc/{pid}/ns/net "
                f"tap0 --ready-fd=3 3>{ready}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            priv + tool]


def start_helper(kind):
    h = holder()
    d = tempfile.mkdtemp(prefix="acbench-")
    os.chmod(d, 0o777)
    ready = os.path.join(d, "ready")
    t = time.monotonic()
    p = subprocess.Popen(helper_cmd(kind, h.pid, ready),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
        if p.poll() is not None:
            raise RuntimeError(kind + ": " + p.stderr.read().decode())
        if time.monotonic() - t > 10:
            raise RuntimeError(kind + " did not get ready")
        time.sleep(0.0005)
    return h, p, time.monotonic() - t, d


def stop(*procs):
    for p in procs:
        p.kill()
        p.wait()


def compare_helpers(port, host_mbs):
    print("helpers (namespace owned by uid %d, private /dev/net/tun):" % UID)
    res = {}
    kinds = [k for k in ("pasta", "slirp4netns")
             if subprocess.run(["sh", "-c", "command -v " + k],
                               stdout=subprocess.DEVNULL).returncode == 0]
    for kind in kinds:
        starts, rates, failed = [], [], []
        for i in range(ROUNDS):
            h, p, secs, d = start_helper(kind)
            try:
                starts.append(secs * 1000)
                if i < 3:
                    # a transfer the helper resets is reported, not fatal
                    try:
                        out = sh(f"nsenter -t {h.pid} -U -n "
                                 f"--preserve-credentials python3 -c "
                                 f"'{SEND}' {NS_IP} {port} {MB}")
                        rates.append(parse_send(out))
                    except subprocess.CalledProcessError as e:
                        failed.append((e.output or "").strip()
                                      .splitlines()[-1:] or ["no output"])
            finally:
                stop(p, h)
                sh(f"rm -rf {d}")
        for why in failed:
            print(f"  {kind}: a transfer failed: {why[0]}")
        res[kind] = (statistics.median(starts),
                     statistics.median(rates) if rates else 0.0)
        print("  %-12s ready in %6.1f ms (median of %d), %7.0f MB/s "
              "(%.2f x the host's %0.f MB/s)" % (
                  kind, res[kind][0], ROUNDS, res[kind][1],
                  res[kind][1] / host_mbs, host_mbs))
    if len(res) < 2:
        print("  slirp4netns is not installed: pasta alone")
        return
    print("  pasta/slirp4netns: start %.2fx, throughput %.2fx" % (
        res["pasta"][0] / res["slirp4netns"][0],
        res["pasta"][1] / (res["slirp4netns"][1] or float("nan"))))


def server_bench(port, host_mbs):
    state = tempfile.mkdtemp(prefix="agentcube-bench-net.")
    cfg = state + ".yaml"
    with open(cfg, "w") as f:
        f.write("templates:\n"
                "  - name: plain\n    warmPoolSize: 0\n"
                "  - name: net\n    warmPoolSize: 0\n    network: true\n")
    srv = subprocess.Popen([AGENTCUBE, "serve", "--no-auth", "--quiet",
                            "--listen", "127.0.0.1:0", "--state-dir", state,
                            "--config", cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    url = srv.stdout.readline().strip()
    sys.stdout.flush()

    def call(method, path, body=None, sid=None):
        req = urllib.request.Request(url + path, method=method,
                                     data=json.dumps(body).encode()
                                     if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if sid:
            req.add_header("x-agentcube-session-id", sid)
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"null")

    def execute(tpl, sid, argv):
        return call("POST", "/v1/namespaces/default/code-interpreters/" +
                    tpl + "/invocations/api/execute",
                    {"command": argv, "timeout": "120s"}, sid)

    def create_and_run(tpl):
        t = time.monotonic()
        sid = call("POST", "/v1/code-interpreter",
                   {"name": tpl, "namespace": "default"})["sessionId"]
        execute(tpl, sid, ["true"])
        d = time.monotonic() - t
        return sid, d

    try:
        times = {"plain": [], "net": []}
        sids = []
        create_and_run("plain")       # warm the caches
        for _ in range(ROUNDS):
            for tpl in ("plain", "net"):
                sid, d = create_and_run(tpl)
                times[tpl].append(d * 1000)
                sids.append(sid)
        plain = statistics.median(times["plain"])
        net = statistics.median(times["net"])
        print("agentcube serve (create + first command, median of %d):" %
              ROUNDS)
        print("  %-24s %7.1f ms (baseline)" % ("no network", plain))
        print("  %-24s %7.1f ms  %.2fx the baseline" % ("network: true", net,
                                                        net / plain))
        sid, _ = create_and_run("net")
        rates, failed = [], []
        for i in range(4):            # the first one warms up
            r = execute("net", sid, ["python3", "-c", SEND, NS_IP, str(port),
                                     str(MB)])
            if r.get("exit_code") != 0:
                # reported, not fatal: a benchmark measures, it does not
                # judge (the reason is printed for whoever reads it)
                failed.append((r.get("stderr") or "").strip()
                              .splitlines()[-1:] or ["exit %s" %
                                                     r.get("exit_code")])
            elif i:
                rates.append(parse_send(r["stdout"]))
        if rates:
            rate = statistics.median(rates)
            print("  %d MB from a networked session: %.0f MB/s (median of "
                  "%d), %.2fx the host's %.0f MB/s" % (
                      MB, rate, len(rates), rate / host_mbs, host_mbs))
        if failed:
            print("  %d of 4 transfers from the session failed: %s" % (
                len(failed), "; ".join(f[0] for f in failed)))
        for s in sids + [sid]:
            call("DELETE", "/v1/code-interpreter/sessions/" + s)
    finally:
        sys.stdout.flush()
        srv.terminate()
        srv.wait()
        sh(f"rm -rf {state} {cfg}", check=False)


def main():
    setup_ns()
    sink = None
    try:
        sink, port = start_sink()
        out = sh(f"python3 -c '{SEND}' {NS_IP} {port} {MB}")
        host_mbs = parse_send(out)
        print("baseline: %d MB from the host to the test namespace: "
              "%.0f MB/s" % (MB, host_mbs))
        compare_helpers(port, host_mbs)
        server_bench(port, host_mbs)
    finally:
        if sink:
            sink.kill()
            sink.wait()
        cleanup_ns()


if __name__ == "__main__":
    sys.exit(main())
