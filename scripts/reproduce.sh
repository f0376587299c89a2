#!/usr/bin/env bash
# Regenerates the reference results: one `durlab run` per scenario in scenarios/, written to
# results/<scenario>/reference/ (JSON, report.md, SVG and PNG plots), then copies quickstart's
# headline plot to results/loss-vs-throughput.png for the README.
#
#   scripts/reproduce.sh            # every scenario, --quick (about 1-2 minutes each on 2 cores)
#   scripts/reproduce.sh --full     # the scenarios' own durations and trial counts
#   scripts/reproduce.sh quickstart event-stream   # only these
#
# Each run records its seed, configuration, machine facts and crate versions in run.json, so
# anyone can rerun one configuration exactly (see docs/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=--quick
names=()
for arg in "$@"; do
  case "$arg" in
    --full) quick= ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  for f in scenarios/*.toml; do names+=("$(basename "$f" .toml)"); done
fi
cargo build --release --locked -p durlab-harness
for name in "${names[@]}"; do
  out="results/$name/reference"
  rm -rf "$out"
  echo "== $name -> $out"
  # A violation is a finding, written into the report: go on with the next scenario.
  "${CARGO_TARGET_DIR:-target}/release/durlab" run "$name" $quick --out "$out" --run-id reference \
    || echo "== $name: violations or failed configurations, see $out/report.md"
done
if [ -f results/quickstart/reference/loss-vs-throughput.png ]; then
  cp results/quickstart/reference/loss-vs-throughput.png results/loss-vs-throughput.png
fi
