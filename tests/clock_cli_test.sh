#!/usr/bin/env bash
# A tablet whose clock runs ahead, from the outside: the
# real lindra-server and lindra-tablet over TLS, the tablet's clock moved by
# Debian's faketime. Every write reaches the server, none is refused, and
# once the clock is right the tablet stamps its writes right again.
#
# Usage: tests/clock_cli_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"
for tool in faketime sqlite3 openssl; do
    command -v "$tool" > /dev/null || { echo "FAIL: $tool is not installed (scripts/lib.sh installs it)" >&2; exit 1; }
done

# die MESSAGE: the first failure ends the test, with the server's log.
die() {
    echo "FAIL: $*" >&2
    [[ -f $work/server.log ]] && { echo "--- the server's log:" >&2; tail -n 20 "$work/server.log" >&2; }
    exit 1
}

tablet() { local who=$1; shift; "$cli" --db "$work/$who.db" "$@"; }
# fast OFFSET WHO ARGS...: the tablet with its clock OFFSET (faketime's +30h, +1y)
# ahead. faketime preloads its library, which a sanitized build (scripts/test's
# ASan pass) must be told to accept ahead of its runtime.
fast() {
    local offset=$1 who=$2
    shift 2
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" FAKETIME_NO_CACHE=1 \
        faketime -f "$offset" "$cli" --db "$work/$who.db" "$@"
}
sync_args() { echo "sync --server 127.0.0.1:$port --ca $work/ca.pem --token $(cat "$work/$1.token")"; }

# check_sync NAME OUTPUT: the round ended well and refused nothing.
check_sync() {
    grep -q '^synced: ' <<< "$2" || die "$1: the sync did not end well: $2"
    if grep -q 'refused' <<< "$2"; then die "$1: the server refused a write: $2"; fi
    echo "PASS: $1"
}

# newest_ahead_s WHO: how many seconds the newest waiting write is stamped
# ahead of the real clock (the hlc's upper 48 bits are milliseconds).
newest_ahead_s() {
    sqlite3 "$work/$1.db" "SELECT (max(hlc) >> 16) / 1000 - CAST(strftime('%s', 'now') AS INTEGER) FROM lindra_outbox"
}

# ---- a server over TLS ---------------------------------------------------------

# Valid for longer than the tablets' clocks run ahead: TLS checks the
# certificate against the tablet's clock.
cert_days=800 start_tls_server

issue() { "$server_bin" issue-token --key "$work/token.key" --ttl 1h "$@"; }
issue --user coord-1 --role admin > "$work/coordinator.token"
issue --user office-1 --role admin > "$work/checker.token"
tablet coordinator init > /dev/null
tablet coordinator seed-demo > /dev/null
check_sync "the coordinator's seed" "$(tablet coordinator $(sync_args coordinator))"
issue --user cand-kari --role candidate --person "$(tablet coordinator id person kari)" > "$work/kari.token"
tablet kari init > /dev/null
check_sync "Kari's tablet pulls her group" "$(tablet kari $(sync_args kari))"

# ---- the issue's reproduction: written and synced 30 h ahead, then the clock is right

fast +30h kari progress kari m1 complete --minutes 10 > /dev/null
ahead=$(newest_ahead_s kari)
((ahead > 29 * 3600)) || die "faketime did not move the tablet's clock: its write is stamped $ahead s ahead"
echo "PASS: faketime moves the tablet's clock (its write is stamped $ahead s ahead)"
check_sync "synced 30 h ahead" "$(fast +30h kari $(sync_args kari))"
tablet kari progress kari m2 complete --minutes 10 > /dev/null
ahead=$(newest_ahead_s kari)
((ahead < 60)) || die "after a sync the tablet's clock stayed ahead: a write with the clock right is stamped $ahead s ahead"
echo "PASS: with the clock right again, a write is stamped right ($ahead s)"
check_sync "synced with the clock right" "$(tablet kari $(sync_args kari))"

# ---- a year ahead ---------------------------------------------------------------

fast +1y kari progress kari m3 complete --minutes 10 > /dev/null
ahead=$(newest_ahead_s kari)
((ahead > 364 * 86400)) || die "faketime +1y: the write is stamped only $ahead s ahead"
check_sync "synced a year ahead" "$(fast +1y kari $(sync_args kari))"
fast +1y kari progress kari m4 complete --minutes 10 > /dev/null
check_sync "synced a year ahead, again" "$(fast +1y kari $(sync_args kari))"

# ---- written ahead, clock fixed, written again, then synced ---------------------

fast +30h kari progress kari m5 complete --minutes 10 > /dev/null
tablet kari progress kari m6 complete --minutes 10 > /dev/null
check_sync "written ahead and with the clock right, then synced" "$(tablet kari $(sync_args kari))"
tablet kari progress kari m7 complete --minutes 10 > /dev/null
ahead=$(newest_ahead_s kari)
((ahead < 60)) || die "the tablet's clock stayed ahead after the year: $ahead s"
check_sync "the next write" "$(tablet kari $(sync_args kari))"
[[ $(tablet kari outbox) == "outbox: 0 writes (0 changes) waiting for the server" ]] || die "Kari's outbox: $(tablet kari outbox)"

# ---- the server has every write ------------------------------------------------

tablet checker init > /dev/null
check_sync "a fresh tablet pulls what the server holds" "$(tablet checker $(sync_args checker))"
shown=$(tablet checker show kari)
for m in 1 2 3 4 5 6 7; do
    grep -qE "^ +$m +M$m:.* completed +1 +.* 10$" <<< "$shown" || die "the server lacks Kari's module $m:
$shown"
done
echo "PASS: the server holds all seven of Kari's modules, 10 minutes each"
# Nothing the server holds is stamped ahead of its clock.
ahead=$(sqlite3 "$work/server.db" \
    "SELECT coalesce(max(hlc) >> 16, 0) / 1000 - CAST(strftime('%s', 'now') AS INTEGER) FROM lindra_log")
((ahead < 60)) || die "the server holds a change stamped $ahead s ahead of its clock"
echo "PASS: the server holds no change stamped ahead of its clock"
if grep -q 'rejected=' "$work/server.log"; then die "the server's log reports refused writes"; fi
echo "PASS: clock_cli_test"
