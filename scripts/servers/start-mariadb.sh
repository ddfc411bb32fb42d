#!/usr/bin/env bash
# Install + start MariaDB on 127.0.0.1:${MYSQL_PORT:-3306} without systemd, private datadir. Idempotent.
# Creates database `herald` and user herald/herald (host '%').
# Part of the test command (scripts/test.sh), which exports
# HERALD_TEST_MYSQL_URL=mysql://herald:herald@127.0.0.1:3306/herald.
set -euo pipefail
PORT="${MYSQL_PORT:-3306}"
DIR="${STATE_DIR:-/tmp/herald-servers}/mariadb"
DATA="$DIR/data"; SOCK="$DIR/mysqld.sock"; PIDF="$DIR/mariadbd.pid"
DB="${MYSQL_DB:-herald}"; DBUSER="${MYSQL_USER:-herald}"; DBPASS="${MYSQL_PASSWORD:-herald}"
t0=$(date +%s)
if ! command -v mariadbd >/dev/null; then
  apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
fi
t1=$(date +%s)
if [ ! -d "$DATA/mysql" ]; then
  mkdir -p "$DATA"; chown -R mysql:mysql "$DIR"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DATA" \
    --auth-root-authentication-method=socket --skip-test-db >"$DIR/install-db.log" 2>&1
fi
if ! mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
  setsid nohup mariadbd --no-defaults --user=mysql --datadir="$DATA" --socket="$SOCK" \
    --pid-file="$PIDF" --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$DIR/error.log" --innodb-buffer-pool-size=64M \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    </dev/null >/dev/null 2>&1 &
fi
for i in $(seq 1 150); do
  mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1 && break
  sleep 0.2
done
# root@localhost authenticates via unix_socket (we are OS root), so no password needed here.
mariadb --no-defaults --socket="$SOCK" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB\`;
CREATE USER IF NOT EXISTS '$DBUSER'@'%' IDENTIFIED BY '$DBPASS';
GRANT ALL PRIVILEGES ON \`$DB\`.* TO '$DBUSER'@'%';
FLUSH PRIVILEGES;
SQL
# Ready check over TCP, as the app will connect.
mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$PORT" -u"$DBUSER" -p"$DBPASS" "$DB" -Nse 'SELECT 1' >/dev/null
t2=$(date +%s)
echo "mariadb $(mariadbd --version | awk '{print $3}') ready: $DBUSER:$DBPASS@tcp(127.0.0.1:$PORT)/$DB pid=$(cat "$PIDF") install=$((t1-t0))s start=$((t2-t1))s"
