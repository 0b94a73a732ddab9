#!/usr/bin/env bash
# The main job: a server and four tablets (coordinator, mentor, two
# candidates) working offline and converging through the server.
# Usage: examples/demo/sync-demo.sh BUILD_DIR   (holding lindra-server and lindra-tablet)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
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

say "A server on 127.0.0.1 with a temporary database"
# A throw-away token key for this run only. The registration office's
# import gets an admin token; each person's token comes once they exist.
"$bin/lindra-server" gen-key --out "$work/token.key"
"$bin/lindra-server" issue-token --key "$work/token.key" --user coord-1 --role admin --ttl 1h > "$work/coord-1.token"
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
    --cert "$work/server.pem" --key "$work/server.key" > "$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 100); do  # up to 10 s
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/server.log")
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
echo "listening on 127.0.0.1:$port"

say "The coordinator registers the course, the group and its members, and syncs"
tablet coordinator init > /dev/null
tablet coordinator seed-demo
sync coordinator coord-1

say "Each person gets a signed token naming who they are"
for who in mentor-mia:mentor:mia cand-ola:candidate:ola cand-kari:candidate:kari; do
    IFS=: read -r user role name <<< "$who"
    "$bin/lindra-server" issue-token --key "$work/token.key" --user "$user" --role "$role" \
        --person "$(tablet coordinator id person "$name")" --ttl 1h > "$work/$user.token"
    echo "$user: $role"
done

say "Three tablets pull what their user may see: mentor Mia, candidates Ola and Kari"
for who in mentor:mentor-mia ola:cand-ola kari:cand-kari; do
    tablet "${who%%:*}" init > /dev/null
    printf '%-7s ' "${who%%:*}:"
    sync "${who%%:*}" "${who##*:}"
done

say "Offline: Mia holds gathering 1 and records attendance"
tablet mentor gathering hold g1
tablet mentor attend g1 ola present
tablet mentor attend g1 kari excused --note "Night shift"
tablet mentor attend g1 nils present

say "Offline: Ola and Kari work through modules on their own tablets"
tablet ola progress ola m1 complete --score 90 --minutes 35
tablet ola progress ola m2 complete --minutes 30
tablet ola reflect ola "Sitting quietly with a dying resident was harder than I thought, and mattered more." --module m1
tablet kari progress kari m1 start --minutes 25
tablet kari progress kari m1 complete --score 85 --minutes 15

say "Ola's tablet tries to mark attendance, which is the mentor's job"
tablet ola attend g1 ola present
status=0
sync ola cand-ola || status=$?
[[ $status -eq 3 ]] || { echo "expected exit status 3 (writes refused), got $status" >&2; exit 1; }
echo "The server refused it and sent back its own state; the tablet undid the"
echo "change and told the app, which can tell Ola (exit status 3). Nothing else"
echo "was held back, and what Ola wrote is kept on her tablet until dismissed:"
tablet ola refused
tablet ola refused dismiss --all

say "Offline, at the same time: Mia and the coordinator both retitle gathering 2"
tablet mentor gathering rename g2 "G2: Talking about death and dying"
sleep 0.05  # the coordinator's edit is the later one
tablet coordinator gathering rename g2 "G2: Difficult conversations at the bedside"

say "Everyone syncs (twice round, so each tablet sees the others' changes)"
for round in 1 2; do
    for who in mentor:mentor-mia ola:cand-ola kari:cand-kari coordinator:coord-1; do
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
tablet ola roster fjellvik
if tablet ola show kari | grep -q completed; then
    echo "Ola's tablet holds Kari's progress" >&2
    exit 1
fi

say "How the conflict on gathering 2 was resolved"
for who in mentor ola kari coordinator; do
    printf '%-12s %s\n' "$who:" "$(tablet "$who" roster fjellvik | grep '^  G2:' | sed 's/  */ /g')"
done
echo "Both edits were made offline. The title is a last-writer-wins field: the"
echo "edit with the later hybrid logical clock (the coordinator's) wins on every"
echo "tablet, whatever order they synced in. Ola's progress and Kari's time spent"
echo "merged field by field: nothing was overwritten."

say "The server stops"
kill -INT "$server_pid"
wait "$server_pid"
server_pid=
cat "$work/server.log"
