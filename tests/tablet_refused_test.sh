#!/usr/bin/env bash
# Black-box test of refused writes with the real binaries: a candidate's
# tablet writes something the server refuses; `lindra-tablet sync` says how
# many of her writes were refused and exits 3 (not 1, which a network
# failure gets), `lindra-tablet refused` shows what she wrote, and
# `refused dismiss` forgets it. Plain TCP on 127.0.0.1.
# Usage: tests/tablet_refused_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -u

source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

# ---- a server, the office's import, Ola's tablet ----------------------------------

start_server

issue() { "$server_bin" issue-token --key "$work/token.key" --ttl 1h "$@"; }
issue --user office --role admin > "$work/office.token"
run office init
run office seed-demo
sync_as office
check "the office's import syncs, exit 0" 0 "^synced: pushed [1-9]"
issue --user ola --role candidate --person "$("$cli" --db "$work/office.db" id person ola)" > "$work/ola.token"
run ola init
sync_as ola
check "Ola's first sync, exit 0" 0 "^synced: "
run ola refused
check "nothing refused yet" 0 "^no refused writes on this device$"

# ---- a refused write ----------------------------------------------------------------

secret="Words Ola typed about Kari's night shift"
run ola progress ola m1 complete --score 90 --minutes 20
run ola reflect kari "$secret" # Kari's reflection is Kari's to write
check "the tablet takes the write offline" 0 "saved for Kari Lie"
sync_as ola
check "sync exits 3 and says how many writes were refused" 3 "^1 of your writes was refused by the server"
check "sync points to the refused command" 3 "lindra-tablet --db .*/ola\.db refused$"
check "sync names the rule and what happened to the row" 3 \
    "refused by the server \(permission_denied\): reflection change undone, the row removed"
check "the rest was synced" 3 "^synced: pushed [1-9]"
check_not "sync does not print what was typed" "$secret"
run ola count reflection
check "the refused reflection is gone from the rows" 0 "^0$"

run ola refused
check "refused lists the write" 0 "^1 refused write kept on this device"
check "refused shows what was typed" 0 "^ +text +$secret$"
check "refused shows the code and the entity" 0 "^#1 +reflection [0-9a-f-]{36}, written .*, refused "
check "refused shows the reason" 0 "^  permission_denied: ."

sync_as ola
check "a later clean round exits 0" 0 "^synced: "
run ola refused
check "the refused write stays after another round" 0 "^ +text +$secret$"

# ---- dismissing ---------------------------------------------------------------------

run ola refused dismiss
check "dismiss wants an ID or --all" 2 "ID or --all"
run ola refused dismiss 1 --all
check "not both" 2 "ID or --all"
run ola refused dismiss abc
check "an ID is a number" 2 "\"abc\" is not a refused write's number"
run ola refused dismiss 99
check "an unknown ID is an error" 1 "no refused write #99"
run ola refused dismiss 1
check "dismiss one" 0 "^dismissed refused write #1$"
run ola refused
check "it is gone" 0 "^no refused writes on this device$"

run ola reflect kari "Another one for Kari"
run ola gathering hold g1 # the mentor's job: refused, the server's value restored
sync_as ola
check "two refusals" 3 "^2 of your writes were refused by the server"
check "a refused update restores the server's value" 3 "gathering change undone, the server's value restored"
run ola refused dismiss --all
check "dismiss --all" 0 "^dismissed 2 refused writes$"

# ---- a network failure is not a refusal ---------------------------------------------

kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null
server_pid=
run ola progress ola m2 start
sync_as ola
check "no server: exit 1, not 3" 1 "sync failed \(offline\)"

if grep -qF -- "$secret" "$work/server.log"; then
    rc=0 out=$(cat "$work/server.log")
    fail "the server's log never holds what was typed"
else
    pass "the server's log never holds what was typed"
fi

# The server, too, refuses a file that is another program's database, and
# leaves it as it was.
other="$work/other.sqlite"
sqlite3 "$other" "CREATE TABLE notes (x); INSERT INTO notes VALUES ('private');"
sum=$(sha256sum <"$other")
rc=0
out=$(timeout 10 "$server_bin" --db "$other" --listen 127.0.0.1:0 --token-key "$work/token.key" --insecure 2>&1) || rc=$?
if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "database of another program" <<<"$out" &&
    [[ "$(sha256sum <"$other")" == "$sum" && -z "$(compgen -G "$other-*")" ]]; then
    pass "the server refuses another program's database and leaves it as it was"
else
    fail "the server refuses another program's database and leaves it as it was"
fi

finish tablet_refused_test
