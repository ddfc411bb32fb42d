#!/usr/bin/env bash
# Install + start PostgreSQL on 127.0.0.1:${PG_PORT:-5432} without systemd, private data dir
# (does not use/modify the Debian 'main' cluster). Idempotent.
# Part of the test command (scripts/test.sh), which exports
# HERALD_TEST_POSTGRES_URL=postgres://herald:herald@127.0.0.1:5432/herald?sslmode=disable.
# Creates role herald/herald (LOGIN, CREATEDB) and database herald owned by it.
set -euo pipefail
PORT="${PG_PORT:-5432}"
DIR="${STATE_DIR:-/tmp/herald-servers}/postgres"
DATA="$DIR/data"
DB="${PG_DB:-herald}"; DBUSER="${PG_USER:-herald}"; DBPASS="${PG_PASSWORD:-herald}"
t0=$(date +%s)
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
t1=$(date +%s)
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p "$DIR"; chown postgres:postgres "$DIR"
if [ ! -s "$DATA/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log"
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  # -w waits until the server accepts connections; socket lives in $DIR (no /run/postgresql needed)
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
fi
psql_admin() { as_pg psql -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAtX "$@"; }
for i in $(seq 1 50); do "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.2; done
psql_admin -c "DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$DBUSER') THEN
    CREATE ROLE \"$DBUSER\" LOGIN CREATEDB PASSWORD '$DBPASS';
  END IF; END\$\$;"
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$DB'")" ]; then
  psql_admin -c "CREATE DATABASE \"$DB\" OWNER \"$DBUSER\""
fi
# Ready check over TCP with password, as the app will connect.
PGPASSWORD="$DBPASS" psql "host=127.0.0.1 port=$PORT user=$DBUSER dbname=$DB sslmode=disable" -qAtXc 'SELECT 1' >/dev/null
t2=$(date +%s)
echo "postgres $("$BIN/postgres" --version | awk '{print $3}') ready: postgres://$DBUSER:$DBPASS@127.0.0.1:$PORT/$DB?sslmode=disable pid=$(head -1 "$DATA/postmaster.pid") install=$((t1-t0))s start=$((t2-t1))s"
