#!/usr/bin/env bash
# One mentor group on one tablet, offline from start to end.
# Usage: examples/tablet/demo-offline.sh BUILD_DIR   (holding lindra-tablet), as examples/demo/sync-demo.sh
set -euo pipefail

if [[ $# -ne 1 || ! -x $1/lindra-tablet ]]; then
    echo "usage: $0 BUILD_DIR   (the directory holding lindra-tablet, e.g. build)" >&2
    exit 2
fi
cli=$1/lindra-tablet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tablet() { "$cli" --db "$work/tablet.db" "$@"; }
say() { printf '\n== %s ==\n' "$*"; }

say "The coordinator sets up the tablet"
tablet init
tablet seed-demo

say "Mentor Mia holds gathering 1"
tablet gathering hold g1
tablet attend g1 ola present
tablet attend g1 kari present
tablet attend g1 nils present

say "Between gatherings, Ola and Kari work through modules offline"
tablet progress ola m1 start --minutes 20
tablet progress ola m1 complete --score 90 --minutes 15
tablet progress ola m2 complete --minutes 30
tablet reflect ola "Sitting quietly with a dying resident felt wrong at first. I learned that \
being there is also care, and to ask the family what matters to them." --module m2
tablet progress kari m1 complete --score 72 --minutes 40
tablet progress kari m1 complete --score 85 --minutes 10

say "Mentor Mia holds gathering 2 (Nils is excused)"
tablet gathering hold g2
tablet attend g2 ola present
tablet attend g2 kari present
tablet attend g2 nils excused --note "Night shift"

say "Ola finishes M3 on the bus home"
tablet progress ola m3 complete --score 80 --minutes 45

say "Mentor Mia confirms Ola's participation"
tablet confirm ola --statement "Took an active part in both gatherings and shared openly."

say "The group's roster"
tablet roster fjellvik

say "Ola's progress"
tablet show ola

say "Waiting for the next sync"
tablet outbox
