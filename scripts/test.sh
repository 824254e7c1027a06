#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh Debian
# machine, builds once, and runs every suite (Rust unit + integration tests
# and in-process/multi-process cluster tests with nextest, the docker compose
# cluster tests on local images, then the official Python SDKs against the
# real binary, on their current and their previous majors, and the
# dashboard in headless Chromium).
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

echo "--- semantic cache model (tests/cache_embed.rs)"
# Obtained once into TOLLGATE_MODEL_DIR (default /var/cache/tollgate/models,
# or beside the build when that is not writable here).
if [ -z "${TOLLGATE_MODEL_DIR:-}" ] && ! { mkdir -p /var/cache/tollgate/models 2>/dev/null && [ -w /var/cache/tollgate/models ]; }; then
  export TOLLGATE_MODEL_DIR="$CARGO_TARGET_DIR/models"
fi
TOLLGATE_EMBED_MODEL="$(scripts/cache/fetch-model.sh)"
export TOLLGATE_EMBED_MODEL

echo "--- rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "--- Code Mode token benchmark (both modes must reach the same answers)"
cargo test --locked --bench codemode_tokens

echo "--- docker compose cluster tests"
if docker info >/dev/null 2>&1; then
  # The images reuse the debug binary built above: one build for everything.
  TOLLGATE_IMAGE_BIN="$CARGO_TARGET_DIR/debug/tollgate" scripts/images.sh
  cargo test -p cluster-tests --locked --test compose -- --ignored --nocapture
else
  echo "docker is not available here: the compose cluster tests did not run" >&2
fi

echo "--- python SDK tests"
# Twice: on the current major of every official SDK (tests/sdk/requirements.txt,
# what users install today), then on the previous majors that applications
# still run (requirements-previous.txt, in a venv of its own beside the first).
venv() {
  if [ ! -x "$1/bin/python" ]; then
    if ! python3 -m venv "$1" 2>/dev/null; then
      # Debian's system Python ships venv separately.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      fi
      rm -rf "$1"
      python3 -m venv "$1"
    fi
  fi
  "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
}
export TOLLGATE_BIN="$CARGO_TARGET_DIR/debug/tollgate"
venv "$VENV" tests/sdk/requirements.txt
"$VENV/bin/python" -m pytest -q tests/sdk
echo "--- python SDK tests, previous majors"
venv "$VENV-previous" tests/sdk/requirements-previous.txt
"$VENV-previous/bin/python" -m pytest -q tests/sdk
echo "--- dashboard browser tests (headless Chromium)"
ensure_chromium
venv "$VENV-browser" tests/browser/requirements.txt
TOLLGATE_ARTIFACTS="${TOLLGATE_ARTIFACTS:-$CARGO_TARGET_DIR/browser-artifacts}" \
  "$VENV-browser/bin/python" -m pytest -q tests/browser
