#!/usr/bin/env bash
# Services the tests need, to run before them (.ci/run calls it). Idempotent: a second run changes nothing.
#
# PostgreSQL (tests/test_zoo.py::test_two_workers_share_a_postgresql_study): the test starts its own throwaway
# server, with initdb + pg_ctl on a free 127.0.0.1 port in a temporary folder, as the `postgres` user when run as
# root (PostgreSQL refuses root), and stops it afterwards; it is skipped, saying why, when none can be started.
# So this script installs Debian's server package (binaries in /usr/lib/postgresql/<version>/bin, and the
# `postgres` user) and checks that a server starts and answers; it leaves no server running.
set -euo pipefail

find_bin() {
    # The newest Debian server version's binary $1, or nothing.
    ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if [ -z "$(find_bin initdb)" ]; then
    echo "services: installing PostgreSQL (Debian package postgresql)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
INITDB="$(find_bin initdb)"
PG_CTL="$(find_bin pg_ctl)"
PSQL="$(command -v psql || find_bin psql)"

# Check: a throwaway server in a temporary folder on a free port, as the user the test runs it as.
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); fi
DIR="$(mktemp -d /tmp/sb3-metarim-pg-check.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
    "${RUN_AS[@]}" "$PG_CTL" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
"${RUN_AS[@]}" "$INITDB" -D "$DIR/data" -U postgres -A trust --no-sync >/dev/null
"${RUN_AS[@]}" "$PG_CTL" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" start >/dev/null
"$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -Atc "select 'services: ' || version()" postgres
