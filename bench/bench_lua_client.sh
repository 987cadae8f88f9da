#!/bin/sh
# bench_lua_client.sh -- the Lua module (agentcube.core + facade) against
# plain libcurl / curl, on the same `agentcube serve` in the same run:
#
#   1. N x execute_command("true") through the module, and the same
#      through agentcube.async (submit + job:result, one at a time), vs
#      the same N requests from a minimal C libcurl loop
#      (bench/curl_exec_client.c) on one kept-alive connection: times and
#      ratios (target <= 1.1);
#   2. upload and download of a SIZE_MB file through the module vs curl:
#      throughput ratio (target >= 0.9) and the Lua client's peak RSS
#      growth during the transfers (target < 16 MiB).
#
# Env: ROOT, BUILD, AGENTCUBE_BIN (bench/run sets them); BENCH_N (1000),
# BENCH_MB (1024), BENCH_ROUNDS (3: the best round of each side counts).
set -eu
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-build}
BIN=${AGENTCUBE_BIN:-$ROOT/$BUILD/agentcube}
N=${BENCH_N:-1000}
if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then   # CI: a quick look
  N=${BENCH_N:-200} BENCH_MB=${BENCH_MB:-64} BENCH_ROUNDS=${BENCH_ROUNDS:-2}
fi
MB=${BENCH_MB:-1024}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENT=$ROOT/$BUILD/bench/curl_exec_client
DP=/v1/namespaces/default/code-interpreters/big/invocations

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench.XXXXXX")
state=$(mktemp -d "${TMPDIR:-/tmp}/agentcube-bench-state.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  # a short-lived server on the same state removes what is left
  rm -f "$state"/sessions/*.json
  timeout 20 "$BIN" serve --no-auth --listen 127.0.0.1:0 \
    --state-dir "$state" --quiet >/dev/null 2>&1 &
  p2=$!
  sleep 1
  kill -TERM "$p2" 2>/dev/null; wait "$p2" 2>/dev/null || true
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT INT TERM

cat >"$tmp/config.yaml" <<EOF
templates:
  - name: big
    disk: 4Gi
    warmPoolSize: 0
EOF
"$BIN" serve --no-auth --listen 127.0.0.1:0 --state-dir "$state" \
  --config "$tmp/config.yaml" --quiet >"$tmp/url" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/url" ] && break
  sleep 0.1
done
URL=$(head -n 1 "$tmp/url")
case $URL in http://*) ;; *) echo "server did not start"; \
  cat "$tmp/serve.log"; exit 1 ;; esac

export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/$BUILD/lua/?.so;;"
export URL N MB

# The Lua side: prints "exec SECONDS", "upload SECONDS", "download
# SECONDS", "rss KIB" and the session id it leaves for the C side.
cat >"$tmp/bench.lua" <<'EOF'
local agentcube = require "agentcube"
local ok, system = pcall(require, "system")
local now = ok and system.monotime or os.time
local mode, arg1, arg2 = ...

local function kib(field)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. field .. ":%s+(%d+) kB")
    if v then return tonumber(v) end
  end
end

local url = os.getenv("URL")
local ci <close> = agentcube.CodeInterpreterClient{
  workload_manager_url = url, router_url = url, name = "big" }
if mode == "exec" then
  local n = tonumber(os.getenv("N"))
  for _ = 1, 20 do ci:execute_command("true") end      -- warm up
  local t0 = now()
  for _ = 1, n do ci:execute_command("true") end
  print(("exec %.3f"):format(now() - t0))
elseif mode == "async" then
  local async = require "agentcube.async"
  local n = tonumber(os.getenv("N"))
  local args = { command = "true" }
  for _ = 1, 20 do async.submit(ci, "exec", args):result() end
  local t0 = now()
  for _ = 1, n do
    local ok, r = async.submit(ci, "exec", args):result()
    assert(ok and r.exit_code == 0, r)
  end
  print(("exec %.3f"):format(now() - t0))
else
  local base = kib("VmRSS")
  local t0 = now()
  ci:upload_file(arg1, "/workspace/big.bin")
  print(("upload %.3f"):format(now() - t0))
  t0 = now()
  ci:download_file("/workspace/big.bin", arg2)
  print(("download %.3f"):format(now() - t0))
  print(("rss %d"):format(kib("VmHWM") - base))
end
EOF

best() { sort -n | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# --- 1. execute_command("true") ---------------------------------------
sid=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"name": "big", "namespace": "default", "ttl": 3600, "metadata": {}}' \
  "$URL/v1/code-interpreter" | sed 's/.*"sessionId": *"\([^"]*\)".*/\1/')
"$CLIENT" "$URL$DP/api/execute" "$sid" 20 >/dev/null      # warm up
: >"$tmp/lua_exec"; : >"$tmp/c_exec"; : >"$tmp/async_exec"
# A and B alternate which goes first, so that neither always runs on the
# other's leftovers (a server still settling, a warmer cache)
lua_side() {
  lua5.4 "$tmp/bench.lua" exec | sed -n 's/^exec //p' >>"$tmp/lua_exec"
  lua5.4 "$tmp/bench.lua" async | sed -n 's/^exec //p' >>"$tmp/async_exec"
}
c_side() { "$CLIENT" "$URL$DP/api/execute" "$sid" "$N" >>"$tmp/c_exec"; }
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then lua_side; c_side; else c_side; lua_side; fi
done
lua_exec=$(best <"$tmp/lua_exec")
async_exec=$(best <"$tmp/async_exec")
c_exec=$(best <"$tmp/c_exec")
curl -sf -X DELETE "$URL/v1/code-interpreter/sessions/$sid" >/dev/null
echo "execute_command(\"true\") x $N: lua ${lua_exec} s," \
     "C libcurl ${c_exec} s," \
     "ratio $(ratio "$lua_exec" "$c_exec") (target <= 1.1)"
echo "agentcube.async exec \"true\" x $N (submit + result): lua" \
     "${async_exec} s, ratio $(ratio "$async_exec" "$c_exec") to C libcurl" \
     "(target <= 1.1), $(ratio "$async_exec" "$lua_exec") to the blocking" \
     "method"

# --- 2. upload / download of MB MiB -----------------------------------
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$tmp/big.bin"
bytes=$(stat -c %s "$tmp/big.bin")
sid=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"name": "big", "namespace": "default", "ttl": 3600, "metadata": {}}' \
  "$URL/v1/code-interpreter" | sed 's/.*"sessionId": *"\([^"]*\)".*/\1/')
: >"$tmp/lua_up"; : >"$tmp/lua_down"; : >"$tmp/c_up"; : >"$tmp/c_down"
: >"$tmp/rss"
lua_files() {
  lua5.4 "$tmp/bench.lua" files "$tmp/big.bin" "$tmp/lua.out" >"$tmp/lua.txt"
  sed -n 's/^upload //p' "$tmp/lua.txt" >>"$tmp/lua_up"
  sed -n 's/^download //p' "$tmp/lua.txt" >>"$tmp/lua_down"
  sed -n 's/^rss //p' "$tmp/lua.txt" >>"$tmp/rss"
  cmp -s "$tmp/big.bin" "$tmp/lua.out" || { echo "module download differs"; \
    exit 1; }
  rm -f "$tmp/lua.out"
}
curl_files() {
  curl -sf -o /dev/null -w '%{time_total}\n' \
    -H "x-agentcube-session-id: $sid" \
    -F path=/workspace/big.bin -F mode=0644 -F "file=@$tmp/big.bin" \
    "$URL$DP/api/files" >>"$tmp/c_up"
  curl -sf -o "$tmp/curl.out" -w '%{time_total}\n' \
    -H "x-agentcube-session-id: $sid" \
    "$URL$DP/api/files/workspace/big.bin" >>"$tmp/c_down"
  cmp -s "$tmp/big.bin" "$tmp/curl.out" || { echo "curl download differs"; \
    exit 1; }
  rm -f "$tmp/curl.out"
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then lua_files; curl_files; else curl_files; lua_files; fi
done
curl -sf -X DELETE "$URL/v1/code-interpreter/sessions/$sid" >/dev/null
mbps() {
  awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.1f", b / t / 1048576 }'
}
lu=$(best <"$tmp/lua_up"); ld=$(best <"$tmp/lua_down")
cu=$(best <"$tmp/c_up"); cd_=$(best <"$tmp/c_down")
rss=$(sort -n "$tmp/rss" | tail -n 1)
echo "upload $MB MiB: lua $(mbps "$lu") MiB/s, curl $(mbps "$cu") MiB/s," \
     "ratio $(ratio "$cu" "$lu") (target >= 0.9)"
echo "download $MB MiB: lua $(mbps "$ld") MiB/s, curl $(mbps "$cd_") MiB/s," \
     "ratio $(ratio "$cd_" "$ld") (target >= 0.9)"
echo "lua client peak RSS growth during the transfers: $((rss / 1024)) MiB" \
     "($rss KiB; target < 16 MiB)"
