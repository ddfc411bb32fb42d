#!/usr/bin/env bash
# Restart the RabbitMQ node that start-rabbitmq.sh runs (rabbit@localhost):
# stop the node (every connection is closed, queues and messages go to disk
# only as far as they already were), then start it again with
# start-rabbitmq.sh. RABBITMQ_RESTART=app restarts only the RabbitMQ
# application inside the running Erlang VM (stop_app, start_app), which is
# faster. Used by the rabbitmq backend's restart tests. Exit status 3 means
# "this server is not ours to restart".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PIDFILE=/var/lib/rabbitmq/mnesia/rabbit@localhost.pid
if [ "$(id -u)" != 0 ] || ! command -v rabbitmqctl >/dev/null || [ ! -f "$PIDFILE" ]; then
  echo "restart-rabbitmq: no rabbit@localhost node started by start-rabbitmq.sh (or not root)" >&2
  exit 3
fi
if [ "${RABBITMQ_RESTART:-node}" = app ]; then
  rabbitmqctl -q stop_app
  rabbitmqctl -q start_app
  rabbitmqctl -q await_startup --timeout 120
else
  rabbitmqctl -q stop "$PIDFILE"
  bash "$here/start-rabbitmq.sh" >/dev/null
fi
echo "rabbitmq restarted"
