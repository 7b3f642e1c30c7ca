#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster on 127.0.0.1 for the store tests and
# exports SEKISHO_TEST_POSTGRES_URL. Source it: `source scripts/start-postgres.sh`.
# Stop it with: pg_ctl -D "$SEKISHO_PG_DIR" stop (as the postgres user).
set -euo pipefail
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PG_BIN" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  return 1 2>/dev/null || exit 1
fi
PORT=${SEKISHO_PG_PORT:-54329}
export SEKISHO_PG_DIR=${SEKISHO_PG_DIR:-/tmp/sekisho-pg-$PORT}
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then RUNAS=(runuser -u postgres --); fi
if ! "${RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$SEKISHO_PG_DIR" status >/dev/null 2>&1; then
  rm -rf "$SEKISHO_PG_DIR"
  mkdir -p "$SEKISHO_PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$SEKISHO_PG_DIR"
  "${RUNAS[@]}" "$PG_BIN/initdb" -D "$SEKISHO_PG_DIR" -U postgres -A trust --no-sync >/dev/null
  "${RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$SEKISHO_PG_DIR" -l "$SEKISHO_PG_DIR/server.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$SEKISHO_PG_DIR -c fsync=off" -w start >/dev/null
fi
export SEKISHO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "PostgreSQL running: $SEKISHO_TEST_POSTGRES_URL"
