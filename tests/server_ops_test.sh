#!/usr/bin/env bash
# lindra-server as an operator runs it (README, "Operating the server"),
# driven from outside: its command line, its config file, the admin
# listener's /metrics (checked by promtool) as real syncs run, /healthz and
# /readyz, JSON logs, and SIGHUP replacing the TLS certificate.
#   server_ops_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Needs promtool (Debian prometheus), curl, openssl and python3.
source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

for tool in promtool curl openssl python3; do
    command -v "$tool" > /dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done

server() {
    out=$("$server_bin" "$@" 2>&1)
    rc=$?
}

# ---- the command line ----------------------------------------------------------

out=$("$server_bin" --help 2> /dev/null)
rc=$?
check "--help prints the usage on stdout, exit 0" 0 "--admin-listen HOST:PORT"
server bogus
check "an unknown command says so" 2 "unknown command 'bogus'"
server issue-token --kye "$work/token.key" --user u --role admin
check "a misspelt issue-token flag names it" 2 "unknown option --kye"
if [[ $(wc -l <<< "$out") -le 3 ]]; then pass "... in a short error, not the usage"; else fail "... in a short error, not the usage"; fi
"$server_bin" gen-key --out "$work/token.key"
server issue-token --key "$work/token.key" --user u --role admin --ttl 30d
check "--ttl takes days" 0 "^eyJ"
server issue-token --key "$work/token.key" --user u --role admin --ttl 30x
check "--ttl says its units" 2 "ms, s, m, h or d"

# ---- bad config files: a clear error, and no server ------------------------------

bad_config() { # NAME PATTERN CONTENT
    printf '%s\n' "$3" > "$work/bad.toml"
    server --config "$work/bad.toml"
    check "$1" 2 "$2"
    check_not "... and the server does not start" "listening on"
}
bad_config "an unknown key is named with its line" "bad.toml: unknown key 'lissten' at line 2" \
    $'db = "x.db"\nlissten = "127.0.0.1:0"'
bad_config "a key of the wrong type is named with its line" \
    "at line 3, '\[limits\] max-connections' wants a positive whole number" \
    $'db = "x.db"\n[limits]\nmax-connections = "many"'
bad_config "a bad duration names its key and line" "\[limits\] hello-timeout \(.*bad.toml line 6\)" \
    $'db = "x.db"\nlisten = "127.0.0.1:0"\ninsecure = true\ntoken-key = "x.key"\n[limits]\nhello-timeout = "soon"'
bad_config "a file that is not TOML names its line" "bad.toml: not valid TOML at line 2" \
    $'db = "x.db"\nlisten = 127.0.0.1:0'
server --config "$work/missing.toml"
check "a missing config file is named" 2 "cannot read the config file .*missing.toml"

# ---- a server from a config file, with its admin listener and JSON logs ---------

cat > "$work/server.toml" << EOF
# a comment
db = "$work/server.db"
listen = "127.0.0.1:1"        # the flag below wins
insecure = true
token-key = "$work/token.key"
admin-listen = "127.0.0.1:0"
log-format = "json"

[limits]
hello-timeout = "5s"
max-connections = 64
EOF
"$server_bin" --config "$work/server.toml" --listen 127.0.0.1:0 > "$work/server.log" 2>&1 &
server_pid=$!
port=
admin=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*"message":"listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/server.log")
    admin=$(sed -n 's/.*"message":"admin listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/server.log")
    [[ -n $port && -n $admin ]] && break
    kill -0 "$server_pid" 2> /dev/null || break
    sleep 0.1
done
if [[ -z $port || -z $admin ]]; then
    echo "FAIL: the server did not start from its config file" >&2
    cat "$work/server.log" >&2
    exit 1
fi
pass "the server starts from its config file, the flag over the file's listen"

http() { # PATH: sets $out (the body) and $rc (the HTTP status)
    out=$(curl -s -m 10 -w '\n%{http_code}' "http://127.0.0.1:$admin$1")
    rc=$(tail -n 1 <<< "$out")
    out=$(sed '$d' <<< "$out")
}
http /healthz
check "/healthz answers 200" 200 "ok"
http /readyz
check "/readyz answers 200 with the store open" 200 "ready"
http /nothing
check "another path is 404" 404 "not found"

# metric NAME: its value in the last scrape ($out).
metric() { awk -v name="$1" '$1 == name { print $2 }' <<< "$out"; }
scrape_check() { # NAME
    http /metrics
    local metrics=$out
    out=$(promtool check metrics <<< "$metrics" 2>&1)
    local status=$?
    if [[ $rc == 200 && $status -eq 0 ]]; then pass "$1"; else fail "$1"; fi
    out=$metrics
}

"$server_bin" issue-token --key "$work/token.key" --user office-1 --role admin --ttl 1h > "$work/office.token"
run office init
run office seed-demo
sync_as office
check "a tablet syncs" 0 "pushed 23 writes \(117 changes\)"
scrape_check "promtool accepts the scrape after a sync"
rounds=$(metric 'lindra_rounds_total{outcome="ok"}')
pushed=$(metric lindra_changes_pushed_total)
hellos=$(metric 'lindra_store_duration_seconds_count{operation="hello"}')
[[ $rounds == 1 && $pushed == 117 && $hellos == 1 ]] && pass "the scrape counts the round, its changes and its store calls" ||
    fail "the scrape counts the round, its changes and its store calls (rounds=$rounds pushed=$pushed hellos=$hellos)"
for name in lindra_sessions_open lindra_sessions_total lindra_round_duration_seconds_count lindra_changes_pulled_total \
    lindra_purged_rows_total lindra_certificates_issued_total lindra_received_bytes_total lindra_sent_bytes_total \
    'lindra_refusals_total{code="unauthenticated"}' 'lindra_connections_turned_away_total{reason="address_cap"}'; do
    [[ -n $(metric "$name") ]] || fail "the scrape has $name"
done
if grep -qE 'office|127\.0\.0\.1|\{[^}]*(user|device|person|peer|address)=' <<< "$out"; then fail "no user, device or address in the metrics"; else pass "no user, device or address in the metrics"; fi

run office person add "Kari Nordmann" --profession nurse
sync_as office
run office person add "Per Hansen" --profession nurse
sync_as office
scrape_check "promtool accepts the scrape after more syncs"
now_pushed=$(metric lindra_changes_pushed_total)
[[ $(metric 'lindra_rounds_total{outcome="ok"}') == 3 && $now_pushed -gt $pushed ]] &&
    pass "the counters move as rounds run" || fail "the counters move as rounds run (pushed $pushed, then $now_pushed)"

run office sync --server "127.0.0.1:$port" --insecure --token "not-a-token"
http /metrics
[[ $(metric 'lindra_refusals_total{code="unauthenticated"}') == 1 && $(metric 'lindra_rounds_total{outcome="refused"}') == 1 ]] &&
    pass "a refused token is counted by its code" || fail "a refused token is counted by its code"

out=$(python3 - "$work/server.log" << 'EOF'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for n, line in enumerate(lines, 1):
    record = json.loads(line)
    missing = {"time", "level", "message"} - record.keys()
    if missing:
        sys.exit(f"line {n} lacks {sorted(missing)}: {line}")
sessions = [json.loads(l) for l in lines if json.loads(l)["message"] == "session"]
if len(sessions) < 4 or not all("pushed" in s and "end" in s for s in sessions):
    sys.exit(f"the session lines are not all there with their fields: {sessions}")
print(f"{len(lines)} lines, each a JSON object")
EOF
)
rc=$?
check "every log line is a JSON object with time, level and message" 0 "each a JSON object"
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=

# ---- SIGHUP: a new certificate for new connections; a broken one is refused -----

certificate() { # NAME: a certificate for 127.0.0.1 signed by the test's CA
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$work/$1.key" -out "$work/$1.csr" &&
        openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days 2 \
            -out "$work/$1.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
}
{
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=lindra ops test CA" -keyout "$work/ca.key" -out "$work/ca.pem"
    certificate first && certificate second
} > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }
cp "$work/first.pem" "$work/tls.pem"
cp "$work/first.key" "$work/tls.key"
"$server_bin" --db "$work/tls.db" --listen 127.0.0.1:0 --token-key "$work/token.key" \
    --cert "$work/tls.pem" --key "$work/tls.key" --admin-listen 127.0.0.1:0 > "$work/tls.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/tls.log")
    admin=$(sed -n 's/^admin listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/tls.log")
    [[ -n $port && -n $admin ]] && break
    sleep 0.1
done
[[ -n $port ]] || { cat "$work/tls.log" >&2; exit 1; }
presented() { # the subject of the certificate a new connection sees
    openssl s_client -connect "127.0.0.1:$port" < /dev/null 2> /dev/null | openssl x509 -noout -subject
}
# wait_reload N: until the log has N reload lines (up to 5 s).
wait_reload() {
    for _ in $(seq 1 50); do
        [[ $(grep -c "reload" "$work/tls.log") -ge $1 ]] && return
        sleep 0.1
    done
}
out=$(presented)
rc=0
check "the server presents its first certificate" 0 "CN ?= ?first"
cp "$work/second.pem" "$work/tls.pem"
cp "$work/second.key" "$work/tls.key"
kill -HUP "$server_pid"
wait_reload 1
out=$(presented)
check "after SIGHUP a new connection sees the new certificate" 0 "CN ?= ?second"
run tls init
run tls sync --server "127.0.0.1:$port" --ca "$work/ca.pem" --token "$(cat "$work/office.token")"
check "... and a tablet syncs over it" 0 "synced"
echo "not a certificate" > "$work/tls.pem"
kill -HUP "$server_pid"
wait_reload 2
out=$(cat "$work/tls.log")
rc=0
check "a broken certificate on SIGHUP is refused, saying why" 0 "reload failed, the certificate and keys in use are kept: .*certificate"
out=$(presented)
check "... and the server keeps presenting the one it had" 0 "CN ?= ?second"
http /metrics
[[ $(metric 'lindra_reloads_total{result="ok"}') == 1 && $(metric 'lindra_reloads_total{result="failed"}') == 1 ]] &&
    pass "reloads are counted by result" || fail "reloads are counted by result"

# ---- the systemd unit -------------------------------------------------------------

if command -v systemd-analyze > /dev/null; then
    # As installed, but with the binary where this build has it.
    sed "s|/usr/local/bin/lindra-server|$(realpath "$server_bin")|" \
        "$(dirname "${BASH_SOURCE[0]}")/../examples/server/lindra-server.service" > "$work/lindra-server.service"
    out=$(cd "$work" && systemd-analyze verify ./lindra-server.service 2>&1)
    rc=$?
    [[ $rc -eq 0 && -z $out ]] && pass "systemd-analyze verify finds nothing wrong with the unit" ||
        fail "systemd-analyze verify finds nothing wrong with the unit"
else
    echo "SKIP: systemd-analyze is missing; the unit is not verified"
fi

finish server_ops_test
