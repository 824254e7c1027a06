# Sourced by the scripts: installs the system packages a build needs.
# RocksDB's bindings are generated with bindgen, which needs libclang.
ensure_libclang() {
  # clang-sys loads libclang.so or libclang-<version>.so (libclang-cpp is not it).
  # Not `grep -q`: it stops reading at the first match, ldconfig dies of
  # SIGPIPE, and under `set -o pipefail` the found library reads as missing.
  if ldconfig -p 2>/dev/null | grep -E '[[:space:]]libclang(-[0-9.]+)?\.so[[:space:]]' >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "--- installing libclang-dev"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    echo "--- installing libclang-dev (sudo)"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    echo "libclang is missing: install libclang-dev (Debian/Ubuntu) or clang" >&2
    return 1
  fi
}

# The dashboard's browser tests drive Debian's headless Chromium through its
# matching chromedriver (tests/browser).
ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "--- installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    echo "--- installing chromium and chromium-driver (sudo)"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium and chromedriver are missing: install them to run the browser tests" >&2
    return 1
  fi
}
