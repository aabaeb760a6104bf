#!/bin/bash
# bench/bench-sweep.sh - sweep throughput: `blkrig sweep` over the
# library's backup and mirror scenarios with a target that stops the job
# (scenarios/cases/032-backup-target-stop-eio.scn,
# 010-mirror-target-stop.scn; every fault point, transient and
# persistent) with -j1 and -j2, printing trials per second as the sweep
# measures it (wall clock over all trials and the fault-free run).
# SWEEP_SCENARIO names other scenarios (space-separated paths).
# A violation found by the sweep is reported but does not stop the
# benchmark: throughput is what is measured here, `make check` judges.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
blkrig=${BLKRIG:-$root/build/release/blkrig}
scns=${SWEEP_SCENARIO:-$root/scenarios/cases/032-backup-target-stop-eio.scn $root/scenarios/cases/010-mirror-target-stop.scn}

[ -x "$blkrig" ] || { echo "bench-sweep: $blkrig not built" >&2; exit 1; }

for scn in $scns; do
    [ -f "$scn" ] || { echo "bench-sweep: $scn not found" >&2; exit 1; }
    echo "bench-sweep: $(basename "$scn")"
    for j in 1 2; do
        out=$("$blkrig" sweep -j "$j" "$scn" 2>/dev/null) || true
        sum=$(printf '%s\n' "$out" | grep '^sweep: [0-9]* trials,' | tail -n 1)
        pts=$(printf '%s\n' "$out" |
              sed -n 's/^sweep: .*: \([0-9]*\) fault points.*/\1/p')
        if [ -z "$sum" ]; then
            echo "bench-sweep: -j$j: the sweep did not finish:" >&2
            printf '%s\n' "$out" | tail -n 5 >&2
            exit 1
        fi
        rate=$(printf '%s\n' "$sum" | sed -n 's/.*, \([0-9.]*\) trials\/s$/\1/p')
        viol=$(printf '%s\n' "$sum" | sed -n 's/.* \([0-9]*\) violation(s).*/\1/p')
        printf '  -j%d: %s fault points, %s, %s trials/s, %s violation(s)\n' \
            "$j" "${pts:-?}" \
            "$(printf '%s\n' "$sum" | awk '{ print $2, $3 }' | tr -d ,)" \
            "$rate" "$viol"
    done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
