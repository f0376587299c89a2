#!/usr/bin/env bash
# Installs what the tests and runs need beyond the Rust toolchain, from Debian's packages, only
# when something is missing: redis-server and redis-tools (redis-cli, redis-benchmark) for the
# comparison with real Redis 7, and fuse3 (fusermount3) for the recording filesystem
# (`durlab fs`; as root durlab mounts directly, fusermount3 is what non-root users need).
# Checks that /dev/fuse exists: FUSE tests fail, never skip, without it. Needs root or sudo.
set -euo pipefail
missing=()
for tool in redis-server redis-cli redis-benchmark fusermount3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing redis-server redis-tools fuse3 (missing: ${missing[*]})"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: run as root or install sudo" >&2; exit 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools fuse3
  # The redis package may start a system service on 6379; durlab never uses it (every test
  # and run starts its own redis-server on a free loopback port).
fi
echo "redis: $(redis-server --version | head -1)"
echo "fuse: $(fusermount3 --version 2>&1 | head -1)"
if [ ! -c /dev/fuse ]; then
  modprobe fuse 2>/dev/null || true
fi
[ -c /dev/fuse ] || { echo "error: /dev/fuse is missing: the recording filesystem needs FUSE" >&2; exit 1; }
