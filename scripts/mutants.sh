#!/usr/bin/env bash
# Mutation testing of recovery's decisions (issue 19): runs cargo-mutants, one file at a time
# and one job at a time, on the files listed in scripts/mutants-common.sh (or those given as
# arguments), with the engine's `failpoints` feature and its recovery-related tests, then
# prints one table row per file. A timed-out mutant (an infinite loop) counts as caught;
# unviable ones (they do not compile) count for neither. Mutants known to be equivalent are
# excluded in .cargo/mutants.toml, each with the reason.
# Usage: scripts/mutants.sh [FILE...]    Output: target/mutants/<file>/mutants.out
# Exits non-zero if any mutant survived.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mutants-common.sh
ensure_cargo_mutants
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("${MUTANT_FILES[@]}")
root=${MUTANTS_OUT:-target/mutants}
rows=()
missed_total=0
started=$(date +%s)
for f in "${files[@]}"; do
  out="$root/${f//\//_}"
  rm -rf "$out"
  mkdir -p "$out"
  generated=$(cargo mutants "${MUTANT_ARGS[@]}" --list -f "$f" | grep -c . || true)
  t0=$(date +%s)
  # Exit 2 (missed) and 3 (timeouts) are tallied below; anything else is a failure to run.
  rc=0
  cargo mutants "${MUTANT_ARGS[@]}" -f "$f" -o "$out" || rc=$?
  case $rc in 0 | 2 | 3) ;; *) echo "cargo mutants failed on $f (exit $rc)" >&2; exit "$rc" ;; esac
  read -r caught missed timeout unviable <<<"$(mutant_counts "$out")"
  run=$((caught + missed + timeout + unviable))
  tested=$((caught + timeout + missed))
  score=$(awk -v c=$((caught + timeout)) -v t=$tested 'BEGIN { printf t ? "%.0f%%" : "-", t ? 100 * c / t : 0 }')
  rows+=("| $f | $run/$generated | $((caught + timeout)) | $missed | $unviable | $score | $(($(date +%s) - t0)) s |")
  missed_total=$((missed_total + missed))
done
echo
echo "| file | mutants run/generated | caught | missed | unviable | score | time |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "total time: $(($(date +%s) - started)) s; missed: $missed_total (listed in $root/*/mutants.out/missed.txt)"
[ "$missed_total" -eq 0 ]
