#!/usr/bin/env bash
# Several replicas on one machine, as in production but on 127.0.0.1: redis-server (the shared state-snapshot tier),
# three `fury serve` replicas of one model, and HAProxy in front with deploy/haproxy/haproxy.cfg.
#   balancer http://127.0.0.1:${FURY_LB_PORT:-8080}, replicas :8101-8103 (FURY_REPLICA_BASE + 1…3), redis :6399
# Ctrl-C (SIGINT) or SIGTERM stops them all: the replicas drain first. Needs redis-server and haproxy
# (apt-get install redis-server haproxy) and a built checkout (npm ci). FURY_MODEL picks the checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lb=${FURY_LB_PORT:-8080}
base=${FURY_REPLICA_BASE:-8100}
redis=${FURY_REDIS_PORT:-6399}
model=${FURY_MODEL:-models/fury-2mamba-tiny}
for tool in redis-server haproxy; do
  command -v "$tool" >/dev/null || { echo "local-cluster: $tool not found: apt-get install redis-server haproxy" >&2; exit 1; }
done

pids=()
stop() {
  trap - TERM INT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
  echo "local-cluster: stopped" >&2
  exit 0
}
trap stop TERM INT

redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
pids+=($!)
for i in 1 2 3; do
  node --max-semi-space-size=64 dist/cli/fury.js serve --model "$model" --port $((base + i)) --replica-name "r$i" --overload-status 503 \
    --state-cache-redis "redis://127.0.0.1:$redis" --log-level warn &
  pids+=($!)
done
for i in 1 2 3; do
  until curl -sf -o /dev/null "http://127.0.0.1:$((base + i))/health"; do sleep 0.3; done
done
FURY_LB_BIND="127.0.0.1:$lb" FURY_REPLICA_1="127.0.0.1:$((base + 1))" FURY_REPLICA_2="127.0.0.1:$((base + 2))" \
  FURY_REPLICA_3="127.0.0.1:$((base + 3))" haproxy -db -f deploy/haproxy/haproxy.cfg > /dev/null &
pids+=($!)
echo "local-cluster: http://127.0.0.1:$lb → replicas r1…r3 on :$((base + 1))-$((base + 3)), redis :$redis" >&2
wait
