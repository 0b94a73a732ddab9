#!/usr/bin/env bash
# Black-box test of the coordinator's work with the real binaries: the
# office registers a coordinator, `lindra-tablet token-request` prints the
# lindra-server command that issues her token (run here as printed), and her
# tablet imports a registration list, imports it again (nothing written),
# refuses a bad one (exit 1, line and column named, nothing written), adds,
# withdraws and registers people, and syncs it all without a refusal; a
# withdrawn candidate's tablet, and another member's, say what went.
# Plain TCP on 127.0.0.1.
# Usage: tests/registrations_cli_test.sh PATH_TO_lindra-server PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -u

source "$(dirname "${BASH_SOURCE[0]}")/support/cli.sh" "$@"

outbox_count() { "$cli" --db "$work/$1.db" outbox 2>&1 | grep -oE '[0-9]+' | head -n 1; }

out=$("$cli" --help 2>&1)
rc=$?
missing=""
for c in import-registrations "person add" "member add" "member withdraw" token-request \
    "id person|group|module|gathering|organization"; do
    grep -qF -- "  $c" <<<"$out" || missing="$missing $c"
done
if [[ $rc -eq 0 && -z "$missing" ]]; then pass "--help lists the coordinator's commands"; else
    fail "--help lists the coordinator's commands (missing:$missing)"; fi

# ---- a server, and the office that registers the coordinator ---------------------

start_server

"$server_bin" issue-token --key "$work/token.key" --ttl 1h --user office --role admin > "$work/office.token"
run office init
run office seed-demo
run office person add "Cora Koordinator" --profession other --organization fjellvik
check "person add registers the coordinator" 0 "^registered Cora Koordinator \(other\): [0-9a-f-]{36}$"
run office person add "Ivar Uten" --profession teacher
check "person add refuses an unknown profession, naming the allowed ones" 1 \
    "\"teacher\" is not one of: assistant, health_care_worker, nurse, other"
sync_as office
check "the office syncs" 0 "^synced: pushed [1-9]"

run office id organization "fjellvik kommune"
check "id organization prints the organization's id" 0 "^[0-9a-f-]{36}$"
org=$out
run office id person cora
cora=$out
run office token-request cora coordinator --key "$work/token.key" --user cora
check "token-request prints the server's command line" 0 \
    "^lindra-server issue-token --key $work/token.key --user cora --role coordinator --person $cora --org $org$"
request=$out
out=$(eval "\"\$server_bin\" ${request#lindra-server }" 2>&1 > "$work/coord.token")
rc=$?
check "lindra-server issues the token from that command line" 0 ""
run office token-request "cora koordinator" candidate
check "token-request for a candidate names no organization" 0 "--role candidate --person $cora$"
run office person add "Uten Organisasjon" --profession nurse
run office token-request uten coordinator
check "a coordinator without an organization is asked for one" 1 "belongs to no organization.*--organization ORG"

# ---- the coordinator's tablet: the registration list -----------------------------

run coord init
sync_as coord
check "the coordinator's first sync" 0 "^synced: "
printf '%s\r\n' 'group,display_name,role,profession,organization' \
    'Fjellvik nursing home group,Mia Haugen,mentor,nurse,Fjellvik kommune' \
    'Fjellvik nursing home group,"Berg, Siri",candidate,assistant,Fjellvik kommune' \
    '' \
    'Fjellvik nursing home group,Per Dahl,Candidate,Health care worker,Fjellvik kommune' > "$work/list.csv"
run coord import-registrations "$work/list.csv"
check "a registration list imports" 0 "people: 2 registered, 1 registered already"
check "it adds the new members" 0 "memberships: 2 added, 1 there already"
run coord roster fjellvik
check "the roster has the quoted name" 0 "Berg, Siri +candidate +active"
before=$(outbox_count coord)
run coord import-registrations "$work/list.csv"
check "importing it again writes nothing" 0 "memberships: 0 added, 3 there already"
after=$(outbox_count coord)
if [[ -n $before && "$before" == "$after" ]]; then pass "the outbox is as it was ($after)"; else
    fail "the outbox is as it was ($before -> $after)"; fi

printf '%s\n' 'group,display_name,role,profession,organization' \
    'Fjellvik nursing home group,Eva Strand,candidate,nurse,Fjellvik kommune' \
    'Fjellvik nursing home group,Leif Ås,leader,nurse,Fjellvik kommune' > "$work/bad.csv"
run coord import-registrations "$work/bad.csv"
check "a bad line fails the import, naming line and column" 1 \
    "bad.csv, line 3, role: \"leader\" is not one of: mentor, candidate \(nothing was imported\)"
run coord show eva
check "nothing of the bad file was written" 1 "no person named \"eva\""
if [[ "$(outbox_count coord)" == "$after" ]]; then pass "the bad file left the outbox as it was"; else
    fail "the bad file left the outbox as it was"; fi
printf '%s\n' 'group,name,role' 'x,y,z' > "$work/header.csv"
run coord import-registrations "$work/header.csv"
check "a wrong header names the columns" 1 "unknown column \"name\"; missing column display_name, profession, organization"

# ---- members one by one ----------------------------------------------------------

run coord member withdraw fjellvik per
check "member withdraw" 0 "^Per Dahl withdrawn from Fjellvik nursing home group$"
run coord member withdraw fjellvik per
check "withdrawing again writes nothing" 0 "withdrawn from Fjellvik nursing home group already; nothing written"
run coord import-registrations "$work/list.csv"
check "the list leaves a withdrawn member withdrawn" 0 "line 5: withdrawn from the group since; left withdrawn"
run coord person add "Eva Strand" --profession nurse --organization "fjellvik kommune"
run coord member add fjellvik eva --role mentor
check "member add" 0 "^Eva Strand: mentor of Fjellvik nursing home group \(active\)$"
run coord member add fjellvik eva --role mentor
check "adding again writes nothing" 0 "already; nothing written"
run coord member add fjellvik eva --role boss
check "member add refuses an unknown role" 1 "\"boss\" is not one of"
run coord member add fjellvik eva
check "member add needs --role" 2 "needs --role mentor\|candidate"
run coord member withdraw fjellvik cora
check "withdrawing a non-member is an error" 1 "Cora Koordinator is not a member of Fjellvik nursing home group"
run coord roster fjellvik
check "the roster has the new mentor" 0 "Eva Strand +mentor +active"
check "the roster has the withdrawn candidate" 0 "Per Dahl +candidate +withdrawn"

sync_as coord
check "the server takes all of the coordinator's writes" 0 "^synced: pushed [1-9][0-9]* writes? \([1-9][0-9]* changes?\)"
if grep -q "refused" <<<"$out"; then fail "no write refused"; else pass "no write refused"; fi
sync_as office
run office roster fjellvik
check "the office sees the imported members" 0 "Berg, Siri +candidate +active"

# ---- a withdrawal as the members' tablets see it -----------------------------------

# Per is back in the group; his tablet and Siri's sync with it.
run coord member add fjellvik per --role candidate
sync_as coord
run coord id person per
per=$out
run coord id person siri
siri=$out
run coord id person "mia haugen"
mia=$out
"$server_bin" issue-token --key "$work/token.key" --ttl 1h --user per --role candidate --person "$per" > "$work/per.token"
"$server_bin" issue-token --key "$work/token.key" --ttl 1h --user siri --role candidate --person "$siri" > "$work/siri.token"
"$server_bin" issue-token --key "$work/token.key" --ttl 1h --user mia --role mentor --person "$mia" > "$work/mia.token"
run per init
sync_as per
run per progress per m1 start
check "Per starts a module" 0 ""
for who in per siri mia; do
    [[ $who == per ]] || run "$who" init
    sync_as "$who"
done
run siri roster fjellvik
check "a member sees another by name" 0 "Per Dahl +candidate +active"

run coord member withdraw fjellvik per
sync_as coord
sync_as per
check "the withdrawn candidate's tablet says which group he left" 0 \
    "^no longer a member of group \"Fjellvik nursing home group\": removed [1-9][0-9]* rows$"
run per groups
check "his groups list" 0 ""
check_not "and the group is gone from it" "Fjellvik nursing home group"
sync_as siri
check "another member's tablet says whose rows went" 0 \
    "^Per Dahl no longer shares a group with this user: removed 1 row$"
run siri roster fjellvik
check "her roster keeps the withdrawn membership, without his name" 0 "a withdrawn member +candidate +withdrawn"
check_not "and shows no bare id for it" "[0-9a-f]{8}-[0-9a-f]{4}-"
sync_as mia
check "his mentor's tablet says his work in the group went" 0 \
    "^Per Dahl's work in group \"Fjellvik nursing home group\" is no longer this user's to see: removed 1 row$"
check "and that he went" 0 "^Per Dahl no longer shares a group with this user: removed 1 row$"

finish registrations_cli_test
