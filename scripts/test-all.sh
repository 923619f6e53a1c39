#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use (as root), builds
# once, and runs every test with nextest (tests run in parallel processes; each one uses its own
# temp dirs, ports, loop devices and processes, and cleans them up).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/volplane-target}"
export CARGO_TERM_COLOR=never

if [ "$(id -u)" = 0 ]; then
  packages=(etcd-server e2fsprogs xfsprogs util-linux)
  missing=()
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
command -v kubectl >/dev/null || { echo "kubectl is required for the end-to-end tests" >&2; exit 1; }

cargo fmt --all -- --check
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast --test-threads "${TEST_THREADS:-4}" "$@"
