#!/usr/bin/env bash
# Runs one gateway node with no config: HTTP on :8080, data in ./data.
# Installs what the build needs on a fresh Debian/Ubuntu machine first.
# Extra arguments go to `tollgate serve` (e.g. --config tollgate.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_libclang
exec cargo run --release --locked --bin tollgate -- serve "$@"
