#!/bin/sh
# The local runtime: session lifecycle, execute and run_code overhead
# against the same sandbox launched directly, concurrency, and 1 GiB
# transfers against a plain file server, all measured in this run.
set -u
B="$ROOT/$BUILD"
BENCH="$B/bench/bench_server"
STATE=$(mktemp -d /tmp/agentcube-bench-state.XXXXXX)
DATA=$(mktemp -d /tmp/agentcube-bench-data.XXXXXX)
cat >"$STATE.yaml" <<'YAML'
default:
  warmPoolSize: 2
templates:
  - name: cold
    warmPoolSize: 0
  - name: big
    disk: 3Gi
    maxFileSize: 2Gi
    warmPoolSize: 0
YAML
"$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
  --state-dir "$STATE" --config "$STATE.yaml" >"$STATE.url" 2>"$STATE.log" &
SERVER=$!
FS=
cleanup() {
  [ -n "$FS" ] && kill "$FS" 2>/dev/null
  kill -TERM "$SERVER" 2>/dev/null
  wait "$SERVER" 2>/dev/null
  # a second, short-lived server removes the sessions' sandboxes
  rm -f "$STATE"/sessions/*.json
  "$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
    --state-dir "$STATE" --config "$STATE.yaml" >/dev/null 2>&1 &
  sleep 1; kill -TERM $! 2>/dev/null; wait $! 2>/dev/null
  rm -rf "$STATE" "$STATE.yaml" "$STATE.url" "$STATE.log" "$DATA"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do [ -s "$STATE.url" ] && break; sleep 0.1; done
URL=$(head -1 "$STATE.url")
[ -n "$URL" ] || { cat "$STATE.log"; exit 1; }
sleep 1   # let the warm pool fill

# BENCH_ONLY=transfers skips straight to the transfers
# AGENTCUBE_BENCH_SHORT=1 (CI): fewer iterations and a 64 MiB transfer;
# the ratios are printed as always, never enforced.
if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then
  N_LIFE=20 N_EXEC=40 N_CODE=20 FAN="8 10" MIB=64
else
  N_LIFE=100 N_EXEC=300 N_CODE=100 FAN="32 50" MIB=1024
fi
if [ "${BENCH_ONLY:-}" != transfers ]; then
  "$BENCH" lifecycle "$URL" $N_LIFE
  "$BENCH" exec "$URL" $N_EXEC
  "$BENCH" runcode "$URL" $N_CODE
  # shellcheck disable=SC2086
  "$BENCH" fanout "$URL" $FAN
fi

# --- upload and download (1 GiB), against a plain file server -----------
head -c $((MIB * 1048576)) /dev/urandom >"$DATA/blob"
PORT=$((20000 + $$ % 20000))
mkdir -p "$DATA/plain"
"$BENCH" fileserver "$PORT" "$DATA/plain" >"$DATA/fs.out" &
FS=$!
for _ in $(seq 1 50); do grep -q ready "$DATA/fs.out" 2>/dev/null && break; sleep 0.1; done
secs() { curl -s -o /dev/null -w '%{time_total}' "$@"; }
mbps() { awk -v s="$1" -v m="$MIB" 'BEGIN { printf "%.0f", m / s }'; }
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$SERVER/status"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$SERVER/status"; }

SID=$(curl -s -d '{"name":"big","namespace":"default"}' "$URL/v1/code-interpreter" |
      sed 's/.*"sessionId":"\([^"]*\)".*/\1/')
DPB="$URL/v1/namespaces/default/code-interpreters/big/invocations"
# Best of three, each transfer starting with no dirty pages (sync), so
# that one side's writeback does not slow the other down.
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }
p_up= p_down= a_up= a_down= up_growth=0 down_growth=0
for round in 1 2 3; do
  sync; t=$(secs -T "$DATA/blob" "http://127.0.0.1:$PORT/blob"); p_up=$(min "$t" "$p_up")
  sync; base=$(rss); echo 5 >"/proc/$SERVER/clear_refs"
  t=$(secs -H "x-agentcube-session-id: $SID" -F path=blob \
      -F "file=@$DATA/blob" "$DPB/api/files"); a_up=$(min "$t" "$a_up")
  g=$(( $(hwm) - base )); [ "$g" -gt "$up_growth" ] && up_growth=$g
  sync; t=$(secs "http://127.0.0.1:$PORT/blob"); p_down=$(min "$t" "$p_down")
  sync; base=$(rss); echo 5 >"/proc/$SERVER/clear_refs"
  t=$(secs -H "x-agentcube-session-id: $SID" "$DPB/api/files/blob")
  a_down=$(min "$t" "$a_down")
  g=$(( $(hwm) - base )); [ "$g" -gt "$down_growth" ] && down_growth=$g
done
curl -s -o /dev/null -X DELETE "$URL/v1/code-interpreter/sessions/$SID"

echo "$MIB MiB upload:   agentcube $(mbps "$a_up") MiB/s, plain server $(mbps "$p_up") MiB/s," \
  "ratio $(awk -v a="$a_up" -v p="$p_up" 'BEGIN { printf "%.2f", p / a }')" \
  "(target >= 0.4); server peak RSS growth $((up_growth / 1024)) MiB (target < 32)"
echo "$MIB MiB download: agentcube $(mbps "$a_down") MiB/s, plain server $(mbps "$p_down") MiB/s," \
  "ratio $(awk -v a="$a_down" -v p="$p_down" 'BEGIN { printf "%.2f", p / a }')" \
  "(target >= 0.4); server peak RSS growth $((down_growth / 1024)) MiB (target < 32)"
