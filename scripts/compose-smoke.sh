#!/usr/bin/env bash
# Brings up docker-compose.yml (3 nodes, HAProxy, mock) with the local images
# from scripts/images.sh and sends requests through the load balancer on
# 127.0.0.1:8080; tears everything down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export TOLLGATE_IMAGE="${TOLLGATE_IMAGE:-tollgate:local}" HAPROXY_IMAGE="${HAPROXY_IMAGE:-tollgate-lb:local}"
project=tollgate-smoke
# The compose file has no default secret; a throwaway one for this run.
export TOLLGATE_CLUSTER_SECRET="${TOLLGATE_CLUSTER_SECRET:-$(head -c 32 /dev/urandom | base64)}"
if docker compose version >/dev/null 2>&1; then
  compose() { docker compose -p "$project" "$@"; }
else
  compose() { docker-compose -p "$project" "$@"; }
fi
trap 'compose down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
compose up -d --no-build
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:8080/ready >/dev/null && break
  sleep 0.3
done
ok=0
for i in $(seq 1 30); do
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/v1/chat/completions \
    -H 'content-type: application/json' \
    -d '{"model":"mock/mock-1","messages":[{"role":"user","content":"hello"}]}')
  [ "$code" = 200 ] && ok=$((ok + 1))
done
echo "through the load balancer: $ok/30 requests answered 200"
[ "$ok" = 30 ]
