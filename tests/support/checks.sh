# PASS/FAIL checks of the black-box shell tests, on the output ($out) and
# exit status ($rc) of the last command a test ran; `finish NAME` prints
# the tally and is the script's exit status.

passed=0
failed=0
out=""
rc=0

# TEXT as a grep -E pattern that matches it literally ("23 writes (117
# changes)" has parentheses).
literal() {
    sed 's/[][\\.*^$+?(){}|]/\\&/g' <<<"$1"
}

pass() {
    echo "PASS: $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $1 (exit $rc)"
    printf '%s\n' "$out" | head -n 20 | sed 's/^/    /'
    failed=$((failed + 1))
}
# check NAME EXIT PATTERN: the last run exited with EXIT and its output
# matches PATTERN (grep -E).
check() {
    if [[ $rc -eq $2 ]] && grep -qE -- "$3" <<<"$out"; then pass "$1"; else fail "$1"; fi
}
# check_not NAME PATTERN: the last run's output does not match PATTERN.
check_not() {
    if ! grep -qE -- "$2" <<<"$out"; then pass "$1"; else fail "$1"; fi
}

# finish NAME: the tally; the script's exit status.
finish() {
    echo "$1: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
