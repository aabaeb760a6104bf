#!/bin/bash
# coverage/report.sh BUILD_DIR - turn the .gcda files of a `make BUILD=cov
# check` run into coverage/coverage.info and coverage/html, print lcov's
# summary (also kept in coverage/summary.txt) and apply coverage/gate.txt:
# the overall line gate and the per-directory line and branch gates
# (table in coverage/dirs.txt). Exits 1 when any gate fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: report.sh BUILD_DIR}
rc="--config-file $here/lcovrc"

command -v lcov >/dev/null && command -v genhtml >/dev/null || {
    echo "coverage: lcov/genhtml not installed" >&2
    exit 1
}
info=$here/coverage.info
# lcov 1.16's geninfo warns about its own redefined subroutines: noise.
lcov $rc --quiet --capture --directory "$build" --base-directory . \
    --output-file "$info.raw" 2> >(grep -v 'redefined at' >&2)
patterns=()
while read -r p; do
    case $p in ''|'#'*) continue ;; esac
    patterns+=("$p")
done < "$here/exclude.txt"
lcov $rc --quiet --remove "$info.raw" "${patterns[@]}" --output-file "$info"
rm -f "$info.raw"
rm -rf "$here/html"
genhtml $rc --quiet --title blkrig --output-directory "$here/html" "$info"
lcov $rc --summary "$info" 2>&1 | grep -E '^\s+(lines|functions|branches)' \
    | tee "$here/summary.txt"
echo "coverage: report in coverage/html/index.html"

fail=0
min=$(awk '$1 == "lines" { print $2 }' "$here/gate.txt")
got=$(awk '/lines/ { sub("%", "", $2); print int($2) }' "$here/summary.txt")
if [ -n "$min" ] && [ "${got:-0}" -lt "$min" ]; then
    echo "coverage: line coverage ${got}% is below the gate (${min}%)" >&2
    fail=1
fi

# Per-directory gates: lcov --extract each directory, compare its line
# and branch rates with the minimums (printed as a table, kept in
# coverage/dirs.txt). Rates are compared to one decimal, so 84.96% (shown
# by lcov as 85.0%) still fails a gate of 85.
root=$(cd "$here/.." && pwd)
{
    printf '%-10s %8s %8s %19s %6s  %s\n' directory lines gate branches \
        gate result
    while read -r kind dir lmin bmin; do
        [ "$kind" = dir ] || continue
        part=$here/coverage-$dir.info
        if ! lcov $rc --quiet --extract "$info" "$root/$dir/*" \
                --output-file "$part" 2>/dev/null || [ ! -s "$part" ]; then
            printf '%-10s %8s %8s %19s %6s  %s\n' "$dir/" - "$lmin%" - \
                "$bmin%" "FAIL (no data)"
            continue
        fi
        # Counts from the tracefile itself (LF/LH, BRF/BRH), not lcov's
        # rounded summary.
        awk -v dir="$dir/" -v lmin="$lmin" -v bmin="$bmin" '
            /^LF:/ { lf += substr($0, 4) }  /^LH:/ { lh += substr($0, 4) }
            /^BRF:/ { bf += substr($0, 5) } /^BRH:/ { bh += substr($0, 5) }
            END {
                l = lf ? 100 * lh / lf : 0; b = bf ? 100 * bh / bf : 0
                ok = (l >= lmin && b >= bmin)
                printf "%-10s %7.1f%% %7d%% %6.1f%% %5d/%-5d %5d%%  %s\n",
                    dir, l, lmin, b, bh, bf, bmin, ok ? "ok" : "FAIL"
            }' "$part"
        rm -f "$part"
    done < "$here/gate.txt"
} | tee "$here/dirs.txt"
if grep -q 'FAIL' "$here/dirs.txt"; then
    echo "coverage: below the per-directory gate (coverage/gate.txt):" \
        "$(awk '/FAIL/ { printf "%s ", $1 }' "$here/dirs.txt")" >&2
    fail=1
fi
exit $fail
