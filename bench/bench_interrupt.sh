#!/bin/sh
# Ctrl-C on `agentcube run`: a workflow whose step runs `sleep 60` gets
# SIGINT; it must exit 130 within 1 s plus the time of its finally steps
# (which run on the interrupted step's session, so the running command
# must be cancelled first). Measured: signal to exit, and the finally
# steps' own time in the same run (the baseline the bound is taken over).
set -u
BIN="$AGENTCUBE_BIN"
W=$(mktemp -d /tmp/agentcube-bench-int.XXXXXX)
export AGENTCUBE_HOME="$W/home"
mkdir -p "$AGENTCUBE_HOME"
cleanup() {
  if [ -f "$AGENTCUBE_HOME/serve.json" ]; then
    pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/' "$AGENTCUBE_HOME/serve.json")
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
now() { date +%s.%N; }

# start the local runtime once, outside the timings
"$BIN" -e 'local c <close> = agentcube.CodeInterpreterClient()' || exit 1

cat >"$W/long.yaml" <<'YAML'
name: interrupt
steps:
  - { id: long, exec: "sleep 60" }
finally:
  - { id: note, exec: "echo finally" }
YAML

if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then ROUNDS="1"; else ROUNDS="1 2 3"; fi
worst=0
for round in $ROUNDS; do
  out="$W/out.$round"
  sh -c 'echo $$ >"$1"; exec "$2" run "$3"' sh "$W/pid" "$BIN" \
    "$W/long.yaml" >"$out" 2>&1 &
  waiter=$!
  i=0
  until grep -q "start  long" "$out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "the step never started"; exit 1; }
    sleep 0.05
  done
  sleep 0.5                          # the command runs on the server now
  t0=$(now)
  kill -INT "$(cat "$W/pid")"
  wait "$waiter"; code=$?
  t1=$(now)
  fin=$(sed -n 's/.* note .* \([0-9.]*\)s$/\1/p' "$out" | head -1)
  [ -n "$fin" ] || fin=0
  took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  over=$(awk -v t="$took" -v f="$fin" 'BEGIN { printf "%.3f", t - f }')
  ran=$(grep -c "ok     note" "$out")
  echo "round $round: exit $code after ${took} s; finally steps ${fin} s" \
       "(ran: $ran); beyond them ${over} s"
  [ "$code" = 130 ] || { echo "exit code $code, not 130"; cat "$out"; exit 1; }
  worst=$(awk -v a="$over" -v b="$worst" 'BEGIN { print (a > b) ? a : b }')
done
r=$(awk -v w="$worst" 'BEGIN { printf "%.3f", w / 1.0 }')
echo "Ctrl-C to exit beyond the finally steps: worst ${worst} s; ratio to" \
     "the 1 s bound $r -> $(awk -v r="$r" 'BEGIN { print (r <= 1) ? "met" : "NOT met" }')"
