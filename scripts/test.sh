#!/usr/bin/env bash
# The test command: sets up what the tests need on this machine, checks the
# code, and runs every test under the race detector.
#
#   ./scripts/test.sh            everything (servers started when possible)
#   HERALD_NO_SERVERS=1 ./scripts/test.sh   skip server set-up (their tests skip)
#   ./scripts/test.sh ./broker/...          only these packages
#
# Servers (MariaDB, PostgreSQL, ...) are installed from Debian packages and
# started on loopback without systemd when this runs as root; their URLs are
# exported as HERALD_TEST_<NAME>_URL. A URL already set in the environment is
# used as it is. Off CI, a server that cannot be started only makes its tests
# skip; on CI (CI=true) it fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export STATE_DIR="${STATE_DIR:-/tmp/herald-servers}"

# start NAME VAR URL SCRIPT: run a server script unless VAR is already set,
# then export VAR=URL.
start() {
  local name=$1 var=$2 url=$3 script=$4
  if [ -n "${!var:-}" ]; then echo "$name: using $var from the environment"; return; fi
  if [ "${HERALD_NO_SERVERS:-}" = 1 ]; then echo "$name: HERALD_NO_SERVERS=1, its tests will skip"; return; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "$name: not root or no apt-get; its tests will skip (set $var to use your own server)"; return
  fi
  if bash "$script"; then
    export "$var=$url"
  elif [ "${CI:-}" = true ]; then
    echo "$name: could not be started, and CI must test against it" >&2; exit 1
  else
    echo "$name: could not be started; its tests will skip" >&2
  fi
}

step "servers"
if [ "$(id -u)" = 0 ] && [ "${HERALD_NO_SERVERS:-}" != 1 ] && command -v apt-get >/dev/null; then
  # One index refresh per machine, and only when a package is missing.
  need=0
  for cmd in mariadbd redis-server rabbitmq-server etcd chromium; do command -v "$cmd" >/dev/null || need=1; done
  if [ $need = 1 ] && [ ! -f "$STATE_DIR/.apt-updated" ]; then
    mkdir -p "$STATE_DIR"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$STATE_DIR/.apt-updated"
  fi
fi
export DEBIAN_FRONTEND=noninteractive
for s in scripts/servers/start-*.sh; do
  [ -f "$s" ] || continue
  case "$(basename "$s")" in
    start-mariadb.sh)  start mariadb  HERALD_TEST_MYSQL_URL    "mysql://herald:herald@127.0.0.1:3306/herald" "$s" ;;
    start-postgres.sh) start postgres HERALD_TEST_POSTGRES_URL "postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable" "$s" ;;
    start-redis.sh)    start redis    HERALD_TEST_REDIS_URL    "redis://127.0.0.1:6379/0" "$s" ;;
    start-rabbitmq.sh) start rabbitmq HERALD_TEST_AMQP_URL     "amqp://guest:guest@127.0.0.1:5672/" "$s" ;;
    start-etcd.sh)     start etcd     HERALD_TEST_ETCD_URL     "etcd://127.0.0.1:2379" "$s" ;;
  esac
done

# The console's browser tests drive Debian's chromium; without it they skip.
if [ "$(id -u)" = 0 ] && [ "${HERALD_NO_SERVERS:-}" != 1 ] && command -v apt-get >/dev/null; then
  bash scripts/install-chromium.sh || { [ "${CI:-}" = true ] && { echo "chromium: install failed, and CI must run the browser tests" >&2; exit 1; }; }
fi

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
# Built once from the pinned tools module, then run in each module.
bin="$STATE_DIR/bin"; mkdir -p "$bin"
go build -modfile=tools/go.mod -o "$bin/staticcheck" honnef.co/go/tools/cmd/staticcheck
"$bin/staticcheck" ./...
(cd gomicro && go vet ./... && "$bin/staticcheck" ./...)
(cd watermill && go vet ./... && "$bin/staticcheck" ./...)

step "generated code is fresh"
bash scripts/check-generate.sh
(cd gomicro && bash scripts/generate.sh --check)

step "go test -race"
if [ $# -gt 0 ]; then
  go test -race -count=1 -timeout 20m "$@"
else
  go test -race -count=1 -timeout 20m ./...
  step "go test -race (gomicro module)"
  (cd gomicro && go test -race -count=1 -timeout 10m ./...)
  step "go test -race (watermill module: Watermill's universal Pub/Sub tests)"
  (cd watermill && go test -race -count=1 -timeout 10m ./...)
fi

step "done"
