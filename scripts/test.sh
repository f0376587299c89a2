#!/usr/bin/env bash
# The whole test suite: every crate's unit and integration tests (io_uring tests included: they
# fail, not skip, where the kernel refuses io_uring), then a check that benchmarks compile.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets --release --locked
cargo test --workspace --release --locked
# Crash points inside snapshot writing, rewrite and manifest installation (feature-gated).
cargo test -p durlab-engine --release --locked --features failpoints --test crash_points
