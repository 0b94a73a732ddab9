#!/usr/bin/env bash
# The main job: a server and five tablets (the registration office, a
# coordinator, a mentor, two candidates) working offline and converging
# through the server, ending with a course certificate issued by rule and
# verified offline, a candidate who has not met the rule yet, and the
# coordinator's completion report.
# Usage: examples/demo/sync-demo.sh BUILD_DIR   (holding lindra-server and lindra-tablet)
set -euo pipefail

if [[ $# -ne 1 || ! -x $1/lindra-server || ! -x $1/lindra-tablet ]]; then
    echo "usage: $0 BUILD_DIR   (the directory holding lindra-server and lindra-tablet, e.g. build)" >&2
    exit 2
fi
bin=$1
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid"
        wait "$server_pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s ==\n' "$*"; }
tablet() { local who=$1; shift; "$bin/lindra-tablet" --db "$work/$who.db" "$@"; }
token_of() { cat "$work/$1.token"; }
sync() { tablet "$1" sync --server "127.0.0.1:$port" --ca "$work/ca.pem" --token "$(token_of "$2")"; }

say "A server on 127.0.0.1 with a temporary database, issuing course certificates"
# Throw-away keys for this run only: one signs the tablets' tokens, one the
# course certificates.
"$bin/lindra-server" gen-key --out "$work/token.key"
"$bin/lindra-server" gen-issuer-key --out "$work/issuer.key"
# The registration office's back-office import gets an admin token; every
# other person's token names who they are.
"$bin/lindra-server" issue-token --key "$work/token.key" --user office-1 --role admin --ttl 1h > "$work/office.token"
# A throw-away CA and a TLS certificate for 127.0.0.1 from it; the tablets trust that CA.
{
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=lindra demo CA" \
        -keyout "$work/ca.key" -out "$work/ca.pem"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$work/server.key" -out "$work/server.csr"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days 1 -out "$work/server.pem" \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
} > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }
"$bin/lindra-server" --db "$work/server.db" --listen 127.0.0.1:0 --token-key "$work/token.key" \
    --cert "$work/server.pem" --key "$work/server.key" \
    --issuer-key "$work/issuer.key" --issuer-name "Fjellvik competence centre" > "$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 100); do  # up to 10 s
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/server.log")
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
echo "listening on 127.0.0.1:$port"

say "The registration office sets up the course, the group and the coordinator"
tablet office init > /dev/null
tablet office seed-demo
tablet office person add "Cora Berg" --profession other --organization fjellvik
sync office office

# issue_token PERSON ROLE: the token lindra-tablet says the server should
# issue, issued with this run's key.
issue_token() {
    local line
    line=$(tablet office token-request "$1" "$2" --key "$work/token.key" --user "$3")
    echo "  $line"
    eval "\"\$bin/lindra-server\" ${line#lindra-server } --ttl 1h" > "$work/$3.token"
}
say "Each person gets a signed token naming who they are and their role"
issue_token cora coordinator coord-cora
issue_token mia mentor mentor-mia
issue_token ola candidate cand-ola
issue_token kari candidate cand-kari

say "The coordinator imports the late registrations from a spreadsheet"
cat > "$work/registrations.csv" << 'EOF_CSV'
group,display name,role,profession,organization
Fjellvik nursing home group,Siri Dahl,candidate,nurse,Fjellvik kommune
Fjellvik nursing home group,Nils Sæther,candidate,health_care_worker,Fjellvik kommune
EOF_CSV
tablet coordinator init > /dev/null
sync coordinator coord-cora
tablet coordinator import-registrations "$work/registrations.csv"
echo "(importing the same file again writes nothing:)"
tablet coordinator import-registrations "$work/registrations.csv"
sync coordinator coord-cora

say "Three tablets pull what their user may see: mentor Mia, candidates Ola and Kari"
for who in mentor:mentor-mia ola:cand-ola kari:cand-kari; do
    tablet "${who%%:*}" init > /dev/null
    printf '%-7s ' "${who%%:*}:"
    sync "${who%%:*}" "${who##*:}"
done

say "Offline: Mia holds three gatherings and records attendance"
for g in g1 g2 g3; do
    tablet mentor gathering hold "$g"
    tablet mentor attend "$g" ola present
done
tablet mentor attend g1 kari excused --note "Night shift"
tablet mentor attend g2 kari present
tablet mentor attend g1 nils present

say "Offline: Ola and Kari work through the modules on their own tablets"
for m in m1:90 m2: m3:85 m4: m5:75 m6: m7:; do
    args=(progress ola "${m%%:*}" complete --minutes 30)
    [[ -n ${m##*:} ]] && args+=(--score "${m##*:}")
    tablet ola "${args[@]}"
done
tablet ola reflect ola "Sitting quietly with a dying resident was harder than I thought, and mattered more." --module m1
tablet kari progress kari m1 start --minutes 25
tablet kari progress kari m1 complete --score 85 --minutes 15
tablet kari progress kari m2 complete --minutes 20

say "Ola's tablet tries to mark attendance, which is the mentor's job"
tablet ola attend g4 ola present
status=0
sync ola cand-ola || status=$?
[[ $status -eq 3 ]] || { echo "expected exit status 3 (writes refused), got $status" >&2; exit 1; }
echo "The server refused it and sent back its own state; the tablet undid the"
echo "change and told the app, which can tell Ola (exit status 3). Nothing else"
echo "was held back, and what Ola wrote is kept on her tablet until dismissed:"
tablet ola refused
tablet ola refused dismiss --all

say "Offline, at the same time: Kari and the coordinator both correct Kari's name"
# A person may write their own name, and a coordinator of their
# organization may too: two edits the roles allow, made apart.
tablet kari person rename kari "Kari Lie Hansen"
sleep 0.05  # the coordinator's edit is the later one
tablet coordinator person rename kari "Kari Lie-Hansen"

say "Mia confirms Ola's participation"
tablet mentor confirm ola --mentor mia --statement "Took part with care and reflection"

say "Everyone syncs (twice round, so each tablet sees the others' changes)"
for round in 1 2; do
    for who in mentor:mentor-mia ola:cand-ola kari:cand-kari coordinator:coord-cora; do
        printf 'round %s %-12s ' "$round" "${who%%:*}:"
        sync "${who%%:*}" "${who##*:}"
    done
done

say "The same roster on the mentor's and the coordinator's tablets"
tablet mentor roster fjellvik | tee "$work/roster-mentor"
tablet coordinator roster fjellvik > "$work/roster-coordinator"
if diff -q "$work/roster-mentor" "$work/roster-coordinator" > /dev/null; then
    echo "coordinator's tablet: the same roster"
else
    echo "the coordinator's tablet differs:" >&2
    diff "$work/roster-mentor" "$work/roster-coordinator" >&2
    exit 1
fi

say "A candidate's tablet holds their own progress and nobody else's"
if tablet ola show kari 2> /dev/null | grep -q completed; then
    echo "Ola's tablet holds Kari's progress" >&2
    exit 1
fi
echo "Ola's tablet: no progress of Kari's"

say "How the conflict on Kari's name was resolved"
for who in mentor ola kari coordinator; do
    printf '%-12s %s\n' "$who:" "$(tablet "$who" roster fjellvik | grep -o 'Kari Lie[-A-Za-z ]*[a-z]' | head -n 1)"
done
echo "Both edits were made offline. The name is a last-writer-wins field: the"
echo "edit with the later hybrid logical clock (the coordinator's) wins on every"
echo "tablet, whatever order they synced in. Ola's progress and Kari's time spent"
echo "merged field by field: nothing was overwritten."

say "The server stops: everything from here is offline"
kill -INT "$server_pid"
wait "$server_pid"
server_pid=
tail -n 3 "$work/server.log"

say "Ola met the rule: the server issued the certificate, and Ola's tablet verifies it offline"
tablet ola certificate ola
tablet ola certificate ola --jws | cut -c1-100 | sed 's/$/.../'

say "Kari has not met the rule yet: no certificate, and the report says what is missing"
tablet kari certificate kari

say "The coordinator's completion report"
tablet coordinator report fjellvik
echo
tablet coordinator report fjellvik --csv
