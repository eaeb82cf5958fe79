#!/usr/bin/env bash
# Checks the README's demo (scripts/demo.sh), each run on a cluster of its own:
# 1. played at 240x, it scales the web tier up and prints its summary and plot;
# 2. Ctrl-C (SIGINT to its whole process group, as a terminal sends it) and SIGTERM (to the
#    script alone, as `kill` or a supervisor sends it) stop it promptly and leave nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/demo

fail() {
  cat "$2"
  echo "demo check failed: $1" >&2
  exit 1
}

log=target/demo/check.log
DEMO_SPEED=240 bash scripts/demo.sh >"$log" 2>&1 || fail "the demo exited with $?" "$log"
peak=$(sed -n 's/^summary: peak web replicas \([0-9]*\),.*/\1/p' "$log")
[ -n "$peak" ] && [ "$peak" -gt 2 ] || fail "no scale-up in the summary" "$log"
grep -q '^plot: ' "$log" || fail "no plot" "$log"
grep -q 'Deployment/web scaled from 2 to' "$log" || fail "no Scaled event" "$log"
echo "demo check: peak web replicas $peak"

interrupt() {
  local signal=$1 whom=$2 log=target/demo/interrupt-$1.log demo
  # Job control gives the demo a process group of its own, and env resets SIGINT to its
  # default, as a terminal's shell would: a non-interactive shell starts background jobs
  # with SIGINT ignored, and a signal ignored on entry cannot be trapped (so a CI runner
  # that itself started in the background would make the demo deaf to Ctrl-C).
  set -m
  env --default-signal=INT bash scripts/demo.sh >"$log" 2>&1 &
  demo=$!
  set +m
  for _ in $(seq 1 240); do grep -q '^t= ' "$log" && break; sleep 0.5; done
  grep -q '^t= ' "$log" || fail "the demo did not start" "$log"
  if [ "$whom" = group ]; then kill -"$signal" -- -"$demo"; else kill -"$signal" "$demo"; fi
  for _ in $(seq 1 60); do kill -0 "$demo" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$demo" 2>/dev/null; then
    kill -KILL -- -"$demo" 2>/dev/null || true
    bash tests/cluster/down.sh >/dev/null 2>&1 || true
    fail "it did not stop within 30s of SIG$signal" "$log"
  fi
  local left
  left=$(pgrep -fa "$PWD/target/cluster|headroom-demo-app|target/debug/headroom run" || true)
  [ -z "$left" ] || fail "processes left after SIG$signal: $left" "$log"
  echo "demo check: SIG$signal to the $whom stopped it and removed the cluster"
}
interrupt INT group
interrupt TERM script
