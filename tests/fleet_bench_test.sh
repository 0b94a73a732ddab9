#!/usr/bin/env bash
# `lindra-bench fleet`, small: 20 tablets against the real lindra-server
# over TLS for 3 s, a 2,000-change push with a bystander. It must exit 0
# (its own checks: every write in the server's log exactly once, every
# tablet converged) and its JSON must hold every figure. A functional test:
# no figure is judged.
#
# Usage: tests/fleet_bench_test.sh PATH_TO_lindra-bench PATH_TO_lindra-server
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PATH_TO_lindra-bench PATH_TO_lindra-server" >&2
    exit 2
fi
bench=$1
server=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# The bench stops its servers itself, also when it fails (and they die with it).
status=0
timeout 100 "$bench" fleet --devices 20 --rate 20 --duration 3 --big-push 2000 --json --server-bin "$server" \
    > "$out" || status=$?
cat "$out"
if ((status != 0)); then
    echo "FAIL: lindra-bench fleet exited with status $status" >&2
    exit 1
fi

tail -n 1 "$out" | python3 -c '
import json, sys
figures = json.loads(sys.stdin.read())
keys = """devices servers store client_threads duration_s offered_rounds_per_s achieved_rounds_per_s rounds_ok
rounds_failed rounds_late rounds_due writes latency_p50_ms latency_p95_ms latency_p99_ms latency_max_ms sync_p50_ms
sync_p99_ms server_cpu_ms_per_round server_cpu_wait_ms_per_round server_busy_pct server_peak_rss_mib bench_cpu_ms_per_round load_average_start load_average_end
big_push_changes big_push_s bystander_rounds bystander_p50_ms bystander_max_ms writes_checked rows_compared
exactly_once converged errors seed""".split()
missing = [k for k in keys if k not in figures]
if missing:
    sys.exit("FAIL: the JSON lacks " + ", ".join(missing))
if figures["exactly_once"] is not True or figures["converged"] is not True:
    sys.exit("FAIL: a check failed: " + json.dumps(figures["errors"]))
if figures["rounds_ok"] < 1 or figures["bystander_rounds"] < 1 or figures["big_push_changes"] < 2000:
    sys.exit("FAIL: the bench ran no rounds, no bystander round or too small a push")
if figures["writes_checked"] < 1 or figures["rows_compared"] < 1 or figures["server_peak_rss_mib"] <= 0:
    sys.exit("FAIL: the checks compared nothing")
print("fleet bench ok")
'
