#!/usr/bin/env bash
# Installs redis-server and redis-tools (redis-cli, redis-benchmark) from Debian's packages,
# only when one of them is missing. Needs root (CI runs as root) or sudo.
set -euo pipefail
missing=()
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "redis: $(redis-server --version | head -1)"
  exit 0
fi
echo "installing redis-server redis-tools (missing: ${missing[*]})"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools
# The package may start a system service on 6379; durlab never uses it (every test and run
# starts its own redis-server on a free loopback port).
echo "redis: $(redis-server --version | head -1)"
