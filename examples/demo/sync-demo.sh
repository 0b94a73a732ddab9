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
token_of() { awk -v who="$1" '$2 == who { print $4 }' "$work/users"; }
sync() { tablet "$1" sync --server "127.0.0.1:$port" --token "$(token_of "$2")"; }

say "A server on 127.0.0.1 with a temporary database"
# Throw-away tokens for this run only.
{
    echo "# user ID ROLE TOKEN"
    for u in "coord-1 coordinator" "mentor-mia mentor" "cand-ola candidate" "cand-kari candidate"; do
        echo "user $u $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    done
} > "$work/users"
"$bin/lindra-server" --db "$work/server.db" --listen 127.0.0.1:0 --config "$work/users" > "$work/server.log" 2>&1 &
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

say "Three tablets pull that: mentor Mia, candidates Ola and Kari"
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

say "The same roster on all three tablets"
tablet mentor roster fjellvik | tee "$work/roster-mentor"
for who in ola kari; do
    tablet "$who" roster fjellvik > "$work/roster-$who"
    if diff -q "$work/roster-mentor" "$work/roster-$who" > /dev/null; then
        echo "$who's tablet: the same roster"
    else
        echo "$who's tablet differs:" >&2
        diff "$work/roster-mentor" "$work/roster-$who" >&2
        exit 1
    fi
done

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
