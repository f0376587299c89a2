#!/usr/bin/env bash
# durlab serve against a real redis-server, side by side, on this machine, in one run:
#  1. redis-benchmark against both with the same flags (-t set -n N -c C -P P), per
#     appendfsync policy, servers alternating, each run on a fresh data directory;
#  2. durlab bench --target durlab-server,redis (the harness's own client) at 1 and 50
#     connections, with and without pipelining (it alternates the two servers configuration
#     by configuration), repeated and reported as the median ratio.
# Prints ratio tables (durlab-server / redis; > 1 means durlab is faster). Everything runs on
# 127.0.0.1 with OS-assigned ports; every server is stopped at the end.
#
# Usage: scripts/compare-redis.sh [--quick] [--policies always,everysec,no] [--requests N] [--rounds N]
#        [--durlab-flags "--prealloc zero"]   (extra flags of durlab serve and durlab bench)
set -euo pipefail
cd "$(dirname "$0")/.."
policies="always,everysec,no"
requests=100000
duration=5
rounds=2
durlab_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) requests=20000; duration=2; rounds=1 ;;
    --policies) policies="$2"; shift ;;
    --requests) requests="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --durlab-flags) durlab_flags="$2"; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
for t in redis-server redis-benchmark; do
  command -v "$t" >/dev/null || { echo "error: $t missing: run scripts/install-deps.sh" >&2; exit 1; }
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -q -p durlab-harness
durlab="$CARGO_TARGET_DIR/release/durlab"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server KIND POLICY DIR -> sets $port and $pid
start_server() {
  local kind=$1 policy=$2 dir=$3
  mkdir -p "$dir"
  if [ "$kind" = durlab ]; then
    # shellcheck disable=SC2086
    "$durlab" serve --port 0 --dir "$dir" --appendfsync "$policy" $durlab_flags >"$dir.out" 2>"$dir.log" &
    pid=$!
    for _ in $(seq 200); do grep -q listening "$dir.out" 2>/dev/null && break; sleep 0.05; done
    port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$dir.out")
  else
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --appendonly yes \
      --appendfsync "$policy" --save '' --aof-use-rdb-preamble no --auto-aof-rewrite-percentage 0 \
      --logfile "$dir.log" &
    pid=$!
  fi
  pids+=("$pid")
  for _ in $(seq 200); do redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
  echo "error: $kind did not start (log $dir.log)" >&2; exit 1
}

# bench KIND POLICY CLIENTS PIPELINE -> prints requests/s
bench() {
  local dir="$work/$1-$2-$3-$4-$RANDOM"
  start_server "$1" "$2" "$dir"
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$requests" -c "$3" -P "$4" -q \
    | tr '\r' '\n' | sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' | tail -1
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

echo "== redis-benchmark -t set -n $requests (SET ops/s, median of $rounds alternating rounds)"
printf '%-9s %4s %4s %12s %12s %7s\n' policy -c -P durlab redis ratio
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for policy in ${policies//,/ }; do
  for c in 1 50; do
    for p in 1 16; do
      d=(); r=()
      for _ in $(seq "$rounds"); do d+=("$(bench durlab "$policy" "$c" "$p")"); r+=("$(bench redis "$policy" "$c" "$p")"); done
      dm=$(printf '%s\n' "${d[@]}" | median); rm_=$(printf '%s\n' "${r[@]}" | median)
      printf '%-9s %4s %4s %12.0f %12.0f %7.2f\n' "$policy" "$c" "$p" "$dm" "$rm_" "$(awk -v a="$dm" -v b="$rm_" 'BEGIN { print (b > 0 ? a / b : 0) }')"
    done
  done
done

echo
echo "== durlab bench --target durlab-server,redis (harness client, SET only, ${duration}s per run, median of $rounds rounds)"
for c in 1 50; do
  for p in 1 16; do
    for k in $(seq "$rounds"); do
      # shellcheck disable=SC2086
      "$durlab" bench --target durlab-server,redis --policy "$policies" --writers "$c" --pipeline "$p" $durlab_flags \
        --mix set=1 --duration "$duration" --no-probe --quiet --dir "$work" --out "$work/out-$c-$p-$k" --json \
        >"$work/harness-$c-$p-$k.json"
    done
    python3 - "$work"/harness-"$c"-"$p"-*.json <<'PY'
import json, statistics, sys
runs = {}
for path in sys.argv[1:]:
    for r in json.load(open(path)):
        c = r["config"]
        if c["target"] == "durlab-server" and r["ratio_to_redis"] is not None:
            key = (c["policy"], c["writers"], c["pipeline"])
            runs.setdefault(key, []).append((r["ratio_to_redis"], r["ops_per_sec"]))
for (policy, conns, pipeline), rs in runs.items():
    ratios = sorted(q for q, _ in rs)
    ops = statistics.median(o for _, o in rs)
    line = "%-9s conns %3d pipeline %3d  durlab %10.0f ops/s  ratio to redis %.2f (rounds: %s)"
    print(line % (policy, conns, pipeline, ops, statistics.median(ratios), " ".join("%.2f" % q for q in ratios)))
PY
  done
done
