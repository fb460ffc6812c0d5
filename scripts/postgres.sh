#!/usr/bin/env bash
# Start a throwaway PostgreSQL for heldout's tests. Idempotent: a second run finds the
# server up and only checks the role and database.
#
#   eval "$(bash scripts/postgres.sh | tail -1)"
#
# Installs Debian's `postgresql` package when no server binaries are found, runs a
# cluster of its own (not the Debian default one) as the `postgres` user on
# 127.0.0.1:54329 with its data in /tmp/heldout-pg, creates role `heldout` (password
# `heldout`) and database `heldout_test`, and prints the export line last. Progress goes
# to stderr, so stdout holds only that line. Works as root without systemd.
#
# The cluster trades durability for speed (fsync off) and is recreated if it no longer
# starts: it is for tests only.
set -euo pipefail

PORT="${HELDOUT_PG_PORT:-54329}"
DATA_DIR="${HELDOUT_PG_DATA:-/tmp/heldout-pg}"
LOCK_FILE="${DATA_DIR}.lock"
URL="postgresql+psycopg://heldout:heldout@127.0.0.1:${PORT}/heldout_test"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
    fi
}

# Run a command as the cluster's owner: `postgres` when we are root (initdb refuses
# root), ourselves otherwise.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_postgres() {
    if [[ $EUID -ne 0 ]]; then
        log "PostgreSQL is not installed and we are not root: run 'apt-get install -y postgresql' as root."
        exit 1
    fi
    log "installing Debian's postgresql package"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

init_cluster() {
    log "creating a cluster in $DATA_DIR"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    if [[ $EUID -eq 0 ]]; then
        chown postgres:postgres "$DATA_DIR"
    fi
    chmod 700 "$DATA_DIR"
    as_owner "$BINDIR/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >&2
    cat >>"$DATA_DIR/postgresql.conf" <<CONF

# heldout test cluster (scripts/postgres.sh)
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${DATA_DIR}'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

start_server() {
    # 9>&-: the server must not inherit the lock, or the next run would wait forever.
    # pg_ctl copes with the stale pid file of a server that was killed (unless the
    # pid still exists, e.g. as a zombie: then the cluster is recreated below).
    as_owner "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 start \
        >&2 9>&-
}

BINDIR="$(find_bindir)"
if [[ -z "$BINDIR" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    install_postgres
    BINDIR="$(find_bindir)"
fi
if [[ -z "$BINDIR" ]]; then
    log "no initdb/pg_ctl found under /usr/lib/postgresql/*/bin after installing postgresql"
    exit 1
fi

# One setup at a time: two sessions starting their tests together must not race initdb.
exec 9>"$LOCK_FILE"
flock 9

if [[ ! -f "$DATA_DIR/PG_VERSION" ]]; then
    init_cluster
fi

# Ask the port, not `pg_ctl status`: a killed server can linger as a zombie whose pid
# still looks alive.
if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    log "server already running on 127.0.0.1:${PORT}"
else
    log "starting the server on 127.0.0.1:${PORT}"
    if ! start_server; then
        # The data is throwaway: a cluster that no longer starts is made anew, once.
        log "the server did not start; recreating the cluster. Its log ended with:"
        tail -n 20 "$DATA_DIR/server.log" >&2 || true
        init_cluster
        if ! start_server; then
            log "the server did not start on a new cluster either; its log follows"
            tail -n 30 "$DATA_DIR/server.log" >&2 || true
            exit 1
        fi
    fi
fi

for _ in $(seq 1 60); do
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    sleep 1
done
if ! "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    log "the server does not accept connections on 127.0.0.1:${PORT}; see $DATA_DIR/server.log"
    exit 1
fi

as_owner "$BINDIR/psql" -h "$DATA_DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >&2 <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'heldout') THEN
        CREATE ROLE heldout LOGIN PASSWORD 'heldout';
    ELSE
        ALTER ROLE heldout LOGIN PASSWORD 'heldout';
    END IF;
END
$$;
SELECT 'CREATE DATABASE heldout_test OWNER heldout'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'heldout_test')\gexec
SQL

log "ready: $URL"
echo "export HELDOUT_TEST_PG_URL=${URL}"
