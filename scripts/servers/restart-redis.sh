#!/usr/bin/env bash
# Restart the redis-server that start-redis.sh runs on 127.0.0.1:${REDIS_PORT:-6379}:
# SHUTDOWN (which fsyncs the append-only file), wait for the process to end,
# then start it again with start-redis.sh. Used by the redis backend's restart
# tests. Exit status 3 means "this server is not ours to restart".
set -euo pipefail
PORT="${REDIS_PORT:-6379}"
STATE="${STATE_DIR:-/tmp/herald-servers}/redis-$PORT"
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v redis-cli >/dev/null || [ ! -f "$STATE/redis.pid" ]; then
  echo "restart-redis: no redis started by start-redis.sh on port $PORT ($STATE/redis.pid)" >&2
  exit 3
fi
pid=$(cat "$STATE/redis.pid")
redis-cli -h 127.0.0.1 -p "$PORT" shutdown >/dev/null 2>&1 || true
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "restart-redis: redis $pid did not stop" >&2; exit 1; fi
bash "$here/start-redis.sh" >/dev/null
echo "redis restarted on 127.0.0.1:$PORT"
