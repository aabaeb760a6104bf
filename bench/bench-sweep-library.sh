#!/bin/bash
# bench/bench-sweep-library.sh - the whole library's sweep: `blkrig sweep`
# over every scenarios/cases/*.scn (every fault point, transient and
# persistent), one scenario after the other with -j one trial per CPU.
# Prints per scenario its trials, seconds and violations, then the number
# of trials, the total time, trials per second and whether the library
# met its budget (issue 10: 15 minutes on 2 cores), with the CPU count
# and the load average, since a loaded machine makes the figure worse.
#
# Violations are reported, not judged: throughput is what is measured
# here. The exit status is non-zero when a sweep did not finish or the
# budget was missed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
blkrig=${BLKRIG:-$root/build/release/blkrig}
cases=${SWEEP_CASES:-$root/scenarios/cases}
jobs=${SWEEP_JOBS:-$(nproc)}
budget=${SWEEP_BUDGET_S:-900}

[ -x "$blkrig" ] || { echo "bench-sweep-library: $blkrig not built" >&2; exit 1; }

now() { date +%s.%N; }

echo "bench-sweep-library: every scenario in $(basename "$cases")/, -j$jobs," \
     "$(nproc) CPUs, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
trials=0 viol=0 n=0 t0=$(now)
for scn in "$cases"/*.scn; do
    a=$(now)
    out=$("$blkrig" sweep -j "$jobs" "$scn" 2>/dev/null) || true
    b=$(now)
    sum=$(printf '%s\n' "$out" | grep '^sweep: [0-9]* trials,' | tail -n 1)
    if [ -z "$sum" ]; then
        echo "bench-sweep-library: $(basename "$scn"): the sweep did not" \
             "finish:" >&2
        printf '%s\n' "$out" | tail -n 5 >&2
        exit 1
    fi
    t=$(printf '%s\n' "$sum" | sed -n 's/^sweep: \([0-9]*\) trials,.*/\1/p')
    v=$(printf '%s\n' "$sum" | sed -n 's/.* \([0-9]*\) violation(s).*/\1/p')
    printf '  %-40s %4d trials %7.1f s %3d violation(s)\n' \
        "$(basename "$scn" .scn)" "$t" "$(echo "$b - $a" | bc)" "$v"
    trials=$((trials + t))
    viol=$((viol + v))
    n=$((n + 1))
done
total=$(echo "$(now) - $t0" | bc)
rate=$(echo "scale=1; $trials / $total" | bc)
printf 'bench-sweep-library: %d scenarios, %d trials, %.1f s, %s trials/s, %d violation(s)\n' \
    "$n" "$trials" "$total" "$rate" "$viol"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" \
     "(figures from a loaded machine are not comparable across runs)"
if [ "$(echo "$total <= $budget" | bc)" = 1 ]; then
    echo "bench-sweep-library: within the budget: $(printf '%.0f' "$total") s of" \
         "$budget s, on $(nproc) CPUs"
else
    echo "bench-sweep-library: OVER the budget: $(printf '%.0f' "$total") s of" \
         "$budget s, on $(nproc) CPUs" >&2
    exit 1
fi
