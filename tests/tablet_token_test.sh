#!/usr/bin/env bash
# lindra-tablet's token sources: --token-file FILE and LINDRA_TOKEN keep the
# token off the command line (ps); --token still works; clear errors for a
# missing, empty or doubly given token; and a TLS failure that says what to
# do.
source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

start_server
"$server_bin" issue-token --key "$work/token.key" --user office --role admin --ttl 1h > "$work/office.token" || exit 1
run office init
run office seed-demo
srv=(--server "127.0.0.1:$port" --insecure)

run office sync "${srv[@]}" --token-file "$work/office.token"
check "--token-file: the sync goes through" 0 '^synced: pushed'
out=$(LINDRA_TOKEN=$(cat "$work/office.token") "$cli" --db "$work/office.db" sync "${srv[@]}" 2>&1)
rc=$?
check "LINDRA_TOKEN: the sync goes through" 0 '^synced: pushed'
run office sync "${srv[@]}" --token "$(cat "$work/office.token")"
check "--token still works" 0 '^synced: pushed'
out=$(LINDRA_TOKEN=garbage "$cli" --db "$work/office.db" sync "${srv[@]}" --token-file "$work/office.token" 2>&1)
rc=$?
check "--token-file wins over LINDRA_TOKEN" 0 '^synced: pushed'

out=$(env -u LINDRA_TOKEN "$cli" --db "$work/office.db" sync "${srv[@]}" 2>&1)
rc=$?
check "no token: usage error naming --token-file and LINDRA_TOKEN" 2 'needs a token: --token-file FILE, or LINDRA_TOKEN'
run office sync "${srv[@]}" --token-file "$work/office.token" --token x
check "--token and --token-file together: usage error" 2 'give one of them'
run office sync "${srv[@]}" --token-file "$work/absent.token"
check "a missing token file is named" 1 'cannot read .*absent\.token'
: > "$work/empty.token"
run office sync "${srv[@]}" --token-file "$work/empty.token"
check "an empty token file is named" 2 'empty\.token holds no token'
printf '  %s  \n\n' "$(cat "$work/office.token")" > "$work/spaced.token"
run office sync "${srv[@]}" --token-file "$work/spaced.token"
check "spaces and newlines around the token are ignored" 0 '^synced: pushed'
run office sign-out "${srv[@]}" --token-file "$work/office.token"
check "sign-out takes --token-file too" 0 '^signed out'

run office --help
check "--help names --token-file and LINDRA_TOKEN" 0 'LINDRA_TOKEN'

# Over TLS, a certificate the tablet does not trust: the error says what to fix.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=localhost" \
    -keyout "$work/self.key" -out "$work/self.pem" > /dev/null 2>&1 || exit 1
"$server_bin" --db "$work/tls.db" --listen 127.0.0.1:0 --token-key "$work/token.key" \
    --cert "$work/self.pem" --key "$work/self.key" > "$work/tls.log" 2>&1 &
tls_pid=$!
trap 'kill "$tls_pid" 2>/dev/null; cleanup' EXIT
tls_port=
for _ in $(seq 1 100); do
    tls_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/tls.log")
    [[ -n $tls_port ]] && break
    sleep 0.1
done
run tls init
run tls sync --server "127.0.0.1:$tls_port" --token-file "$work/office.token"
check "an untrusted certificate: the error says which CA and name it needs" 1 \
    "certificate verify failed.*signed by a CA in the system's list \(or give --ca FILE\) and name 127\.0\.0\.1 \(subjectAltName IP:127\.0\.0\.1\)"
kill "$tls_pid" 2>/dev/null
wait "$tls_pid" 2>/dev/null

finish tablet_token
