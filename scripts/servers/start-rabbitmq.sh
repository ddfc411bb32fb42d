#!/usr/bin/env bash
# Install (Debian package) and start RabbitMQ on 127.0.0.1:5672 without systemd.
# Idempotent: a node already running is reused. The node is rabbit@localhost
# (pinned in /etc/rabbitmq/rabbitmq-env.conf) so it does not depend on the host
# name resolving; the guest/guest user works on loopback.
set -euo pipefail
t0=$(date +%s)
if ! command -v rabbitmq-server >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi
t1=$(date +%s)
# Read by both the server and rabbitmqctl.
want='NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672'
if [ "$(cat /etc/rabbitmq/rabbitmq-env.conf 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > /etc/rabbitmq/rabbitmq-env.conf
fi
PIDFILE=/var/lib/rabbitmq/mnesia/rabbit@localhost.pid
# Always go through the /usr/sbin wrappers: they switch to the rabbitmq user,
# so the CLI uses the same Erlang cookie as the server.
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rm -f "$PIDFILE"
  rabbitmq-server -detached   # logs: /var/log/rabbitmq/
fi
# await_startup fails at once while the node is not registered in epmd yet;
# wait <pidfile> polls until it is.
rabbitmqctl -q wait "$PIDFILE" --timeout 120
rabbitmqctl -q await_startup --timeout 120
t2=$(date +%s)
echo "rabbitmq $(rabbitmqctl -q version) ready on amqp://guest:guest@127.0.0.1:5672/ pid=$(cat "$PIDFILE") install=$((t1-t0))s start=$((t2-t1))s"
