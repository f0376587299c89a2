#!/usr/bin/env bash
# CI: mutation testing of the lines that the last commit (or MUTANTS_BASE..HEAD) changed in
# recovery's decision files (scripts/mutants-common.sh), so a change there cannot land with a
# new surviving mutant. Finishes at once when the change touches none of them, or when the
# base commit is missing (a shallow clone). Installs cargo-mutants only when it has work.
# Exits non-zero if a mutant on a changed line survived.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mutants-common.sh
base=${MUTANTS_BASE:-HEAD~1}
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  echo "mutants-diff: no commit $base here (shallow clone or first commit): skipped"
  exit 0
fi
out=target/mutants-diff
rm -rf "$out"
mkdir -p "$out"
diff="$out/changes.diff"
git diff "$base" HEAD -- "${MUTANT_FILES[@]}" >"$diff"
if [ ! -s "$diff" ]; then
  echo "mutants-diff: $base..HEAD changes none of the mutation-tested files: skipped"
  exit 0
fi
started=$(date +%s)
ensure_cargo_mutants
rc=0
cargo mutants "${MUTANT_ARGS[@]}" --in-diff "$diff" -o "$out" || rc=$?
read -r caught missed timeout unviable <<<"$(mutant_counts "$out")"
echo "mutants-diff ($base..HEAD): caught $((caught + timeout)), missed $missed, unviable $unviable, $(($(date +%s) - started)) s"
if [ "$missed" -gt 0 ]; then
  echo "surviving mutants on changed lines (kill them with a test, or exclude an equivalent one in .cargo/mutants.toml with the reason):"
  cat "$out/mutants.out/missed.txt"
  exit 1
fi
case $rc in 0 | 2 | 3) ;; *) echo "cargo mutants failed (exit $rc)" >&2; exit "$rc" ;; esac
