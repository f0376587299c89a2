# Shared by scripts/mutants.sh and scripts/mutants-diff.sh (sourced, not run).
#
# The files whose code decides whether a log is loaded, cut (keeping a copy) or refused, and
# the writer whose sync bookkeeping recovery trusts (issue 19).
MUTANT_FILES=(
  engine/src/recovery/tail.rs
  engine/src/recovery/mod.rs
  engine/src/recovery/files.rs
  engine/src/recovery/quarantine.rs
  engine/src/aof/record.rs
  engine/src/aof/scan.rs
  engine/src/hybrid/manifest.rs
  engine/src/aof/writer.rs
)
# cargo-mutants pinned, so that CI and developers count the same mutants.
MUTANTS_VERSION=27.1.0
# The engine's tests that can notice a change in those files: its unit tests and every
# integration test that recovers, writes or inspects a log or a manifest (crash_points needs
# the `failpoints` feature). The keyspace, snapshot-format and raw-I/O suites are left out:
# they never read a log, and they would double the time per mutant. Passed with --cargo-arg so
# that the build step, too, builds only these test targets.
MUTANT_ARGS=(
  -p durlab-engine --features failpoints -j 1 --no-shuffle
  --cargo-arg=--lib
)
for t in recovery recovery_mutants manifest_rules hybrid crash_points policies inspect \
  recording dir_sync backend decode_props startup_decisions replay_base; do
  MUTANT_ARGS+=("--cargo-arg=--test=$t")
done

# Installs cargo-mutants (the pinned version) unless it is there.
ensure_cargo_mutants() {
  if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $MUTANTS_VERSION" ]; then
    cargo install --locked cargo-mutants --version "$MUTANTS_VERSION"
  fi
}

# Prints "caught missed timeout unviable" counted from a cargo-mutants output directory.
mutant_counts() {
  local out=$1/mutants.out k
  for k in caught missed timeout unviable; do
    if [ -f "$out/$k.txt" ]; then grep -c . "$out/$k.txt" || true; else echo 0; fi
  done | paste -sd' '
}
