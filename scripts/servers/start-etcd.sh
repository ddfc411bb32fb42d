#!/usr/bin/env bash
# Install (Debian packages etcd-server + etcd-client) and start a one-member
# etcd on 127.0.0.1:${ETCD_PORT:-2379} (peer port ${ETCD_PEER_PORT:-2380})
# without systemd. Idempotent: a server already answering is reused.
#
# Herald's etcd registry (registry/etcd) is tested against it through
# HERALD_TEST_ETCD_URL=etcd://127.0.0.1:2379, which scripts/test.sh exports
# after running this script. Data lives in $STATE_DIR/etcd.
set -euo pipefail
PORT="${ETCD_PORT:-2379}"
PEER_PORT="${ETCD_PEER_PORT:-2380}"
DIR="${STATE_DIR:-/tmp/herald-servers}/etcd"
t0=$(date +%s)
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  # The packages are etcd-server and etcd-client (there is no "etcd").
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
fi
t1=$(date +%s)
export ETCDCTL_API=3
EP="http://127.0.0.1:$PORT"
ctl() { etcdctl --endpoints="$EP" --dial-timeout=1s --command-timeout=2s "$@"; }
mkdir -p "$DIR"
if ! ctl endpoint health >/dev/null 2>&1; then
  # A package install may have started a server through its init script
  # (where policy-rc.d does not forbid it) on another data directory; it
  # would hold the port. Ours is started only when the port is free.
  setsid nohup etcd --name herald --logger zap --log-level warn --data-dir "$DIR/data" \
    --listen-client-urls "$EP" --advertise-client-urls "$EP" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "herald=http://127.0.0.1:$PEER_PORT" \
    </dev/null >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
fi
for _ in $(seq 1 100); do
  ctl endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ctl put /herald/ready yes >/dev/null
[ "$(ctl get /herald/ready --print-value-only)" = yes ]
t2=$(date +%s)
echo "etcd $(etcd --version | awk 'NR==1{print $3}') ready on etcd://127.0.0.1:$PORT pid=$(cat "$DIR/etcd.pid" 2>/dev/null || echo ?) install=$((t1-t0))s start=$((t2-t1))s"
