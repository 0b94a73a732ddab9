#!/usr/bin/env bash
# Runs the shell blocks of README.md as a newcomer would, and fails on the
# first command that fails, naming its README line.
#
# Usage: tests/readme_test.sh BUILD_DIR [README.md]
#
# Which blocks run:
#   - Only blocks fenced as ```sh. Blocks fenced ``` (no language), ```text,
#     ```console, ```cpp and so on are shown, never run: use them for output,
#     synopses and commands that need a machine of their own (sudo, a
#     production host).
#   - A ```sh block right after the line <!-- readme-test: skip REASON -->
#     is not run either (scripts/test, which runs this test, say).
#   - A command line ending in "# exits N" (N a number) must exit with N,
#     and with "# exits N: TEXT" also print TEXT (up to a "..." in it) on
#     stdout or stderr. Such a line must be a simple command (no pipe, no
#     && list). Every other command must exit 0.
#
# How they run: all runnable blocks, in README order, as ONE bash script, so
# variables and background jobs carry from block to block, as in a reader's
# terminal. The script runs in a new temporary directory holding `build` (a
# link to BUILD_DIR) and links to the clone's clients, examples, proto,
# scripts and tests, with BUILD_DIR first on PATH: a block may call
# `build/lindra-tablet` or just `lindra-tablet`, and the files it writes
# (token.key, ola.db, ...) land in the temporary directory, removed at the
# end. Every job a block started in the background (a server: `... &`) is
# stopped at the end. The script keeps the README's line numbers, so a
# failure reads "README.md:253: exited 1". Within an `a && b` list, bash
# does not stop at a failing `a`; the README keeps such lists short.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 BUILD_DIR [README.md]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readme=${2:-$src/README.md}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ln -s "$build" "$work/build"
for d in clients examples proto scripts tests; do ln -s "$src/$d" "$work/$d"; done

# What every block runs under (line 1 of the script sources it).
cat > "$work/prelude.sh" <<'EOF'
set -eE -o pipefail
PS4='+ README.md:${LINENO}: '
set -x
# readme_expect N TEXT COMMAND...: COMMAND exits N and prints TEXT.
readme_expect() {
    local want=$1 text=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$out"
    if ((rc != want)); then
        echo "README.md:${BASH_LINENO[0]}: exited $rc, the README says it exits $want" >&2
        exit 1
    fi
    if [[ $out != *"$text"* ]]; then
        echo "README.md:${BASH_LINENO[0]}: the output lacks \"$text\", which the README shows" >&2
        exit 1
    fi
}
trap 'rc=$?; echo "README.md:$LINENO: exited $rc" >&2; exit 1' ERR
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT
EOF

# The README, line for line: a line of a runnable block as it is, every
# other line empty, except line 1, which sources the prelude.
awk -v q="'" -v prelude="$work/prelude.sh" '
    NR == 1 { print ". " q prelude q; next }
    in_block && /^```/ { in_block = 0; print ""; next }
    in_block && run {
        if (match($0, /[ \t]#[ \t]*exits [0-9]+/)) {
            n = substr($0, RSTART, RLENGTH); sub(/.*exits /, "", n)
            text = substr($0, RSTART + RLENGTH)
            if (text ~ /^:/) { sub(/^:[ \t]*/, "", text); sub(/\.\.\..*/, "", text) } else text = ""
            gsub(q, q "\\" q q, text)
            print "readme_expect " n " " q text q " " $0
        } else print
        next
    }
    in_block { print ""; next }
    /^```/ {
        in_block = 1
        run = ($0 == "```sh") && !skip
        skip = 0
        print ""
        next
    }
    { skip = ($0 ~ /^<!-- readme-test: skip/); print "" }
' "$readme" > "$work/readme.sh"

cd "$work"
export PATH="$build:$PATH"
export TMPDIR=$work
if bash "$work/readme.sh"; then
    echo "readme: every command of the README's sh blocks ran as written"
else
    echo "readme: FAILED (the line above names the README line)" >&2
    exit 1
fi
