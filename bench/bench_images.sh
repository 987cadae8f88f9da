#!/bin/sh
# Sandbox images. On one server, measured in this run: session create +
# execute `true` + delete, and execute `true` alone, on a template with an
# image against the default layout (the host's /usr). Then the
# numpy/pandas/matplotlib image: its first build (time and size; built
# now unless the store has it, then as recorded at its build) and a
# rebuild with nothing changed.
set -u
B="$ROOT/$BUILD"
STORE=${AGENTCUBE_TEST_IMAGES:-$B/test-images}
STATE=$(mktemp -d /tmp/agentcube-bench-img.XXXXXX)
N=${BENCH_IMAGE_N:-40}
[ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ] && N=${BENCH_IMAGE_N:-10}
cat >"$STATE.yaml" <<'YAML'
templates:
  - name: host
    warmPoolSize: 0
  - name: img
    warmPoolSize: 0
    image: { packages: [python3-minimal, libpython3-stdlib] }
YAML
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then
    kill -TERM "$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null
  fi
  rm -f "$STATE"/sessions/*.json
  "$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
    --state-dir "$STATE" --config "$STATE.yaml" --image-dir "$STORE" \
    >/dev/null 2>&1 &
  sleep 1; kill -TERM $! 2>/dev/null; wait $! 2>/dev/null
  rm -rf "$STATE" "$STATE.yaml" "$STATE.url" "$STATE.log"
}
trap cleanup EXIT INT TERM

"$AGENTCUBE_BIN" image build --config "$STATE.yaml" --image-dir "$STORE" \
  >/dev/null 2>&1 || { echo "building the small image failed"; exit 1; }
"$AGENTCUBE_BIN" serve --no-auth --quiet --listen 127.0.0.1:0 \
  --state-dir "$STATE" --config "$STATE.yaml" --image-dir "$STORE" \
  >"$STATE.url" 2>"$STATE.log" &
SERVER=$!
for _ in $(seq 1 100); do [ -s "$STATE.url" ] && break; sleep 0.1; done
URL=$(head -1 "$STATE.url")
[ -n "$URL" ] || { cat "$STATE.log"; exit 1; }

python3 - "$URL" "$N" <<'PY'
import statistics, sys, time, requests
url, n = sys.argv[1], int(sys.argv[2])
s = requests.Session()
def dp(tpl):
    return f"{url}/v1/namespaces/default/code-interpreters/{tpl}/invocations/api/execute"
def create(tpl):
    r = s.post(url + "/v1/code-interpreter", json={"name": tpl, "namespace": "default"})
    r.raise_for_status()
    return r.json()["sessionId"]
def run(tpl, sid):
    r = s.post(dp(tpl), json={"command": ["true"]}, headers={"x-agentcube-session-id": sid})
    r.raise_for_status()
    assert r.json()["exit_code"] == 0
def delete(sid):
    s.delete(url + "/v1/code-interpreter/sessions/" + sid).raise_for_status()
cycle = {"host": [], "img": []}
for i in range(n):                       # interleaved: same load for both
    for tpl in (("host", "img") if i % 2 == 0 else ("img", "host")):
        t0 = time.perf_counter()
        sid = create(tpl); run(tpl, sid); delete(sid)
        cycle[tpl].append(time.perf_counter() - t0)
ex = {"host": [], "img": []}
sids = {t: create(t) for t in ex}
for i in range(n * 5):
    for tpl in (("host", "img") if i % 2 == 0 else ("img", "host")):
        t0 = time.perf_counter()
        run(tpl, sids[tpl])
        ex[tpl].append(time.perf_counter() - t0)
for sid in sids.values():
    delete(sid)
for name, d in (("create + execute true + delete", cycle),
                ("execute true", ex)):
    h, m = statistics.median(d["host"]), statistics.median(d["img"])
    print(f"{name}: image {m*1000:.1f} ms, host /usr {h*1000:.1f} ms "
          f"(median of {len(d['img'])}): ratio {m/h:.2f}x (target <= 1.10x)")
PY

# --- the numpy/pandas/matplotlib image -----------------------------------
DATA_CFG="$ROOT/workflows/templates/pydata.yaml"
ID=$("$AGENTCUBE_BIN" image ls --config "$DATA_CFG" --image-dir "$STORE" |
     awk '/pydata/ { print $1; exit }')
if "$AGENTCUBE_BIN" image ls --config "$DATA_CFG" --image-dir "$STORE" |
   grep -q "not built"; then
  if [ "${BENCH_SKIP_DATA_BUILD:-}" = 1 ] ||
     [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then
    echo "pandas image: not built (short mode or BENCH_SKIP_DATA_BUILD=1)"
    exit 0
  fi
  "$AGENTCUBE_BIN" image build --config "$DATA_CFG" --image-dir "$STORE" \
    >"$STATE.build" 2>&1 || { tail -20 "$STATE.build"; exit 1; }
  rm -f "$STATE.build"
  when="built in this run"
else
  when="as recorded when it was built"
fi
python3 - "$STORE/$ID/image.json" "$when" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"pandas image {j['id']}: first build {j['build_seconds']:.0f} s, "
      f"{j['size']/1e6:.0f} MB on disk ({sys.argv[2]})")
PY
t0=$(date +%s.%N)
"$AGENTCUBE_BIN" image build --config "$DATA_CFG" --image-dir "$STORE" \
  >/dev/null 2>&1
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "pandas image rebuild, nothing changed: %.3f s (target < 1 s)\n", b - a }'
