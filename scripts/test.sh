#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh Debian
# machine, builds once, and runs every suite (Rust unit + integration tests
# with nextest, then the official OpenAI Python SDK against the real binary).
#
#   scripts/test.sh
#
# CARGO_TARGET_DIR and TOLLGATE_VENV may point at directories that survive
# between runs (CI does this) so repeated runs only rebuild what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
VENV="${TOLLGATE_VENV:-$PWD/.venv}"

. scripts/lib/deps.sh
ensure_libclang

echo "--- cargo fmt --check"
cargo fmt --all -- --check

echo "--- build"
cargo build --workspace --all-targets --locked

echo "--- rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "--- python SDK tests"
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's system Python ships venv separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
TOLLGATE_BIN="$CARGO_TARGET_DIR/debug/tollgate" "$VENV/bin/python" -m pytest -q tests/sdk
