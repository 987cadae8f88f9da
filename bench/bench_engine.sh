#!/bin/sh
# The client engine: the frame-loop example (60 Hz; a session created, a
# 2 s command streamed, 100 MiB uploaded) reports its worst frame work,
# wall and CPU, against the same loop's idle frames (baseline: a 1 MiB
# upload and a 0.1 s command); and Ctrl-C of a Lua script blocked in
# execute_command("sleep 60"), time from SIGINT to exit; and the latency
# from a command writing a line to the Lua on_stdout callback receiving it
# (both stamped with the wall clock), median of 20.
set -u
B="$ROOT/$BUILD"
STATE=$(mktemp -d /tmp/agentcube-bench-engine.XXXXXX)
"$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
  --state-dir "$STATE" >"$STATE.url" 2>"$STATE.log" &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null
  wait "$SERVER" 2>/dev/null
  rm -rf "$STATE" "$STATE.url" "$STATE.log"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do [ -s "$STATE.url" ] && break; sleep 0.1; done
URL=$(head -1 "$STATE.url")
export WORKLOAD_MANAGER_URL="$URL" ROUTER_URL="$URL"

base=$("$B/examples/frameloop" 1 1)
echo "frame loop, baseline (1 MiB, 1 s command): $base"
full=$("$B/examples/frameloop" 100 2)
echo "frame loop (100 MiB upload, 2 s command):   $full"
w=$(echo "$full" | sed -n 's/.*worst_work_ms \([0-9.]*\).*/\1/p')
c=$(echo "$full" | sed -n 's/.*worst_work_cpu_ms \([0-9.]*\).*/\1/p')
echo "worst frame work: ${w} ms wall, ${c} ms CPU (target 2 ms)"

# Ctrl-C: SIGINT 1 s into a blocked execute_command("sleep 60").
SCRIPT="$STATE/ctrlc.lua"
cat >"$SCRIPT" <<'LUA'
local agentcube = require "agentcube"
local ci = agentcube.CodeInterpreterClient()
ci:execute_command("true")
io.stdout:write("ready\n") io.stdout:flush()
ci:execute_command("sleep 60")
LUA
export LUA_CPATH="$B/lua/?.so;;" \
       LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
lua5.4 "$SCRIPT" >"$STATE/ctrlc.out" 2>&1 &
LPID=$!
for _ in $(seq 1 200); do
  grep -q ready "$STATE/ctrlc.out" 2>/dev/null && break; sleep 0.05
done
sleep 1
t0=$(date +%s%N)
kill -INT $LPID
wait $LPID
t1=$(date +%s%N)
echo "Ctrl-C of a blocked execute_command: exit after $(( (t1 - t0) / 1000000 )) ms (target 1000 ms)"

# First streamed chunk to a Lua callback.
cat >"$STATE/chunk.lua" <<'LUA'
local agentcube = require "agentcube"
local system = require "system"
local ci <close> = agentcube.CodeInterpreterClient()
local lat = {}
for _ = 1, 20 do
  local got
  ci:execute_command({ "sh", "-c", "date +%s.%N; sleep 0.2" }, {
    on_stdout = function(s)
      if not got then got = system.gettime() - tonumber(s:match("[%d.]+")) end
    end })
  lat[#lat + 1] = got
end
table.sort(lat)
print(("%.1f"):format(lat[10] * 1000))
LUA
if lua5.4 -e 'require "system"' 2>/dev/null; then
  ms=$(lua5.4 "$STATE/chunk.lua" 2>&1 | tail -1)
  echo "first streamed chunk to a Lua callback: median ${ms} ms (target 20 ms)"
else
  echo "first streamed chunk: skipped (lua-system not installed)"
fi
