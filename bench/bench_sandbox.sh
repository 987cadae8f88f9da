#!/bin/sh
# The live sandbox's C API (run as root): exec of `true` against fork+exec
# of /bin/true, a python context run against that exec, box lifecycle,
# cancel latency, and the idle cost of 200 live boxes, all in this run.
set -u
# AGENTCUBE_BENCH_SHORT=1 (CI): 100 execs and 50 idle boxes
if [ "${AGENTCUBE_BENCH_SHORT:-0}" = 1 ]; then
  exec "$ROOT/$BUILD/bench/bench_sandbox" 100 50
fi
exec "$ROOT/$BUILD/bench/bench_sandbox" 300 200
