#!/usr/bin/env bash
# One vocabulary, and counts that add up: after N writes, `outbox` says N
# writes carrying M changes, and the sync says it pushed N writes (M
# changes); `sign-out` the same.
source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

start_server
"$server_bin" issue-token --key "$work/token.key" --user office --role admin --ttl 1h > "$work/office.token" || exit 1
sync_office() { run office "$@" --server "127.0.0.1:$port" --insecure --token-file "$work/office.token"; }

run office init
run office outbox
check "a new replica: no writes" 0 '^outbox: 0 writes \(0 changes\) waiting for the server$'
run office seed-demo
sync_office sync
check "the seed goes out" 0 '^synced: pushed [1-9][0-9]* writes \([1-9][0-9]* changes\), pulled'

run office progress ola m1 start
run office reflect ola "first thoughts"
run office gathering hold g1
run office person rename kari "Kari L."
run office outbox
check "four writes wait" 0 '^outbox: 4 writes \([0-9]+ changes\) waiting for the server$'
changes=$(grep -oE '\(([0-9]+) changes\)' <<<"$out" | grep -oE '[0-9]+')
if [[ -n $changes && $changes -gt 4 ]]; then pass "they carry more changes than writes ($changes)"; else
    fail "they carry more changes than writes ($changes)"; fi
sync_office sync
check "the sync pushed the same writes and changes" 0 "^synced: pushed 4 writes \\($changes changes\\), pulled"
run office outbox
check "none wait after the sync" 0 '^outbox: 0 writes \(0 changes\)'

run office reflect ola "offline"
run office sync --server "127.0.0.1:1" --insecure --token-file "$work/office.token"
check "offline, the sync says how many writes wait" 1 'sync failed \(offline\): .*; 1 write waits in the outbox for the next sync$'
run office sync --server "127.0.0.1:$port" --insecure --token-file "$work/office.token"
run office reflect ola "one more"
run office outbox
check "one write" 0 '^outbox: 1 write \([0-9]+ changes?\) waiting'
one=$(grep -oE '\(([0-9]+) change' <<<"$out" | grep -oE '[0-9]+')
sync_office sign-out
check "sign-out counts the same way" 0 "^signed out: pushed 1 write \\($one changes?\\)"

finish tablet_counts
