#!/bin/sh
# bench_mcp.sh -- `agentcube mcp` over stdio against the Lua module, on the
# same `agentcube serve` in the same run:
#
#   1. N x tools/call execute_command("true") on one session through the
#      MCP server (a minimal Python stdio client, one request at a time)
#      vs N x ci:execute_command("true") through the Lua module: the
#      median time per call of each (robust against a busy machine) and
#      their ratio (target <= 1.2);
#   2. the MCP server's resident memory after the calls (target < 16 MiB)
#      and its growth over 100 more sequential calls (target: none).
#
# Env: ROOT, BUILD, AGENTCUBE_BIN (bench/run sets them); BENCH_N (500),
# BENCH_ROUNDS (3: the best round of each side counts).
set -eu
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${AGENTCUBE_BIN:-$ROOT/$BUILD/agentcube}
N=${BENCH_MCP_N:-${BENCH_N:-500}}
[ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ] && N=${BENCH_MCP_N:-100}
ROUNDS=${BENCH_ROUNDS:-3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench-mcp.XXXXXX")
state=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench-state.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT INT TERM

"$BIN" serve --no-auth --listen 127.0.0.1:0 --state-dir "$state" \
  --quiet >"$tmp/url" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/url" ] && break
  sleep 0.1
done
URL=$(head -n 1 "$tmp/url")
case $URL in http://*) ;; *) echo "server did not start"; \
  cat "$tmp/serve.log"; exit 1 ;; esac
export URL N WORKLOAD_MANAGER_URL="$URL" ROUTER_URL="$URL"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/$BUILD/lua/?.so;;"

cat >"$tmp/lua.lua" <<'EOF'
local agentcube = require "agentcube"
local ok, system = pcall(require, "system")
local now = ok and system.monotime or os.time
local n = tonumber(os.getenv("N"))
local ci <close> = agentcube.CodeInterpreterClient{
  workload_manager_url = os.getenv("URL"), router_url = os.getenv("URL") }
for _ = 1, 20 do ci:execute_command("true") end      -- warm up
local t = {}
for i = 1, n do
  local t0 = now()
  ci:execute_command("true")
  t[i] = now() - t0
end
table.sort(t)
print(("exec %.6f"):format(t[(n + 1) // 2]))
EOF

# The MCP side: a stdio client that waits for each answer before the next
# request, as a host does; prints "exec SECONDS" and the server's memory.
cat >"$tmp/mcp.py" <<'EOF'
import json, os, subprocess, sys, time
n = int(os.environ["N"])
p = subprocess.Popen([sys.argv[1], "mcp"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
ids = iter(range(1, 10**9))
def call(method, params):
    i = next(ids)
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                               "params": params}) + "\n").encode())
    p.stdin.flush()
    m = json.loads(p.stdout.readline())
    assert m.get("id") == i and "result" in m, m
    return m["result"]
def tool(name, args):
    r = call("tools/call", {"name": name, "arguments": args})
    assert not r["isError"], r
    return r["structuredContent"]
def kib(field):
    for line in open("/proc/%d/status" % p.pid):
        if line.startswith(field + ":"):
            return int(line.split()[1])
call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "1"}})
p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
p.stdin.flush()
sid = tool("create_session", {})["session_id"]
run = {"command": "true", "session_id": sid}
for _ in range(20):
    tool("execute_command", run)                  # warm up
t = []
for _ in range(n):
    t0 = time.perf_counter()
    tool("execute_command", run)
    t.append(time.perf_counter() - t0)
t.sort()
print("exec %.6f" % t[(n - 1) // 2])
rss0 = kib("VmRSS")
for _ in range(100):
    tool("execute_command", run)
rss1 = kib("VmRSS")
print("rss %d %d %d" % (rss0, rss1, kib("VmHWM")))
p.stdin.close()
p.wait()
EOF

best() { sort -n | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

: >"$tmp/lua_exec"; : >"$tmp/mcp_exec"; : >"$tmp/rss"
for _ in $(seq "$ROUNDS"); do
  lua5.4 "$tmp/lua.lua" | sed -n 's/^exec //p' >>"$tmp/lua_exec"
  python3 "$tmp/mcp.py" "$BIN" >"$tmp/mcp.out"
  sed -n 's/^exec //p' "$tmp/mcp.out" >>"$tmp/mcp_exec"
  sed -n 's/^rss //p' "$tmp/mcp.out" >>"$tmp/rss"
done
lua_exec=$(best <"$tmp/lua_exec")
mcp_exec=$(best <"$tmp/mcp_exec")
ms() { awk -v s="$1" 'BEGIN { printf "%.3f ms", s * 1000 }'; }
echo "tools/call execute_command(\"true\") over stdio, median of $N:" \
     "mcp $(ms "$mcp_exec"), Lua module $(ms "$lua_exec")," \
     "ratio $(ratio "$mcp_exec" "$lua_exec") (target <= 1.2)"
tail -n 1 "$tmp/rss" | {
  read -r before after peak
  echo "mcp server memory: RSS $((after / 1024)) MiB after $((N + 120))" \
       "calls, peak $((peak / 1024)) MiB (target < 16 MiB);" \
       "growth over 100 sequential calls: $((after - before)) KiB" \
       "(target: none)"
}
