#!/usr/bin/env bash
# Builds the images docker-compose.yml uses from local parts only, for
# machines that cannot pull images:
#   tollgate:local     the tollgate binary and the shared libraries it links, on an empty base
#   tollgate-lb:local  HAProxy on a Debian root filesystem made with debootstrap
# Users who can pull images use the Dockerfile and haproxy:2.8 instead.
#
#   scripts/images.sh        then   TOLLGATE_IMAGE=tollgate:local HAPROXY_IMAGE=tollgate-lb:local docker compose up
#
# The binary is a fresh release build, or TOLLGATE_IMAGE_BIN if set (the test
# command passes the debug binary it already built, to build only once).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TOLLGATE_IMAGE_CACHE:-/var/cache/tollgate/images}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$CACHE"

. scripts/lib/deps.sh
ensure_libclang

echo "--- tollgate:local"
if [ -n "${TOLLGATE_IMAGE_BIN:-}" ]; then
  bin="$TOLLGATE_IMAGE_BIN"
else
  cargo build --release --locked --bin tollgate
  bin="$CARGO_TARGET_DIR/release/tollgate"
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp"
cp "$bin" "$root/usr/local/bin/tollgate"
# The dynamic loader and every library the binary links, at their own paths.
for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | sort -u); do
  cp --parents -L "$lib" "$root"
done
tar -C "$root" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/bin/tollgate"]' \
  -c 'CMD ["serve"]' \
  -c 'ENV TOLLGATE_SERVER__DATA_DIR=/data' \
  -c 'ENV TOLLGATE_SERVER__LISTEN=0.0.0.0:8080' \
  -c 'WORKDIR /data' \
  -c 'EXPOSE 8080 7946/udp' \
  - tollgate:local >/dev/null

echo "--- tollgate-lb:local"
if ! docker image inspect tollgate-lb:local >/dev/null 2>&1; then
  if [ ! -x "$CACHE/lb-root/usr/sbin/haproxy" ]; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    rm -rf "$CACHE/lb-root"
    debootstrap --variant=minbase --include=haproxy bookworm "$CACHE/lb-root" http://deb.debian.org/debian >/dev/null
  fi
  mkdir -p "$CACHE/lb-root/usr/local/etc/haproxy"
  tar -C "$CACHE/lb-root" -c . | docker import \
    -c 'CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
    - tollgate-lb:local >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^tollgate(-lb)?:local'
