#!/usr/bin/env bash
# The whole test suite: every crate's unit, integration and doc tests (io_uring tests included:
# they fail, not skip, where the kernel refuses io_uring), the feature-gated crash points, after
# building every target (benchmarks included); then one summary line over all test binaries.
# Exits non-zero if any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# redis-server, redis-cli, redis-benchmark and fuse3 (installed only when missing).
scripts/install-deps.sh
cargo build --workspace --all-targets --release --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --release --locked --no-fail-fast 2>&1 | tee -a "$log" || status=1
# Crash points inside snapshot writing, rewrite and manifest installation (feature-gated).
cargo test -p durlab-engine --release --locked --features failpoints --test crash_points 2>&1 \
  | tee -a "$log" || status=1
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?/) p += $i; if ($(i+1) ~ /^failed;?/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
