# Shared by the black-box tests that drive the built lindra-server and
# lindra-tablet: arguments, a temporary directory removed at exit with the
# server stopped, the CLI runner and the PASS/FAIL checks (checks.sh).
# Source it with the script's arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"
# Sets server_bin, cli, work; start_server ARGS... (plain TCP) and
# start_tls_server ARGS... set port and server_pid.

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PATH_TO_lindra-server PATH_TO_lindra-tablet" >&2
    exit 2
fi
server_bin=$1
cli=$2
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

# run WHO ARGS...: the CLI on WHO's replica; sets $out (stdout and stderr) and $rc.
run() {
    local who=$1
    shift
    out=$("$cli" --db "$work/$who.db" "$@" 2>&1)
    rc=$?
}
# sync_as WHO: a sync of WHO's replica with the token in $work/WHO.token.
sync_as() { run "$1" sync --server "127.0.0.1:$port" --insecure --token "$(cat "$work/$1.token")"; }

# start_server ARGS...: a plain-TCP server on 127.0.0.1 with a new token
# key ($work/token.key) and a store in $work, ARGS added; waits up to 10 s
# for its port.
start_server() {
    "$server_bin" gen-key --out "$work/token.key" || exit 1
    launch_server --insecure "$@"
}

# start_tls_server ARGS...: the same over TLS, with a certificate for
# 127.0.0.1 from a throw-away CA ($work/ca.pem), valid for $cert_days days
# (1 unless set); keeps the token key and the CA of an earlier server of
# the test.
start_tls_server() {
    local days=${cert_days:-1}
    if [[ ! -f $work/ca.pem ]]; then
        {
            openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
                -subj "/CN=lindra test CA" -keyout "$work/ca.key" -out "$work/ca.pem"
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
                -keyout "$work/server.key" -out "$work/server.csr"
            openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days "$days" \
                -out "$work/server.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
        } > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }
    fi
    [[ -f $work/token.key ]] || "$server_bin" gen-key --out "$work/token.key" || exit 1
    launch_server --cert "$work/server.pem" --key "$work/server.key" "$@"
}

# stop_server: stops the running server (its store stays).
stop_server() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    server_pid=
}

launch_server() {
    "$server_bin" --db "$work/server.db" --listen 127.0.0.1:0 --token-key "$work/token.key" "$@" \
        > "$work/server.log" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/server.log")
        [[ -n $port ]] && break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        echo "FAIL: the server did not start" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
}
