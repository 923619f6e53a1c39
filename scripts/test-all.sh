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
# The controller-manager crash test (a burst of 1,000 bindings and provisions, the manager killed
# twice) runs on its own afterwards: beside the other tests its timings stretch past its
# deadlines on a 2-core machine, and under that load it has shown a stall of the restarted
# provisioner that is still being chased (docs/controllers.md, "Known problems").
crash_test='test(=a_killed_controller_manager_finishes_every_binding_and_provision_exactly_once)'
cargo nextest run --workspace --no-fail-fast --test-threads "${TEST_THREADS:-4}" -E "not $crash_test" "$@"
cargo nextest run -p volplane --test controller_crash --no-fail-fast
