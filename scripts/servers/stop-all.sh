#!/usr/bin/env bash
# Stop every server the start-*.sh scripts started, through the server's own
# stop command or its PID file. Idempotent: a server that is not running is
# skipped. Data stays in $STATE_DIR (and /var/lib/<server>) for the next start.
set -u
S="${STATE_DIR:-/tmp/herald-servers}"
stop_pid() { # name pidfile
  [ -f "$2" ] || return 0
  local pid; pid=$(head -1 "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $1 ($pid)"
  fi
  rm -f "$2"
}

# redis (start-redis.sh): SHUTDOWN fsyncs the append-only file first.
for f in "$S"/redis-*/redis.pid; do
  [ -f "$f" ] || continue
  port=$(basename "$(dirname "$f")" | cut -d- -f2)
  if redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || ! kill -0 "$(head -1 "$f")" 2>/dev/null; then
    rm -f "$f"; echo "stopped redis ($port)"
  else
    stop_pid redis "$f"
  fi
done

# rabbitmq (start-rabbitmq.sh): epmd is started by the node and outlives it.
if [ -f /var/lib/rabbitmq/mnesia/rabbit@localhost.pid ] && command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q stop /var/lib/rabbitmq/mnesia/rabbit@localhost.pid 2>/dev/null && echo "stopped rabbitmq"
  epmd -kill >/dev/null 2>&1 || true
fi

# etcd (start-etcd.sh): a plain process with a PID file.
stop_pid etcd "$S/etcd/etcd.pid"

exit 0
