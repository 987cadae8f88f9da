#!/bin/sh
# bench_python_sdk.sh -- the Lua module against the official Python SDK,
# on the same `agentcube serve` in the same run: N x
# execute_command("true") through each (one session each, after a short
# warm-up), the best of ROUNDS rounds, alternating which goes first.
# Prints both times and the ratio Lua / SDK (target <= 0.5).
#
# Both include what the server spends running each command; the same N
# requests from the smallest libcurl loop (bench/curl_exec_client.c) are
# that floor, so a second ratio compares what each client adds on top.
#
# The SDK is not a Debian package: AGENTCUBE_PY_SDK names a checkout of
# its sdk-python directory (it needs python3-requests); without it the
# benchmark says so and is skipped.
#
# Env: ROOT, BUILD, AGENTCUBE_BIN (bench/run sets them); BENCH_N (1000),
# BENCH_ROUNDS (3).
set -eu
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${AGENTCUBE_BIN:-$ROOT/$BUILD/agentcube}
N=${BENCH_N:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then   # CI: a quick look
  N=${BENCH_N:-200} ROUNDS=${BENCH_ROUNDS:-2}
fi
SDK=${AGENTCUBE_PY_SDK:-}

if [ -z "$SDK" ]; then
  echo "skipped: AGENTCUBE_PY_SDK is not set (a checkout of the official" \
       "SDK's sdk-python directory)"
  exit 0
fi
if [ ! -f "$SDK/agentcube/__init__.py" ]; then
  echo "skipped: AGENTCUBE_PY_SDK=$SDK holds no agentcube package"
  exit 0
fi
if ! PYTHONPATH=$SDK python3 -c 'import agentcube' 2>/dev/null; then
  echo "skipped: the SDK does not import here (python3-requests missing?)"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench.XXXXXX")
state=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench-state.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT INT TERM

"$BIN" serve --no-auth --listen 127.0.0.1:0 --state-dir "$state" --quiet \
  >"$tmp/url" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/url" ] && break
  sleep 0.1
done
URL=$(head -n 1 "$tmp/url")
case $URL in http://*) ;; *) echo "server did not start"; \
  cat "$tmp/serve.log"; exit 1 ;; esac
export URL N

# Each side prints "exec SECONDS" for the N calls of its timed loop.
cat >"$tmp/bench.lua" <<'EOF'
local agentcube = require "agentcube"
local ok, system = pcall(require, "system")
local now = ok and system.monotime or os.time
local url, n = os.getenv("URL"), tonumber(os.getenv("N"))
local ci <close> = agentcube.CodeInterpreterClient{
  workload_manager_url = url, router_url = url }
for _ = 1, 20 do ci:execute_command("true") end      -- warm up
local t0 = now()
for _ = 1, n do ci:execute_command("true") end
print(("exec %.3f"):format(now() - t0))
EOF
cat >"$tmp/bench.py" <<'EOF'
import os
import time

from agentcube import CodeInterpreterClient

url, n = os.environ["URL"], int(os.environ["N"])
with CodeInterpreterClient(workload_manager_url=url, router_url=url) as ci:
    for _ in range(20):                               # warm up
        ci.execute_command("true")
    t0 = time.monotonic()
    for _ in range(n):
        ci.execute_command("true")
    print("exec %.3f" % (time.monotonic() - t0))
EOF

CLIENT=$ROOT/$BUILD/bench/curl_exec_client
DP=/v1/namespaces/default/code-interpreters/my-interpreter/invocations
sid=$(curl -sf -X POST -H 'Content-Type: application/json' -d \
  '{"name": "my-interpreter", "namespace": "default", "ttl": 3600,
    "metadata": {}}' \
  "$URL/v1/code-interpreter" | sed 's/.*"sessionId": *"\([^"]*\)".*/\1/')
"$CLIENT" "$URL$DP/api/execute" "$sid" 20 >/dev/null      # warm up
c_side() { "$CLIENT" "$URL$DP/api/execute" "$sid" "$N" >>"$tmp/c"; }

lua_side() {
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" \
  LUA_CPATH="$ROOT/$BUILD/lua/?.so;;" \
    lua5.4 "$tmp/bench.lua" | sed -n 's/^exec //p' >>"$tmp/lua"
}
py_side() {
  # the SDK logs each session's creation and deletion on stderr
  PYTHONPATH=$SDK python3 "$tmp/bench.py" 2>>"$tmp/py.err" |
    sed -n 's/^exec //p' >>"$tmp/py"
}
: >"$tmp/lua"; : >"$tmp/py"; : >"$tmp/c"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then lua_side; py_side; c_side
  else c_side; py_side; lua_side; fi
done
curl -sf -X DELETE "$URL/v1/code-interpreter/sessions/$sid" >/dev/null
lua=$(sort -n "$tmp/lua" | head -n 1)
py=$(sort -n "$tmp/py" | head -n 1)
c=$(sort -n "$tmp/c" | head -n 1)
[ -n "$lua" ] && [ -n "$py" ] || { echo "a side printed no time"; \
  tail -n 20 "$tmp/py.err"; exit 1; }
echo "execute_command(\"true\") x $N: lua ${lua} s, official Python SDK" \
     "${py} s, ratio $(awk -v a="$lua" -v b="$py" \
       'BEGIN { printf "%.3f", a / b }') (target <= 0.5)"
echo "the same requests from a bare libcurl loop: ${c} s; what each client" \
     "adds to it: lua $(awk -v a="$lua" -v c="$c" \
       'BEGIN { printf "%.3f", a - c }') s, SDK $(awk -v b="$py" -v c="$c" \
       'BEGIN { printf "%.3f", b - c }') s, ratio $(awk -v a="$lua" \
       -v b="$py" -v c="$c" 'BEGIN { if (a <= c) printf "0 (lua within" \
       " the noise of the floor)"; else if (b > c) printf "%.3f", \
       (a - c) / (b - c); else printf "n/a" }')"
