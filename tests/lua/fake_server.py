#!/usr/bin/env python3
"""fake_server.py -- a scriptable stand-in for AgentCube, for the Lua
module's fault specs (a real `agentcube serve` cannot be made to answer 502,
send malformed JSON, forget sessionId or die half-way through a reply).

It prints its URL on stdout once listening, then serves:

  POST   /v1/code-interpreter                 {"sessionId": new id}
  DELETE /v1/code-interpreter/sessions/ID     200, or 404 when unknown
  GET    /v1/code-interpreter/sessions        {"sessions": [{sessionId}]}
  POST   .../invocations/api/execute          echoes the command: stdout
                                              is the argv joined by spaces;
                                              "false" exits 1 with stderr
  POST   .../invocations/api/files            JSON upload into memory
  GET    .../invocations/api/files/PATH       the stored bytes, or 404
  GET    .../invocations/api/files?path=P     {"files": [...]}
  GET|POST /v1/namespaces/NS/agent-runtimes/NAME/invocations/PATH
                                              an agent behind a Router:
                                              without a session header a
                                              new session is made; the
                                              answer {"agent", "method",
                                              "path", "payload"} names the
                                              session in its header; an
                                              unknown session is the
                                              Router's JSON 404
  GET    /health                              {"status": "healthy"}
  POST   /oauth/token                         {"access_token": "tok-N",
                                              "expires_in": 3600}, N the
                                              number of tokens issued

and two control routes:

  POST /__rules  [{"method": "POST", "path": "regex", "times": n,
                   "status": 500, "body": "...", "delay": seconds,
                   "close": true, "partial": n, "die": true}, ...]
  GET  /__log    every request seen: [{"method", "path", "session",
                  "auth", "json" (the decoded body, if JSON), "body" (the
                  raw body as latin-1 text), "headers" ({lowercase name:
                  value})}]
  POST /__reset  forgets the log

A rule's "headers" ({name: value}) go into its answer; "session": true
adds the request's x-agentcube-session-id (an agent's own answer, which a
Router forwards with it). "close" drops the connection without an answer, "partial" announces a
large body and sends only n bytes, "die" kills the whole server while the
request is in flight.
"""
import base64
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

LOCK = threading.Lock()
RULES = []
LOG = []
SESSIONS = {}          # id -> {path: bytes}
AGENT_SESSIONS = set()  # agent-runtime sessions the "Router" made
TOKENS = []            # the form bodies of token requests
DP = re.compile(r"^/v1/namespaces/[^/]+/code-interpreters/[^/]+/"
                r"invocations/(.*)$")
AGENT = re.compile(r"^/v1/namespaces/([^/]+)/agent-runtimes/([^/]+)/"
                   r"invocations/(.*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _rule(self, method, path):
        with LOCK:
            for r in RULES:
                if r.get("method", method) != method:
                    continue
                if not re.search(r.get("path", ""), path):
                    continue
                if r.get("times") is not None:
                    if r["times"] <= 0:
                        continue
                    r["times"] -= 1
                return dict(r)
        return None

    def _apply(self, rule):
        if rule.get("delay"):
            time.sleep(rule["delay"])
        if rule.get("die"):
            os._exit(1)
        if rule.get("close"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if rule.get("partial") is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "1048576")
            self.end_headers()
            self.wfile.write(b"x" * rule["partial"])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if rule.get("status") is not None:
            headers = dict(rule.get("headers") or {})
            sid = self.headers.get("x-agentcube-session-id")
            if rule.get("session") and sid:
                headers["x-agentcube-session-id"] = sid
            self._send(rule["status"], rule.get("body", ""),
                       rule.get("ctype", "application/json"), headers)
            return True
        return False

    def _handle(self, method):
        body = self._read_body()
        url = urlparse(self.path)
        if url.path == "/__rules":
            with LOCK:
                RULES[:] = json.loads(body or b"[]")
            return self._send(200, {"ok": True})
        if url.path == "/__log":
            with LOCK:
                return self._send(200, list(LOG))
        if url.path == "/__reset":
            with LOCK:
                LOG[:] = []
            return self._send(200, {"ok": True})
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        with LOCK:
            LOG.append({"method": method, "path": self.path,
                        "session": self.headers.get("x-agentcube-session-id"),
                        "auth": self.headers.get("Authorization"),
                        "json": decoded,
                        "body": body.decode("latin-1"),
                        "headers": {k.lower(): v
                                    for k, v in self.headers.items()}})
        rule = self._rule(method, self.path)
        if rule is not None and self._apply(rule):
            return
        self._default(method, url, body)

    def _default(self, method, url, body):
        path = url.path
        if path == "/health":
            return self._send(200, {"status": "healthy"})
        if path == "/oauth/token" and method == "POST":
            with LOCK:
                TOKENS.append(body.decode())
                n = len(TOKENS)
            return self._send(200, {"access_token": "tok-%d" % n,
                                    "expires_in": 3600})
        if path == "/v1/code-interpreter" and method == "POST":
            sid = str(uuid.uuid4())
            with LOCK:
                SESSIONS[sid] = {}
            return self._send(200, {"kind": "Sandbox", "sessionId": sid})
        if path == "/v1/code-interpreter/sessions" and method == "GET":
            with LOCK:
                ids = [{"sessionId": s} for s in SESSIONS]
            return self._send(200, {"sessions": ids})
        m = re.match(r"^/v1/code-interpreter/sessions/([^/]+)$", path)
        if m and method == "DELETE":
            with LOCK:
                found = SESSIONS.pop(m.group(1), None) is not None
            if found:
                return self._send(200, {"message":
                                        "Sandbox deleted successfully"})
            return self._send(404, {"message": "Session ID %s not found, "
                                    "maybe already deleted" % m.group(1)})
        m = AGENT.match(path)
        if m:
            return self._agent(method, m, url, body)
        m = DP.match(path)
        sid = self.headers.get("x-agentcube-session-id")
        if m:
            with LOCK:
                files = SESSIONS.get(sid)
            if files is None:
                return self._send(404, {"error": "session not found"})
            return self._sandbox(method, m.group(1), url, body, files)
        return self._send(404, "404 page not found", "text/plain")

    def _agent(self, method, m, url, body):
        sid = self.headers.get("x-agentcube-session-id")
        with LOCK:
            if not sid:
                sid = str(uuid.uuid4())
                AGENT_SESSIONS.add(sid)
            elif sid not in AGENT_SESSIONS:
                return self._send(404, {"error": 'sessions.agentcube.'
                                        'volcano.sh "%s" not found' % sid})
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("latin-1")
        path = m.group(3) + ("?" + url.query if url.query else "")
        return self._send(200, {"agent": "%s/%s" % (m.group(1), m.group(2)),
                                "method": method, "path": path,
                                "payload": payload},
                          headers={"x-agentcube-session-id": sid})

    def _sandbox(self, method, ep, url, body, files):
        if ep == "api/execute" and method == "POST":
            req = json.loads(body)
            cmd = req.get("command") or []
            if cmd[:1] == ["false"]:
                return self._send(200, {"stdout": "", "stderr": "failed\n",
                                        "exit_code": 1})
            return self._send(200, {"stdout": " ".join(cmd) + "\n",
                                    "stderr": "", "exit_code": 0,
                                    "request": req})
        if ep == "api/files" and method == "POST":
            req = json.loads(body)
            data = base64.b64decode(req["content"])
            with LOCK:
                files[req["path"].lstrip("/")] = data
            return self._send(200, {"path": req["path"], "size": len(data),
                                    "mode": "-rw-r--r--",
                                    "modified": "2025-01-01T00:00:00Z"})
        if ep == "api/files" and method == "GET":
            q = parse_qs(url.query).get("path", ["."])[0]
            with LOCK:
                names = sorted(files)
            return self._send(200, {"files": [
                {"name": n, "size": len(files[n]), "is_dir": False,
                 "mode": "-rw-r--r--", "modified": "2025-01-01T00:00:00Z"}
                for n in names if q in (".", "")]})
        if ep.startswith("api/files/") and method == "GET":
            name = unquote(ep[len("api/files/"):])
            with LOCK:
                data = files.get(name)
            if data is None:
                return self._send(404, {"error": "File not found",
                                        "code": 404})
            return self._send(200, data, "application/octet-stream")
        return self._send(404, "404 page not found", "text/plain")

    def _safe(self, method):
        try:
            self._handle(method)
        except (BrokenPipeError, ConnectionResetError):
            pass                       # the client gave up (a timeout test)

    def do_GET(self):
        self._safe("GET")

    def do_POST(self):
        self._safe("POST")

    def do_DELETE(self):
        self._safe("DELETE")


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
