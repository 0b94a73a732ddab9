# A throw-away PostgreSQL cluster for one test run; sourced by scripts/test.
#
#   lindra_pg_start   starts it and exports LINDRA_TEST_PG (a libpq URI);
#                     if LINDRA_TEST_PG is already set, uses that server instead
#   lindra_pg_stop    stops it and removes its directory (idempotent)
#
# lindra_pg_start sets traps so the cluster is stopped on exit, on failure
# and on an interrupt. The cluster listens on 127.0.0.1 only, trusts every
# local user (a test server, never a real one) and runs with fsync=off: a
# power cut loses nothing the tests need, and fsync only makes them slower.

LINDRA_PG_DIR=""

lindra_pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "lindra: PostgreSQL's server programs are missing (Debian: apt-get install postgresql)" >&2
        return 1
    fi
    echo "$bin"
}

# lindra_pg_as CMD...: runs CMD as the owner of the cluster (initdb refuses root).
lindra_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

lindra_pg_start() {
    if [ -n "${LINDRA_TEST_PG:-}" ]; then
        echo "lindra: tests use the PostgreSQL server in LINDRA_TEST_PG" >&2
        return 0
    fi
    local bin
    bin=$(lindra_pg_bin)
    # Short: the socket's path must fit in sun_path (107 bytes).
    LINDRA_PG_DIR=$(mktemp -d /tmp/lpg.XXXXXX)
    trap lindra_pg_stop EXIT
    trap 'lindra_pg_stop; exit 130' INT
    trap 'lindra_pg_stop; exit 143' TERM
    [ "$(id -u)" -eq 0 ] && chown postgres: "$LINDRA_PG_DIR"
    lindra_pg_as "$bin/initdb" -D "$LINDRA_PG_DIR/data" -A trust -U postgres -E UTF8 --no-locale --no-sync >"$LINDRA_PG_DIR/initdb.log" 2>&1 ||
        { cat "$LINDRA_PG_DIR/initdb.log" >&2; return 1; }
    # A random port; another program may hold it, so a few tries.
    local port tries
    for tries in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        # fsync=off: see the top of this file.
        if lindra_pg_as "$bin/pg_ctl" -D "$LINDRA_PG_DIR/data" -l "$LINDRA_PG_DIR/server.log" -w -t 60 \
            -o "-p $port -k $LINDRA_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            export LINDRA_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
            echo "lindra: PostgreSQL test cluster on 127.0.0.1:$port ($LINDRA_PG_DIR)" >&2
            return 0
        fi
        echo "lindra: PostgreSQL did not start on port $port (try $tries of 5):" >&2
        tail -n 5 "$LINDRA_PG_DIR/server.log" >&2 || true
    done
    return 1
}

lindra_pg_stop() {
    [ -n "$LINDRA_PG_DIR" ] || return 0
    local bin
    if bin=$(lindra_pg_bin) && [ -f "$LINDRA_PG_DIR/data/postmaster.pid" ]; then
        lindra_pg_as "$bin/pg_ctl" -D "$LINDRA_PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$LINDRA_PG_DIR"
    LINDRA_PG_DIR=""
    unset LINDRA_TEST_PG
}
