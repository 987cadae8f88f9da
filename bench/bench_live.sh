#!/bin/sh
# Live sessions over HTTP: execute of `true` against a fork+exec of
# /bin/true, a warm python context run and time to interactive against
# that execute, 100 parallel
# creates, the first streamed chunk, disconnect-to-no-process and the
# server's memory with 2000 idle connections, all measured in this run.
set -u
B="$ROOT/$BUILD"
PROBE="python3 $ROOT/bench/live_probe.py"
# AGENTCUBE_BENCH_SHORT=1 (CI): a third of the requests
if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then R=100 CTXN=50 TTIN=20
else R=300 CTXN=100 TTIN=50; fi
STATE=$(mktemp -d /tmp/agentcube-bench-live.XXXXXX)
cat >"$STATE.yaml" <<'YAML'
maxConnections: 4000
maxConnectionsPerAddress: 3000
# 100 sessions at once promise 100 GiB of quota and of memory limits: more
# than a test machine has, which admission control would refuse
diskOvercommit: true
memoryOvercommit: 8
default:
  warmPoolSize: 2
YAML
"$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
  --state-dir "$STATE" --config "$STATE.yaml" >"$STATE.url" 2>"$STATE.log" &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null
  wait "$SERVER" 2>/dev/null
  rm -f "$STATE"/sessions/*.json
  "$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
    --state-dir "$STATE" --config "$STATE.yaml" >/dev/null 2>&1 &
  sleep 1; kill -TERM $! 2>/dev/null; wait $! 2>/dev/null
  rm -rf "$STATE" "$STATE.yaml" "$STATE.url" "$STATE.log" "$STATE.hf.json"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do [ -s "$STATE.url" ] && break; sleep 0.1; done
URL=$(head -1 "$STATE.url")
[ -n "$URL" ] || { cat "$STATE.log"; exit 1; }
sleep 1

# baseline: fork+exec of /bin/true on the host
hyperfine -N -w 20 -r "$R" --export-json "$STATE.hf.json" /bin/true \
  >/dev/null 2>&1
TRUE_MS=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1e3))' "$STATE.hf.json")

# execute `true` over HTTP: one keep-alive libcurl handle, R requests
SID=$(curl -s -d '{"name":"my-interpreter","namespace":"default"}' \
      "$URL/v1/code-interpreter" | sed 's/.*"sessionId":"\([^"]*\)".*/\1/')
EXEC_URL="$URL/v1/namespaces/default/code-interpreters/my-interpreter/invocations/api/execute"
"$B/bench/curl_exec_client" "$EXEC_URL" "$SID" 20 >/dev/null
S=$("$B/bench/curl_exec_client" "$EXEC_URL" "$SID" "$R")
EXEC_MS=$(awk -v s="$S" -v r="$R" 'BEGIN { printf "%.3f", s * 1000 / r }')
curl -s -o /dev/null -X DELETE "$URL/v1/code-interpreter/sessions/$SID"
echo "execute true: $EXEC_MS ms per request, fork+exec /bin/true $TRUE_MS ms," \
  "ratio $(awk -v a="$EXEC_MS" -v b="$TRUE_MS" 'BEGIN { printf "%.1f", a / b }')x (target <= 1.5x)"

CTX=$($PROBE "$URL" ctx "$CTXN" | awk '{ print $2 }')
echo "python context run of 'x = x + 1' (warm, $CTXN runs): median $CTX ms," \
  "$(awk -v a="$CTX" -v b="$EXEC_MS" 'BEGIN { printf "%.1f", a / b }')x the execute (target <= 2x)"

TTI=$($PROBE "$URL" tti "$TTIN" | awk '{ print $2 }')
echo "time to interactive (create + execute true + delete, $TTIN back to back):" \
  "median $TTI ms, $(awk -v a="$TTI" -v b="$EXEC_MS" 'BEGIN { printf "%.1f", a / b }')x the execute (target <= 3x)"

C=$($PROBE "$URL" creates 100)
echo "100 parallel creates: $(echo "$C" | awk '{ print $2 }') ms in total," \
  "$(echo "$C" | awk '{ print $4 }') created (target < 1000 ms)"

F=$($PROBE "$URL" first-chunk)
if [ "$(echo "$F" | awk '{ print $6 }')" = 1 ]; then
  echo "first streamed chunk of 'date; sleep 1; echo b': reached the client" \
    "$(echo "$F" | awk '{ print $8 }') ms after it was written (target 20 ms);" \
    "$(echo "$F" | awk '{ print $2 }') ms after the request was sent, whole" \
    "answer $(echo "$F" | awk '{ print $4 }') ms"
else
  echo "first streamed chunk: not streamed by this server; the answer came" \
    "whole after $(echo "$F" | awk '{ print $2 }') ms (target 20 ms)"
fi

D=$($PROBE "$URL" disconnect | awk '{ print $2 }')
echo "client disconnect to no process left: $D ms (target 100 ms)"

I=$($PROBE "$URL" idle 2000 "$SERVER")
echo "$I" | awk '{
  printf "2000 idle connections: server RSS %d -> %d KiB (+%.1f KiB each),",
         $2, $3, ($3 - $2) / 2000
  printf " threads %d -> %d, /health meanwhile %s ms (status %s)\n",
         $5, $6, $8, $10 }'
