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
# (chattr -i, chmod: the read-only directory of a test below, if it failed half way)
trap 'chattr -i "$work/ro" 2>/dev/null; chmod u+w "$work/ro" 2>/dev/null; rm -rf "$work"' EXIT
db=$work/tablet.db
source "$(dirname "${BASH_SOURCE[0]}")/support/checks.sh"

# run ARGS...: the CLI on the test replica; sets $out (stdout and stderr) and $rc.
run() {
    out=$("$cli" --db "$db" "$@" 2>&1)
    rc=$?
}

outbox_count() { "$cli" --db "$db" outbox 2>&1 | grep -oE '[0-9]+' | head -n 1; }

# expect_ok NAME PATTERN ARGS...: run ARGS and check.
expect_ok() {
    local name=$1 pattern=$2
    shift 2
    run "$@"
    check "$name" 0 "$pattern"
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
    "gathering cancel" attend confirm outbox report; do
    grep -qF -- "  $c" <<<"$out" || missing="$missing $c"
done
if [[ $rc -eq 0 && -z "$missing" ]]; then pass "--help lists every command"; else
    fail "--help lists every command (missing:$missing)"
fi

out=$("$cli" roster fjellvik 2>&1)
rc=$?
check "--db is required" 2 "--db"

run frobnicate
check "unknown command is usage" 2 "unknown command"

out=$("$cli" --help 2>/dev/null)
rc=$?
check "--help on stdout, exit 0" 0 "^usage: lindra-tablet"
out=$("$cli" sync --help 2>/dev/null)
rc=$?
check "a command's --help on stdout" 0 "^  sync .*--token-file FILE"
run roster fjellvik --colour red
if [[ $rc -eq 2 && $(wc -l <<<"$out") -le 2 ]] && grep -q "roster has no option --colour" <<<"$out"; then
    pass "a wrong flag: a short error, not the usage"; else fail "a wrong flag: a short error, not the usage"; fi
run gathering frobnicate
check "a two-word command's second word" 2 'gathering needs one of: plan hold cancel rename \(not "frobnicate"\)'

run roster fjellvik
check "commands other than init need the replica" 1 "no replica at .* init"
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
expect_error "count an unknown entity lists the entities" 2 \
    'no entity "gatherings"; the entities are organization, person, .*gathering, .*reflection' count gatherings

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
expect_ok "person by a later word of the name" "^Ola Nordmann" show Nordmann
expect_error "a later word's start alone is no match" 1 'no person named "nord"' show nord
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

# ---- the completion report ----------------------------------------------------------

expect_ok "report of a group" "^Fjellvik nursing home group - Palliative care basics, Fjellvik kommune" \
    report fjellvik
table=$out
check "report: Kari confirmed, lacking modules and gatherings" 0 \
    "^  Kari Lie +0/7 +0/1 +yes, Mia Haugen, [0-9]{4}-[0-9]{2}-[0-9]{2} +missing: module 1 .* not passed; .*attended 0 of 1 gatherings held; the course asks for 3$"
check "report: Ola lacks M3 on, a gathering and the confirmation" 0 \
    "^  Ola Nordmann +2/7 +1/1 +no +missing: module 3 .*; attended 1 of 1 gatherings held; the course asks for 3; no mentor has confirmed the participation$"
# The certificate column starts at the same character on every line, "Sæther" too.
starts=$(export LC_ALL=C.UTF-8; grep -E "^  (Kari|Nils|Ola|candidate)" <<<"$table" | while IFS= read -r line; do
    prefix=${line%%missing:*}
    prefix=${prefix%%certificate*}
    echo "${#prefix}"
done | sort -u | wc -l)
if [[ $starts -eq 1 ]]; then pass "report: columns line up in characters"; else fail "report: columns line up in characters"; fi
expect_ok "report of an organization as CSV" \
    "^organization,group,course,person,person_id,membership,modules_passed,.*,lacking"$'\r'"$" \
    report --organization fjellvik --csv
lines=$(grep -c $'\r$' <<<"$out")
if [[ $lines -eq 4 ]] && grep -qE "^Fjellvik kommune,Fjellvik nursing home group,Palliative care basics,Ola Nordmann,[0-9a-f-]{36},active,2,7,1,1,3,no,,,no,missing,,,,,\"module 3 " <<<"$out"; then
    pass "report --csv: a header and a CRLF line per candidate"
else
    fail "report --csv: a header and a CRLF line per candidate"
fi
expect_error "report of an unknown group" 1 "^lindra-tablet: no group named \"nowhere\" on this device" report nowhere
expect_error "report of an unknown organization" 1 "no organization named \"nowhere\"" report --organization nowhere
expect_error "report wants a group or an organization" 2 "a GROUP or --organization ORG" report
expect_error "report wants one of them" 2 "a GROUP or --organization ORG" report fjellvik --organization fjellvik

# ---- bad input: an error naming the field, nothing written ------------------------

text4001=$(head -c 4001 /dev/zero | tr '\0' x)
note2001=$(head -c 2001 /dev/zero | tr '\0' n)
expect_error "--score 150" 1 "module_progress\.best_score.*150" \
    progress ola m3 complete --score 150 --minutes 10
expect_ok "--score 150 left no minutes behind" "^ +3 +M3: .* +not_started +- +- +80 +0$" show ola
expect_error "negative --minutes, in minutes" 2 "--minutes: -5 is outside 0\.\.16666666" \
    progress ola m3 start --minutes -5
expect_error "too many --minutes, in minutes" 2 "--minutes: 20000000 is outside 0\.\.16666666" \
    progress ola m3 start --minutes 20000000
run progress ola m3 start --minutes 16666000
expect_error "minutes that would pass the total, in minutes" 1 \
    "--minutes: 1000 more minutes would pass the most time a module records \(16666666 minutes\)" \
    progress ola m3 start --minutes 1000
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

# ---- files that are not a replica, files lindra may not write ----------------------

# run_apart DB ARGS...: the CLI (as "${as[@]}" if set) with stdout and stderr
# apart; sets $out (stdout), $errors (stderr) and $rc.
as=()
run_apart() {
    local path=$1
    shift
    "${as[@]}" "$cli" --db "$path" "$@" >"$work/stdout" 2>"$work/stderr"
    rc=$?
    out=$(cat "$work/stdout")
    errors=$(cat "$work/stderr")
}

# one_error NAME PATTERN: the last run_apart exited 1 with nothing on stdout
# (no half-printed "outbox: ") and one line on stderr matching PATTERN.
one_error() {
    if [[ $rc -eq 1 && ! -s "$work/stdout" && $(wc -l <"$work/stderr") -eq 1 ]] &&
        grep -qE -- "$2" "$work/stderr"; then
        pass "$1"
    else
        out="stdout: $out"$'\n'"stderr: $errors"
        fail "$1"
    fi
}

# unchanged NAME FILE SUM: FILE still has sha256 SUM, and nothing was created beside it.
unchanged() {
    if [[ "$(sha256sum <"$2")" == "$3" && -z "$(compgen -G "$2-*")" ]]; then pass "$1"; else
        out=$(ls -l "$2"*)
        fail "$1"
    fi
}

if command -v sqlite3 >/dev/null; then
    for mode in delete wal; do
        other=$work/other-$mode.sqlite
        sqlite3 "$other" "PRAGMA journal_mode=$mode; CREATE TABLE notes (x); INSERT INTO notes VALUES ('private');" >/dev/null
        sum=$(sha256sum <"$other")
        for args in "roster fjellvik" "outbox" "init"; do
            # shellcheck disable=SC2086 # the words of $args are the command's
            run_apart "$other" $args
            one_error "$args on another program's database ($mode) is refused" \
                "^lindra-tablet: .*other-$mode\.sqlite is a SQLite database of another program.*left it unchanged"
        done
        unchanged "another program's database ($mode) is left byte for byte" "$other" "$sum"
    done
else
    fail "sqlite3 (Debian package sqlite3, in scripts/lib.sh) is needed to make another program's database"
fi

notes=$work/notes.txt
echo "shopping: milk" >"$notes"
sum=$(sha256sum <"$notes")
run_apart "$notes" init
one_error "a text file is refused" "notes\.txt is not a SQLite database"
unchanged "a text file is left as it was" "$notes" "$sum"

run_apart "$work/nowhere/tablet.db" init
one_error "a missing directory is named" "the directory .*/nowhere does not exist"

# A read-only directory. Root ignores permission bits, so as root the CLI
# runs as nobody (setpriv, from util-linux) or the directory is made
# immutable (chattr +i, where the file system and capabilities allow).
rodir=$work/ro
mkdir "$rodir"
"$cli" --db "$rodir/tablet.db" init >/dev/null
sum=$(sha256sum <"$rodir/tablet.db")
protected=""
if [[ $(id -u) -ne 0 ]]; then
    chmod a-w "$rodir" && protected="chmod a-w"
elif setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    # nobody needs to reach a copy of the binary and to write the file itself.
    chmod 755 "$work" && cp "$cli" "$work/lindra-tablet" && chmod 755 "$work/lindra-tablet" &&
        chown 65534:65534 "$rodir/tablet.db" && cli=$work/lindra-tablet &&
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups) && protected="setpriv as nobody"
elif chattr +i "$rodir" 2>/dev/null; then
    protected="chattr +i"
fi
if [[ -n "$protected" ]] && ! "${as[@]}" test -w "$rodir"; then
    echo "(read-only directory by $protected)"
    for args in "outbox" "init"; do
        # shellcheck disable=SC2086
        run_apart "$rodir/tablet.db" $args
        one_error "$args in a read-only directory says so" \
            "^lindra-tablet: cannot open .*/ro/tablet\.db: the directory .*/ro is read-only.*tablet\.db-wal"
    done
    unchanged "a replica in a read-only directory is left as it was" "$rodir/tablet.db" "$sum"
    run_apart "$rodir/new.db" init
    one_error "init of a new file in a read-only directory says so" "cannot create .*/ro/new\.db: the directory .*/ro is read-only"
else
    echo "SKIP: cannot make a directory read-only for the CLI here (root without setpriv or chattr +i)"
fi
chattr -i "$rodir" 2>/dev/null
chmod u+w "$rodir"
as=()

# ---------------------------------------------------------------------------------

finish tablet_cli_test
