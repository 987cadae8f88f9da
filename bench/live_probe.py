#!/usr/bin/env python3
"""live_probe.py -- the measurements of bench_live.sh that need a client
holding connections itself: time to interactive, parallel creates, the
first streamed chunk, disconnect-to-no-process, idle connections' memory.

  live_probe.py URL tti N
  live_probe.py URL creates N
  live_probe.py URL first-chunk
  live_probe.py URL disconnect
  live_probe.py URL idle N SERVER_PID
  live_probe.py URL ctx N

Each prints one line "name value..." that bench_live.sh formats.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

DP = "/v1/namespaces/default/code-interpreters/my-interpreter/invocations/"


class Client:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port)

    def call(self, method, path, body=None, sid=None, headers=None):
        h = {"Content-Type": "application/json"}
        if sid:
            h["x-agentcube-session-id"] = sid
        h.update(headers or {})
        self.conn.request(method, path,
                          body=json.dumps(body) if body is not None else None,
                          headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, data

    def create(self):
        st, data = self.call("POST", "/v1/code-interpreter",
                             {"name": "my-interpreter",
                              "namespace": "default"})
        assert st == 200, data
        return json.loads(data)["sessionId"]

    def delete(self, sid):
        self.call("DELETE", "/v1/code-interpreter/sessions/" + sid)

    def execute(self, sid, argv, timeout="60s"):
        return self.call("POST", DP + "api/execute",
                         {"command": argv, "timeout": timeout}, sid)


def tti(url, n):
    c = Client(url)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sid = c.create()
        st, _ = c.execute(sid, ["true"])
        assert st == 200
        c.delete(sid)
        times.append(time.perf_counter() - t0)
    print("tti_median_ms %.2f" % (statistics.median(times) * 1e3))


def creates(url, n):
    sids = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        c = Client(url)
        barrier.wait()
        sids[i] = c.create()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    total = time.perf_counter() - t0
    c = Client(url)
    for s in sids:
        if s:
            c.delete(s)
    print("creates_total_ms %.1f ok %d" % (total * 1e3,
                                          sum(1 for s in sids if s)))


def first_chunk(url):
    c = Client(url)
    sid = c.create()
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    # The first chunk is the time it was written (the sandbox shares the
    # host's realtime clock), so its delivery latency is measured exactly.
    body = json.dumps({"command": ["sh", "-c",
                                   "date +%s.%N; sleep 1; echo b"]})
    t0 = time.perf_counter()
    conn.request("POST", DP + "api/execute", body=body,
                 headers={"Content-Type": "application/json",
                          "Accept": "application/x-ndjson",
                          "x-agentcube-session-id": sid})
    r = conn.getresponse()
    streamed = "ndjson" in (r.getheader("Content-Type") or "")
    first = None
    latency = None
    if streamed:
        line = r.readline()
        first = time.perf_counter() - t0
        latency = time.time() - float(json.loads(line)["data"])
        r.read()
    else:
        r.read()
        first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    c.delete(sid)
    print("first_chunk_ms %.1f total_ms %.1f streamed %d write_to_client_ms "
          "%.1f" % (first * 1e3, total * 1e3, 1 if streamed else 0,
                    (latency or 0) * 1e3))


def count(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                         text=True).stdout
    return len(out.split())


def disconnect(url):
    c = Client(url)
    sid = c.create()
    marker = "%d.%d" % (os.getpid(), int(time.time()) % 100000)
    # a unique sleep so that only our command is counted
    argv = ["sleep", "3%s" % marker]
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port))
    body = json.dumps({"command": argv, "timeout": "120s"}).encode()
    s.sendall(("POST %sapi/execute HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "x-agentcube-session-id: %s\r\nContent-Length: %d\r\n\r\n"
               % (DP, sid, len(body))).encode() + body)
    pattern = "^sleep 3%s$" % marker.replace(".", "[.]")
    for _ in range(500):
        if count(pattern):
            break
        time.sleep(0.01)
    t0 = time.perf_counter()
    s.close()
    gone = None
    while time.perf_counter() - t0 < 5:
        if count(pattern) == 0:
            gone = time.perf_counter() - t0
            break
        time.sleep(0.002)
    c.delete(sid)
    print("disconnect_ms %s" % ("%.1f" % (gone * 1e3) if gone is not None
                                else "never(>5000)"))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def idle(url, n, pid):
    u = urllib.parse.urlparse(url)
    before, th0 = rss_kib(pid), threads(pid)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect((u.hostname, u.port))
        socks.append(s)
    # let the server accept and register them all
    time.sleep(1)
    after, th1 = rss_kib(pid), threads(pid)
    c = Client(url)
    t0 = time.perf_counter()
    st, _ = c.call("GET", "/health")
    health = time.perf_counter() - t0
    for s in socks:
        s.close()
    print("idle_rss_kib %d %d threads %d %d health_ms %.2f status %d" %
          (before, after, th0, th1, health * 1e3, st))


def ctx(url, n):
    c = Client(url)
    sid = c.create()
    st, data = c.call("POST", DP + "api/contexts", {"language": "python"},
                      sid)
    assert st == 201, data
    cid = json.loads(data)["id"]
    c.call("POST", DP + "api/contexts/%s/run" % cid, {"code": "x = 0"}, sid)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        st, _ = c.call("POST", DP + "api/contexts/%s/run" % cid,
                       {"code": "x = x + 1"}, sid)
        times.append(time.perf_counter() - t0)
        assert st == 200
    c.delete(sid)
    print("ctx_run_median_ms %.2f" % (statistics.median(times) * 1e3))


def main():
    url, mode = sys.argv[1], sys.argv[2]
    if mode == "tti":
        tti(url, int(sys.argv[3]))
    elif mode == "creates":
        creates(url, int(sys.argv[3]))
    elif mode == "first-chunk":
        first_chunk(url)
    elif mode == "disconnect":
        disconnect(url)
    elif mode == "idle":
        idle(url, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "ctx":
        ctx(url, int(sys.argv[3]))


main()
