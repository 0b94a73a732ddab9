#!/usr/bin/env bash
# Kill test: SIGKILL `lindra-tablet sync` and `lindra-server` at random
# moments during large syncs, restart them, and check that nothing was lost
# or applied twice (DESIGN.md §5 idempotent push and resumable pull; §9 lost
# PushAck and huge first sync).
#
# Usage: tests/kill_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
#   KILL_TEST_SEED=N   replay the random choices of an earlier run (which
#                      tablet, which victim, which writes; the kill moments
#                      still depend on the machine's timing)
#   KILL_TEST_KILLS=N  kills that must hit a running sync (default 50)
#   KILL_TEST_WRITES_A=N, KILL_TEST_WRITES_B=N  writes before the kills
#                      (default 1500 and 600)
#   KILL_TEST_KEEP=1   keep the temporary directory
#
# Four tablets, one server on 127.0.0.1 with TLS (the path tablets use; a
# handshake cut off by a kill is part of what is tested):
#   A  an admin's tablet: seeds the demo group, then records thousands of
#      minutes on modules for all four members, writes reflections and
#      plans gatherings;
#   B  mentor Mia's tablet: records her own minutes on the same rows, so the
#      time-spent counters merge two origins, and writes reflections;
#   C  an admin's fresh tablet whose first sync pulls everything; once such a
#      sync succeeds it is replaced by a new fresh one, so most kills of C
#      land in a huge first pull;
#   D  a fresh tablet after the kills: what the server holds.
# Reflections are long, so pushes and pulls span several batches and a kill
# can fall between two of them. Time spent is a counter: an increment
# applied twice, or lost, shows up as a wrong total. Every write that exited
# 0 is logged; the expected state is computed from those logs only.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PATH_TO_lindra-server PATH_TO_lindra-tablet" >&2
    exit 2
fi
server_bin=$1
tablet_bin=$2
min_kills=${KILL_TEST_KILLS:-50}
max_iterations=$((min_kills * 8))
loop_seconds=420 # the kill loop's bound; ctest allows 900 s in all
seed=${KILL_TEST_SEED:-$(($(date +%s%N) % 1000000))}
RANDOM=$seed
echo "seed $seed (replay with KILL_TEST_SEED=$seed)"

work=$(mktemp -d)
server_pid=
cleanup() {
    local rc=$? pids
    # Whatever still runs (a sync, a writer, the server) dies with the test.
    pids=$(jobs -p)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086 # one pid a word
        kill -KILL $pids 2>/dev/null || true
        # shellcheck disable=SC2086
        wait $pids 2>/dev/null || true
    fi
    if [[ ${KILL_TEST_KEEP:-} == 1 ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
        ((rc == 0)) || echo "(KILL_TEST_KEEP=1 keeps the replicas, the server's store and the logs)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM # so that the cleanup stops the server too

fail() {
    echo "FAIL: $*" >&2
    if [[ -f $work/server.log ]]; then
        echo "--- last lines of the server's log:" >&2
        tail -n 15 "$work/server.log" >&2
    fi
    exit 1
}

tablet() { local who=$1; shift; "$tablet_bin" --db "$work/$who.db" "$@"; }
# The tablet's sync arguments; the token is per tablet.
sync_args() { echo "sync --server 127.0.0.1:$port --ca $work/ca.pem --token $(cat "$work/$1.token")"; }

# ---- server -------------------------------------------------------------------

"$server_bin" gen-key --out "$work/token.key"
{
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=lindra kill test CA" \
        -keyout "$work/ca.key" -out "$work/ca.pem"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$work/server.key" -out "$work/server.csr"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days 1 \
        -out "$work/server.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
} > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }

port=0 # the first start picks a free port; restarts reuse it
server_starts=0
# Starts the server on its store and waits for "listening on". A restart
# right after a SIGKILL may find the port still held, so it retries.
start_server() {
    local i
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        "$server_bin" --db "$work/server.db" --listen "127.0.0.1:$port" --token-key "$work/token.key" \
            --cert "$work/server.pem" --key "$work/server.key" >> "$work/server.log" 2>&1 &
        server_pid=$!
        for i in $(seq 1 500); do # up to 10 s
            if (($(grep -c '^listening on ' "$work/server.log") > server_starts)); then
                server_starts=$((server_starts + 1))
                port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/server.log" | tail -n 1)
                return 0
            fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.02
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        sleep 0.2
    done
    fail "the server did not start"
}
start_server
echo "server on 127.0.0.1:$port"

issue() { "$server_bin" issue-token --key "$work/token.key" --ttl 1h "$@"; }
issue --user coord-a --role admin > "$work/A.token"
issue --user office-c --role admin > "$work/C.token"
issue --user office-d --role admin > "$work/D.token"

# ---- writes -------------------------------------------------------------------

people=(mia ola kari nils)
gatherings_planned=0

reflections=0
# A reflection's text: 4000 code points, the most lindra takes, of 2-byte
# ones, so that syncs span several batches (at most 2 MiB each).
filler=$(printf '%3990s' '' | sed 's/ /ø/g')

# plan_writes WHO N FILE: N random writes for tablet WHO into FILE, drawn
# here (not in a subshell) so that the seed replays them. A line is
# "PERSON MODULE MINUTES SCORE|-", "r PERSON SERIAL" (a reflection) or
# "g TITLE" (a gathering, on A only).
plan_writes() {
    local who=$1 n=$2 file=$3 i person score
    : > "$file"
    for ((i = 0; i < n; i++)); do
        if [[ $who == A ]] && ((RANDOM % 25 == 0)); then
            gatherings_planned=$((gatherings_planned + 1))
            printf 'g K%05d\n' "$gatherings_planned" >> "$file"
            continue
        fi
        person=mia # B is Mia's tablet: she writes only her own progress and reflections
        [[ $who == A ]] && person=${people[RANDOM % 4]}
        if ((RANDOM % 5 == 0)); then
            reflections=$((reflections + 1))
            echo "r $person $reflections" >> "$file"
            continue
        fi
        score=-
        ((RANDOM % 8 == 0)) && score=$((RANDOM % 101))
        echo "$person $((RANDOM % 8 + 1)) $((RANDOM % 9 + 1)) $score" >> "$file"
    done
}

# apply_writes WHO FILE: runs the planned writes; those that exited 0 go to
# WHO.writes. The CLI promises exit 1 means nothing was written.
apply_writes() {
    local who=$1 file=$2 a b c d args
    while read -r a b c d; do
        if [[ $a == g ]]; then
            args=(gathering plan fjellvik "$b")
        elif [[ $a == r ]]; then
            args=(reflect "$b" "R$c $filler")
        else
            args=(progress "$a" "m$b" start --minutes "$c")
            [[ $d != - ]] && args+=(--score "$d")
        fi
        if tablet "$who" "${args[@]}" > /dev/null 2>> "$work/$who.write-errors"; then
            echo "$a $b $c $d" >> "$work/$who.writes"
        else
            echo "failed: ${args[*]}" >> "$work/$who.write-errors"
        fi
    done < "$file"
}

# sync_ok WHO: a sync that must succeed, the server being up.
sync_ok() {
    # shellcheck disable=SC2046
    tablet "$1" $(sync_args "$1") >> "$work/$1.sync.log" 2>&1 ||
        fail "tablet $1 cannot sync with the server up: $(tail -n 1 "$work/$1.sync.log")"
}

tablet A init > /dev/null
tablet A seed-demo > /dev/null
: > "$work/A.writes"
: > "$work/B.writes"
sync_ok A
issue --user mentor-mia --role mentor --person "$(tablet A id person mia)" > "$work/B.token"
tablet B init > /dev/null
sync_ok B

# Thousands of writes, A and B in parallel (one core each).
start=$SECONDS
plan_writes A "${KILL_TEST_WRITES_A:-1500}" "$work/plan.A"
plan_writes B "${KILL_TEST_WRITES_B:-600}" "$work/plan.B"
apply_writes A "$work/plan.A" &
writer_a=$!
apply_writes B "$work/plan.B" &
writer_b=$!
wait "$writer_a" "$writer_b"
echo "bulk writes: A $(wc -l < "$work/A.writes"), B $(wc -l < "$work/B.writes") in $((SECONDS - start)) s;" \
    "outboxes: A $(tablet A outbox | grep -oE '[0-9]+' | head -n 1), B $(tablet B outbox | grep -oE '[0-9]+' | head -n 1)"
tablet C init > /dev/null

# ---- kills --------------------------------------------------------------------

# ms to sleep before the kill, per tablet: uniform in 0..limit. The limit
# grows when the kill hit a running sync and shrinks when the sync had
# ended, so about half the kills land somewhere inside a sync, whatever its
# length on this machine.
declare -A limit=([A]=300 [B]=150 [C]=400)
tablets=(A B C)
tablet_kills=0 server_kills=0 missed=0 iterations=0 fresh_c=1 concurrent=0
declare -A outcomes=()

# How a sync ended, for the summary: "killed", "ok" or the reason it failed.
outcome_of() { # rc logfile
    if (($1 == 137)); then echo killed
    elif (($1 == 0)); then echo ok
    else sed -n 's/.*sync failed (\([^)]*\)).*/\1/p' "$2" | tail -n 1 | tr ' ' - | grep . || echo "exit-$1"
    fi
}

loop_start=$SECONDS
# Both kinds of kill, at least a fifth of the total each.
while ((tablet_kills + server_kills < min_kills || tablet_kills < min_kills / 5 || server_kills < min_kills / 5)); do
    ((iterations < max_iterations)) ||
        fail "only $((tablet_kills + server_kills)) kills hit a running sync in $iterations tries"
    ((SECONDS - loop_start < loop_seconds)) ||
        fail "only $((tablet_kills + server_kills)) kills hit a running sync in $loop_seconds s"
    iterations=$((iterations + 1))
    who=${tablets[RANDOM % 3]}
    victim=tablet
    ((RANDOM % 5 < 2)) && victim=server
    # Something new to push on most rounds.
    if [[ $who != C ]]; then
        plan_writes "$who" $((RANDOM % 30)) "$work/plan"
        apply_writes "$who" "$work/plan"
    fi
    # Sometimes the app keeps writing while its tablet syncs.
    writer="" during=0
    if [[ $who != C ]] && ((RANDOM % 4 == 0)); then
        plan_writes "$who" $((RANDOM % 10 + 1)) "$work/plan.during"
        during=1 concurrent=$((concurrent + 1))
    fi
    delay=$((RANDOM % ${limit[$who]}))

    log=$work/sync.$iterations.log
    # shellcheck disable=SC2046
    "$tablet_bin" --db "$work/$who.db" $(sync_args "$who") > "$log" 2>&1 &
    sync_pid=$!
    if ((during)); then
        apply_writes "$who" "$work/plan.during" &
        writer=$!
    fi
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"

    if [[ $victim == tablet ]]; then
        kill -KILL "$sync_pid" 2>/dev/null || true
        rc=0
        wait "$sync_pid" 2>/dev/null || rc=$? # (no "Killed" notice)
        # 137: the kill found it running (our unreaped child's pid cannot be reused).
        ((rc == 137)) && tablet_kills=$((tablet_kills + 1))
    else
        kill -KILL "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        rc=0
        wait "$sync_pid" || rc=$?
        # The sync failed: the server died under it.
        ((rc != 0)) && server_kills=$((server_kills + 1))
        start_server
    fi
    [[ -n $writer ]] && wait "$writer"
    result=$(outcome_of "$rc" "$log")
    outcomes[$victim:$who:$result]=$((${outcomes[$victim:$who:$result]:-0} + 1))
    if [[ $result == ok ]]; then
        missed=$((missed + 1))
        limit[$who]=$((${limit[$who]} * 3 / 4 + 5))
        # C's first sync is done: a new fresh tablet for the next huge pull.
        if [[ $who == C ]]; then
            rm -f "$work"/C.db*
            tablet C init > /dev/null
            fresh_c=$((fresh_c + 1))
        fi
    else
        limit[$who]=$((${limit[$who]} * 5 / 4 + 5))
        # With the server up, only a kill explains a failed sync; a server
        # that died is "offline" (try again later), else the app gives up.
        if [[ $victim == tablet && $result != killed ]]; then
            fail "tablet $who's sync failed with the server up: $(tail -n 1 "$log")"
        elif [[ $victim == server && $result != offline ]]; then
            fail "tablet $who's sync ended \"$result\" when the server died, not offline: $(tail -n 1 "$log")"
        fi
    fi
    [[ $result == ok || $result == killed || $victim:$result == server:offline ]] && rm -f "$log"
done
loop_time=$((SECONDS - loop_start))

# ---- convergence and checks ----------------------------------------------------

sync_ok A
sync_ok B
sync_ok A
sync_ok C
tablet D init > /dev/null
sync_ok D

# The state every tablet must show, from the logs of writes that exited 0:
# per person and module "PERSON ORDINAL STATUS ATTEMPT BEST MINUTES", then
# the planned gatherings' titles.
cat "$work/A.writes" "$work/B.writes" | awk -v people="${people[*]}" '
    $1 == "g" || $1 == "r" { next }
    { k = $1 " " $2; minutes[k] += $3; seen[k] = 1
      if ($4 != "-" && (!(k in best) || $4 + 0 > best[k])) best[k] = $4 + 0 }
    END {
        n = split(people, p, " ")
        for (i = 1; i <= n; i++) for (m = 1; m <= 8; m++) {
            k = p[i] " " m
            if (k in seen) print k, "in_progress", 1, (k in best ? best[k] : "-"), minutes[k]
            else print k, "not_started", "-", "-", 0
        }
    }' > "$work/expected.progress"
awk '$1 == "g" { print $2 }' "$work/A.writes" | sort > "$work/expected.gatherings"

# What a tablet shows, in the same form, through lindra-tablet's own commands.
progress_on() {
    local p
    for p in "${people[@]}"; do
        tablet "$1" show "$p" | awk -v p="$p" '
            /^$/ { blank++ } blank == 1 && $1 ~ /^[0-9]+$/ { print p, $1, $(NF-4), $(NF-3), $(NF-2), $NF }'
    done
}
gatherings_on() { tablet "$1" roster fjellvik | awk '/^gatherings:/ { g = 1; next } g && $1 ~ /^K/ { print $1 }' | sort; }
gathering_count_on() { tablet "$1" roster fjellvik | awk '/^gatherings:/ { g = 1; next } g && NF { n++ } END { print n + 0 }'; }

expected_gatherings=$(($(wc -l < "$work/expected.gatherings") + 4)) # the 4 seeded ones
expected_reflections=$(cat "$work/A.writes" "$work/B.writes" | grep -c '^r ' || true)
expected_rows=$(grep -c in_progress "$work/expected.progress" || true)
errors=0
for who in A B C D; do
    outbox=$(tablet "$who" outbox | grep -oE '[0-9]+' | head -n 1)
    [[ $outbox == 0 ]] || { echo "FAIL: tablet $who's outbox holds $outbox changes" >&2; errors=$((errors + 1)); }
    if ! diff <(progress_on "$who") "$work/expected.progress" > "$work/$who.progress.diff"; then
        echo "FAIL: tablet $who's progress differs from what was written (< tablet, > expected):" >&2
        head -n 20 "$work/$who.progress.diff" >&2
        errors=$((errors + 1))
    fi
    if ! diff <(gatherings_on "$who") "$work/expected.gatherings" > "$work/$who.gatherings.diff"; then
        echo "FAIL: tablet $who's gatherings differ from those planned (< tablet, > expected):" >&2
        head -n 20 "$work/$who.gatherings.diff" >&2
        errors=$((errors + 1))
    fi
    count=$(gathering_count_on "$who")
    ((count == expected_gatherings)) ||
        { echo "FAIL: tablet $who's roster has $count gatherings, not $expected_gatherings" >&2; errors=$((errors + 1)); }
    for entity in gathering:$expected_gatherings reflection:$expected_reflections module_progress:$expected_rows; do
        count=$(tablet "$who" count "${entity%:*}")
        [[ $count == "${entity#*:}" ]] ||
            { echo "FAIL: tablet $who holds $count ${entity%:*} rows, not ${entity#*:}" >&2; errors=$((errors + 1)); }
    done
done
# A check that compared nothing would pass: the expected state is not trivial.
((expected_rows > 0 && expected_reflections > 0 && expected_gatherings > 4)) ||
    fail "the test wrote nothing to check"

writes=$(cat "$work/A.writes" "$work/B.writes" | wc -l)
minutes=$(awk '{ s += $6 } END { print s }' "$work/expected.progress")
write_failures=$(cat "$work"/*.write-errors 2>/dev/null | grep -c '^failed:' || true)
echo "kills that hit a running sync: $tablet_kills of tablet syncs, $server_kills of the server" \
    "($iterations tries, $missed syncs ended first; $loop_time s)"
printf 'syncs (killed: tablet synced: how the sync ended):'
for k in $(printf '%s\n' "${!outcomes[@]}" | sort); do printf ' %s=%s' "$k" "${outcomes[$k]}"; done
echo
echo "writes: $writes ($write_failures refused), $concurrent rounds writing during the sync; $minutes minutes" \
    "on $expected_rows progress rows; $expected_reflections reflections; $expected_gatherings gatherings;" \
    "$fresh_c fresh tablets C; server started $server_starts times"
echo "seed $seed"
((errors == 0)) || fail "$errors checks failed (seed $seed)"
echo "PASS: nothing lost or duplicated on A, B, C and D"
