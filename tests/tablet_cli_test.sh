#!/usr/bin/env bash
# Black-box test of the lindra-tablet example CLI on a fresh temporary replica.
# Usage: tests/tablet_cli_test.sh PATH_TO_lindra-tablet
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -u

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH_TO_lindra-tablet" >&2
    exit 2
fi
cli=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/tablet.db
passed=0
failed=0
out=""
rc=0

# run ARGS...: the CLI on the test replica; sets $out (stdout and stderr) and $rc.
run() {
    out=$("$cli" --db "$db" "$@" 2>&1)
    rc=$?
}

outbox_count() { "$cli" --db "$db" outbox 2>&1 | grep -oE '[0-9]+' | head -n 1; }

pass() {
    echo "PASS: $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $1 (exit $rc)"
    printf '%s\n' "$out" | head -n 20 | sed 's/^/    /'
    failed=$((failed + 1))
}

# check_exit NAME EXIT PATTERN: the last run exited with EXIT and its output
# matches PATTERN (grep -E).
check_exit() {
    if [[ $rc -eq $2 ]] && grep -qE -- "$3" <<<"$out"; then pass "$1"; else fail "$1"; fi
}

# expect_ok NAME PATTERN ARGS...: run ARGS and check.
expect_ok() {
    local name=$1 pattern=$2
    shift 2
    run "$@"
    check_exit "$name" 0 "$pattern"
}

# expect_error NAME EXIT PATTERN ARGS...: ARGS exits with EXIT, the message
# matches PATTERN, and nothing was written (the outbox count is unchanged).
expect_error() {
    local name=$1 want=$2 pattern=$3
    shift 3
    local before after
    before=$(outbox_count)
    run "$@"
    after=$(outbox_count)
    if [[ $rc -eq $want && -n "$before" && "$before" == "$after" ]] &&
        grep -qE -- "$pattern" <<<"$out"; then
        pass "$name"
    else
        fail "$name (outbox $before -> $after)"
    fi
}

# ---- usage ------------------------------------------------------------------

out=$("$cli" --help 2>&1)
rc=$?
missing=""
for c in init seed-demo groups roster show progress reflect "gathering plan" "gathering hold" \
    "gathering cancel" attend confirm outbox; do
    grep -qF -- "  $c" <<<"$out" || missing="$missing $c"
done
if [[ $rc -eq 0 && -z "$missing" ]]; then pass "--help lists every command"; else
    fail "--help lists every command (missing:$missing)"
fi

out=$("$cli" roster fjellvik 2>&1)
rc=$?
check_exit "--db is required" 2 "--db"

run frobnicate
check_exit "unknown command is usage" 2 "unknown command"

run roster fjellvik
check_exit "commands other than init need the replica" 1 "no replica at .* init"
if [[ ! -e "$db" ]]; then pass "commands other than init do not create it"; else
    fail "commands other than init do not create it"
fi

# ---- setup ------------------------------------------------------------------

uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
expect_ok "init prints the device id" "device id: $uuid" init
device=$(grep -oE "$uuid" <<<"$out")
expect_ok "init again keeps the device id" "device id: $device" init
expect_ok "seed-demo" "8 modules" seed-demo
expect_error "seed-demo twice is refused" 1 "already has the demo course" seed-demo
expect_ok "count the seeded gatherings" "^4$" count gathering
expect_error "count an unknown entity" 1 "unknown entity" count gatherings

expect_ok "groups lists the demo group" "Fjellvik nursing home group +Palliative care basics" groups
group_id=$(grep -oE "$uuid" <<<"$out" | head -n 1)
expect_ok "roster has the mentor" "Mia Haugen +mentor" roster fjellvik
n=$(grep -cE "candidate +active +modules 0/7 +gatherings 0/0 +confirmed no" <<<"$out")
if [[ "$n" -eq 3 ]]; then pass "roster has 3 candidates, nothing done"; else
    fail "roster has 3 candidates, nothing done"
fi

# ---- progress -----------------------------------------------------------------

count0=$(outbox_count)
expect_ok "complete with a pass score" "M1: .*: passed .*best score 90, 15 min" \
    progress ola m1 complete --score 90 --minutes 15
if [[ $(outbox_count) -gt $count0 ]]; then pass "a write lands in the outbox"; else
    fail "a write lands in the outbox"
fi
expect_ok "roster counts 1 completed module" "Ola Nordmann +candidate.*modules 1/7" roster fjellvik
expect_ok "complete without a pass score" "M2: .*: completed" progress ola m2 complete
expect_ok "roster counts 2 completed modules" "Ola Nordmann +candidate.*modules 2/7" roster fjellvik
expect_ok "start after complete says it stays" "stays completed" progress ola m2 start
expect_ok "show: start after complete still completed" "^ +2 +M2: .* +completed +1 " show ola
expect_ok "show: score, pass score and minutes" "^ +1 +M1: .* +passed +1 +90 +80 +15$" show ola
expect_ok "a score below the pass score is completed" "M3: .*: completed .*best score 60" \
    progress kari m3 complete --score 60

# ---- name addressing ------------------------------------------------------------

expect_ok "group by id" "^Fjellvik nursing home group - Palliative care basics" roster "$group_id"
expect_ok "person by full name, any case" "^Ola Nordmann" show "OLA NORDMANN"
expect_ok "module by full title" "M4: .*: in_progress" \
    progress nils "m4: nutrition, fluids and mouth care" start
expect_ok "groups of a person" "Fjellvik nursing home group" groups kari

# ---- gatherings, attendance, confirmation ----------------------------------------

expect_ok "hold a gathering" "G1: .*: held" gathering hold g1
expect_ok "record attendance" "Ola Nordmann present" attend g1 ola present
expect_ok "excused with a note" "Nils Sæther excused" attend g1 nils excused --note "Night shift"
expect_ok "roster counts attended gatherings" "Ola Nordmann +candidate.*gatherings 1/1" \
    roster fjellvik
expect_ok "excused is not attended" "Nils Sæther +candidate.*gatherings 0/1" roster fjellvik
expect_ok "confirm with the group's only mentor" "Mia Haugen confirmed Kari Lie" \
    confirm kari --statement "Active in every gathering"
expect_ok "roster shows the confirmation" "Kari Lie +candidate.*confirmed yes" roster fjellvik
expect_ok "reflection on a module" "saved for Ola Nordmann on M2" \
    reflect ola "Being there is also care." --module m2
text4000=$(head -c 4000 /dev/zero | tr '\0' x)
expect_ok "a 4000-character reflection fits" "saved for Kari Lie" reflect kari "$text4000"

# ---- bad input: an error naming the field, nothing written ------------------------

text4001=$(head -c 4001 /dev/zero | tr '\0' x)
note2001=$(head -c 2001 /dev/zero | tr '\0' n)
expect_error "--score 150" 1 "module_progress\.best_score.*150" \
    progress ola m3 complete --score 150 --minutes 10
expect_ok "--score 150 left no minutes behind" "^ +3 +M3: .* +not_started +- +- +80 +0$" show ola
expect_error "negative --minutes" 1 "module_progress\.time_spent_s" \
    progress ola m3 start --minutes -5
expect_error "attend with status maybe" 1 "attendance\.status.*maybe" attend g1 ola maybe
expect_error "attendance note too long" 1 "attendance\.note.*2000" \
    attend g1 ola present --note "$note2001"
expect_error "a 4001-character reflection" 1 "reflection\.text.*4000" reflect ola "$text4001"
expect_error "unknown person in attend" 1 "person.*\"zed\"" attend g1 zed present
expect_error "unknown person in progress" 1 "person.*\"zed\"" progress zed m1 start
expect_error "unknown module" 1 "module.*\"m99\"" progress ola m99 start
expect_error "unknown group" 1 "group.*\"nowhere\"" roster nowhere
expect_error "--score not a number" 2 "--score.*abc" progress ola m3 complete --score abc
expect_error "unknown progress verb" 2 "start, complete" progress ola m3 finish
expect_error "unknown option" 2 "--colour" roster fjellvik --colour red
expect_error "a mentor is not confirmed" 1 "not a candidate" confirm mia
expect_error "only a mentor confirms" 1 "not a mentor" confirm ola --mentor kari

expect_ok "plan a gathering" "planned G1: Extra session" gathering plan fjellvik "G1: Extra session"
expect_error "an ambiguous name shows the library's message" 1 "\"g1\" matches 2 gathering" \
    attend g1 ola present

# ---------------------------------------------------------------------------------

echo "tablet_cli_test: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
