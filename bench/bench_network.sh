#!/bin/sh
# Session networks: pasta against slirp4netns (time to a configured
# namespace, 100 MB over TCP against the host's own transfer), and the
# server's create + first command with network against without, all in
# this run (bench/net_bench.py). Without slirp4netns (apt-get install
# slirp4netns) pasta is measured alone.
set -u
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: needs root (namespaces, veth pairs, session uids)"
  exit 0
fi
for t in pasta ip nsenter setpriv python3; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "skipped: $t is not installed"; exit 0; }
done
# A transfer that the user-mode network cuts short (pasta resets under
# load) is reported, not a failure of the build: benchmarks report.
python3 "$ROOT/bench/net_bench.py" ||
  echo "bench_network: stopped early (a transfer was cut short; see above)"
