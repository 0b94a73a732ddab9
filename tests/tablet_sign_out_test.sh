#!/usr/bin/env bash
# Black-box test of signing out of a shared tablet with the real binaries:
# `lindra-tablet sign-out` pushes Ola's writes and deletes her replica's
# files, leaving no file in the tablet's directory with what she wrote; she
# gets her data back in a fresh file next shift. With the server down it
# deletes nothing, says how many writes would be lost and exits 1, unless
# --force. Plain TCP on 127.0.0.1.
# Usage: tests/tablet_sign_out_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -u

source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"
tablet="$work/tablet"
mkdir "$tablet"

# run DB ARGS...: the CLI on the replica DB; sets $out (stdout and stderr) and $rc.
run() {
    local db=$1
    shift
    out=$("$cli" --db "$db" "$@" 2>&1)
    rc=$?
}
server_args() { echo --server "127.0.0.1:$port" --insecure --token "$(cat "$work/$1.token")"; }

# check_files NAME COUNT: the tablet's directory holds COUNT files.
check_files() {
    local n
    n=$(find "$tablet" -type f | wc -l)
    if [[ $n -eq $2 ]]; then pass "$1"; else rc=$n out=$(ls -la "$tablet") fail "$1"; fi
}
# check_no_bytes NAME TEXT: no file in the tablet's directory holds TEXT.
check_no_bytes() {
    if grep -rqaF -- "$2" "$tablet"; then rc=0 out=$(grep -rlaF -- "$2" "$tablet") fail "$1"; else pass "$1"; fi
}

# ---- a server, the office's import ----------------------------------------------

start_server

issue() { "$server_bin" issue-token --key "$work/token.key" --ttl 1h "$@"; }
issue --user office --role admin > "$work/office.token"
office="$work/office.db"
run "$office" init
run "$office" seed-demo
run "$office" sync $(server_args office)
check "the office's import syncs" 0 "^synced: pushed [1-9]"
issue --user ola --role candidate --person "$("$cli" --db "$office" id person ola)" > "$work/ola.token"
issue --user kari --role candidate --person "$("$cli" --db "$office" id person kari)" > "$work/kari.token"

# ---- Ola's shift, signed out ---------------------------------------------------------

marker="ola-7f3c9a2e what I learnt about breathlessness"
ola="$tablet/ola.db"
run "$ola" init
run "$ola" sync $(server_args ola)
run "$ola" reflect ola "$marker"
check "Ola writes offline" 0 "saved for Ola"
if grep -rqaF -- "$marker" "$tablet"; then pass "her words are in a file now"; else fail "her words are in a file now"; fi

run "$ola" sign-out --server "127.0.0.1:$port" --insecure
check "sign-out wants a token" 2 "sign-out needs --server URL and --token TOKEN"
run "$ola" sign-out $(server_args ola)
check "sign-out pushes and deletes" 0 "^signed out: pushed [1-9][0-9]* changes; deleted [1-4] files"
check "sign-out names the files" 0 "^  .*/tablet/ola\.db$"
check_files "no file left" 0
check_no_bytes "no byte of what she wrote left" "$marker"
run "$ola" count reflection
check "the replica is gone" 1 "no replica at"

# ---- Kari's shift -----------------------------------------------------------------------

kari="$tablet/kari.db"
run "$kari" init
run "$kari" sync $(server_args kari)
run "$kari" reflect kari "Kari's own words"
run "$kari" sync $(server_args kari)
check "Kari syncs on her own file" 0 "^synced: pushed [1-9]"
check_no_bytes "Kari's file has nothing of Ola's" "$marker"

# ---- Ola's next shift: her data comes back --------------------------------------------

run "$ola" init
run "$ola" sync $(server_args ola)
run "$ola" count reflection
check "Ola's reflection is back in a fresh file" 0 "^1$"

# ---- offline: nothing deleted unless forced ------------------------------------------

run "$ola" progress ola m1 start
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null
server_pid=
run "$ola" sign-out $(server_args ola)
check "offline sign-out exits 1 and deletes nothing" 1 "not signed out, nothing deleted: sync failed \(offline\)"
check "it says what would be lost" 1 "1 write not on the server and 0 refused writes kept here would be lost"
check "it offers --force" 1 "--force"
run "$ola" outbox
check "the write is still there" 0 "^outbox: 1 changes"
run "$ola" sign-out $(server_args ola) --force
check "--force deletes anyway and says what was lost" 0 "^forced: deleted with 1 write not on the server"
check "--force signs out" 0 "^signed out: "
if [[ -e $ola ]]; then fail "Ola's file is gone"; else pass "Ola's file is gone"; fi
if [[ -e $kari ]]; then pass "Kari's file stays"; else fail "Kari's file stays"; fi

finish tablet_sign_out_test
