#!/usr/bin/env bash
# Install (Debian package) and start redis-server on 127.0.0.1:${REDIS_PORT:-6379}
# without systemd. Idempotent: a server already answering is reused.
#
# Persistence is what Herald's redis backend needs to keep its promise that a
# published message survives a server restart: the append-only file with
# appendfsync always (every write is on disk before Redis answers, so before
# Publish returns). A server found running without it is switched to it with
# CONFIG SET. Data lives in $STATE_DIR/redis-$PORT.
set -euo pipefail
PORT="${REDIS_PORT:-6379}"
STATE="${STATE_DIR:-/tmp/herald-servers}/redis-$PORT"
t0=$(date +%s)
if ! command -v redis-server >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
t1=$(date +%s)
mkdir -p "$STATE"
cli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
if ! cli ping 2>/dev/null | grep -q PONG; then
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes \
    --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --dir "$STATE" \
    --appendonly yes --appendfsync always --save ''
fi
for _ in $(seq 1 100); do
  cli ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
cli ping | grep -q PONG
# A server that was running already (started by someone else) may not persist.
if [ "$(cli config get appendonly | tail -1)" != yes ]; then cli config set appendonly yes >/dev/null; fi
if [ "$(cli config get appendfsync | tail -1)" != always ]; then cli config set appendfsync always >/dev/null; fi
# Wait until the server is past its AOF rewrite and loading (ready for writes).
for _ in $(seq 1 100); do
  [ "$(cli info persistence | tr -d '\r' | sed -n 's/^loading:\(.*\)/\1/p')" = 0 ] && break
  sleep 0.1
done
t2=$(date +%s)
echo "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') ready on redis://127.0.0.1:$PORT/0 (appendonly yes, appendfsync always) pid=$(cat "$STATE/redis.pid" 2>/dev/null || echo ?) install=$((t1-t0))s start=$((t2-t1))s"
