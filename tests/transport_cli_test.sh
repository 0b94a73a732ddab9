#!/usr/bin/env bash
# The transports from the outside: the real lindra-server and lindra-tablet
# over raw TLS and wss:// on one port, --server URLs good and bad, and a
# client and a server that disagree on TLS (--insecure on one side only)
# saying what to do instead of "closed by the server", the outbox intact.
#
# Usage: tests/transport_cli_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

# The plain (--insecure) server first.
start_server
plain_port=$port
"$server_bin" issue-token --key "$work/token.key" --user office --role admin --ttl 1h > "$work/office.token"
token=$(cat "$work/office.token")
run office init
run office seed-demo
waiting=$("$cli" --db "$work/office.db" outbox)

run office sync --server "127.0.0.1:$plain_port" --token "$token"
check "a TLS client against a plain server is told the server does not speak TLS" 1 \
    "the server does not speak TLS.*connect with --insecure"
check_not "... not 'closed by the server'" "closed by the server"
run office sync --server "wss://127.0.0.1:$plain_port/lindra" --token "$token"
check "the same over wss://" 1 "the server does not speak TLS"
run office outbox
check "the outbox is intact" 0 "^$(literal "$waiting")\$"
grep -q 'the client started a TLS handshake and this server does not speak TLS' "$work/server.log" \
    && pass "the server's log says what the client did" || fail "the server's log says what the client did"

# Then a TLS server on the same store.
stop_server
start_tls_server

run office sync --server "127.0.0.1:$port" --insecure --token "$token"
check "an --insecure client against a TLS server is told to drop --insecure" 1 \
    "this server speaks TLS.*drop --insecure"
check_not "... not 'closed by the server'" "closed by the server"
run office sync --server "ws://127.0.0.1:$port/lindra" --insecure --token "$token"
check "ws:// against a TLS server is told to use TLS" 1 "HTTP 400.*use https:// or wss://"
run office outbox
check "the outbox is still intact" 0 "^$(literal "$waiting")\$"

run office sync --server "wss://127.0.0.1:$port/lindra" --ca "$work/ca.pem" --token "$token"
check "wss:// pushes the outbox" 0 "synced: pushed"
run office outbox
check "the outbox is empty" 0 "^outbox: 0 "
run fresh init
run fresh sync --server "tls://127.0.0.1:$port" --ca "$work/ca.pem" --token "$token"
check "raw TLS on the same port pulls it" 0 "synced: .*pulled [1-9]"
run fresh sync --server "wss://127.0.0.1:$port/elsewhere" --ca "$work/ca.pem" --token "$token"
check "a wrong wss:// path is named" 1 "HTTP 404.*check the URL's path"

run office sync --server "https://127.0.0.1:$port" --token "$token"
check "an unknown scheme is a usage error" 2 "unknown scheme \"https\""
run office sync --server "wss://127.0.0.1:99999" --token "$token"
check "a bad port is a usage error" 2 "bad port \"99999\""
run office sync --server "wss://:443" --token "$token"
check "a missing host is a usage error" 2 "missing host"

finish transport_cli_test
