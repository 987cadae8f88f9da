#!/usr/bin/env python3
"""rawconn.py -- raw TCP clients for the server specs (connection budgets,
slow clients, requests cut by a DELETE), where an HTTP library would hide
what the spec needs to control. Every mode prints one result line per
event on stdout, flushed, so that a spec can follow it with io.popen.

  idle N SRC HOST PORT HOLD      open N connections from address SRC, say
                                 "open N", keep them HOLD seconds, then
                                 say "still-open K" (K: not closed by the
                                 server) and exit
  partial HOST PORT              send half a request header, say "sent",
                                 then "closed after S" when the server
                                 closes it (S: seconds), or "timeout"
  trickle HOST PORT PATH HEADERS LENGTH
                                 POST PATH with the extra header lines
                                 HEADERS ("Name: value|Name: value"),
                                 Content-Length LENGTH, then one byte every
                                 50 ms; say "started" after the first
                                 bytes, then "closed after S sent B" once
                                 the server ends the connection
  request HOST PORT METHOD PATH HEADERS BODY
                                 send one request, say "sent", then print
                                 "closed after S status X"
  stream HOST PORT PATH HEADERS BODY
                                 POST BODY asking for an event stream; say
                                 "status X type T", then "at S LINE" for
                                 every line as it arrives, then "end"
  hangups N HOST PORT METHOD PATH HEADERS BODY
                                 send the request N times, each on its
                                 own connection reset right after it is
                                 sent (the answer never read), then say
                                 "sent N"
  cut HOST PORT PATH HEADERS BODY PATTERN
                                 POST BODY, wait until a process matching
                                 PATTERN (pgrep -f) runs, close the
                                 connection, then say "gone after S" once
                                 no such process is left (or "still
                                 running" after 10 s)
"""
import http.client
import os
import socket
import subprocess
import sys
import time


def say(*a):
    print(*a, flush=True)


def idle(n, src, host, port, hold):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.connect((host, port))
        socks.append(s)
    say("open", len(socks))
    time.sleep(hold)
    still = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                continue
        except BlockingIOError:
            pass
        except OSError:
            continue
        still += 1
    say("still-open", still)


def wait_closed(s, t0, limit=60):
    s.settimeout(limit)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
    except socket.timeout:
        say("timeout")
        return
    except OSError:
        pass
    say("closed after %.3f" % (time.time() - t0))


def partial(host, port):
    s = socket.create_connection((host, port))
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    say("sent")
    wait_closed(s, t0)


def headers_of(spec):
    return "".join(h + "\r\n" for h in spec.split("|") if h)


def trickle(host, port, path, hdrs, length):
    s = socket.create_connection((host, port))
    head = ("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" %
            (path, headers_of(hdrs), length)).encode()
    s.sendall(head)
    sent = 0
    t0 = None
    s.settimeout(0.05)
    while sent < length:
        try:
            s.sendall(b"x")
        except OSError:
            break
        sent += 1
        if sent == 64 and t0 is None:
            t0 = time.time()
            say("started")
        try:
            if s.recv(65536) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
    say("closed after %.3f sent %d" % (time.time() - (t0 or time.time()),
                                        sent))


def request(host, port, method, path, hdrs, body):
    s = socket.create_connection((host, port))
    data = body.encode()
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
               "Connection: close\r\n\r\n" % (method, path, headers_of(hdrs),
                                              len(data))).encode() + data)
    t0 = time.time()
    say("sent")
    got = b""
    s.settimeout(120)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    status = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/") \
        else "none"
    say("closed after %.3f status %s" % (time.time() - t0, status))


def hangups(n, host, port, method, path, hdrs, body):
    data = body.encode()
    req = ("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" %
           (method, path, headers_of(hdrs), len(data))).encode() + data
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close: RST
        s.sendall(req)
        s.close()
    say("sent %d" % n)


def stream(host, port, path, hdrs, body):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Accept": "application/x-ndjson"}
    for h in hdrs.split("|"):
        if h:
            k, v = h.split(": ", 1)
            headers[k] = v
    t0 = time.time()
    conn.request("POST", path, body=body.encode(), headers=headers)
    r = conn.getresponse()
    say("status %d type %s" % (r.status, r.getheader("Content-Type")))
    while True:
        line = r.readline()
        if not line:
            break
        say("at %.3f %s" % (time.time() - t0, line.decode().rstrip("\n")))
    say("end")


def running(pattern):
    """Processes matching pattern, this one and the shell that started it
    left out (their arguments hold the command line it sends)."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                         text=True).stdout
    return len([p for p in out.split()
                if int(p) not in (os.getpid(), os.getppid())])


def cut(host, port, path, hdrs, body, pattern):
    s = socket.create_connection((host, port))
    data = body.encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
               "\r\n" % (path, headers_of(hdrs), len(data))).encode() + data)
    for _ in range(1000):
        if running(pattern):
            break
        time.sleep(0.01)
    else:
        say("never started")
        return
    t0 = time.time()
    s.close()
    while time.time() - t0 < 10:
        if running(pattern) == 0:
            say("gone after %.3f" % (time.time() - t0))
            return
        time.sleep(0.005)
    say("still running")


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "idle":
        idle(int(a[0]), a[1], a[2], int(a[3]), float(a[4]))
    elif mode == "partial":
        partial(a[0], int(a[1]))
    elif mode == "trickle":
        trickle(a[0], int(a[1]), a[2], a[3], int(a[4]))
    elif mode == "request":
        request(a[0], int(a[1]), a[2], a[3], a[4], a[5])
    elif mode == "stream":
        stream(a[0], int(a[1]), a[2], a[3], a[4])
    elif mode == "hangups":
        hangups(int(a[0]), a[1], int(a[2]), a[3], a[4], a[5], a[6])
    elif mode == "cut":
        cut(a[0], int(a[1]), a[2], a[3], a[4], a[5])
    else:
        sys.exit("unknown mode " + mode)


main()
